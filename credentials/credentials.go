// Package credentials owns a company's Entra ID app registration
// (authOfficeCalendar.json): registering it only after Microsoft accepts it,
// keeping the secret sealed, re-checking it on demand and daily, rotating
// the sealing key, and removing it. It is the only code that ever holds a
// client secret in plain text, and only for the length of a call.
package credentials

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/secrets"
)

// Status is the outcome of the last verification against Microsoft.
type Status string

// The statuses API.md names.
const (
	StatusVerified       Status = "VERIFIED"
	StatusInvalidSecret  Status = "INVALID_SECRET"
	StatusSecretExpired  Status = "SECRET_EXPIRED"
	StatusTenantNotFound Status = "TENANT_NOT_FOUND"
	StatusAppNotFound    Status = "APP_NOT_FOUND"
	StatusConsentMissing Status = "CONSENT_MISSING"
	StatusUnreachable    Status = "UNREACHABLE"
)

// Settings is what may be shown about a company's credentials: never the
// secret, only its last characters.
type Settings struct {
	TenantID         string
	ClientID         string
	ClientSecretHint string
	// ClientSecretExpiresAt is when the secret expires (nil: not given).
	ClientSecretExpiresAt *time.Time
	Status                Status
	GrantedPermissions    []string
	RegisteredAt          time.Time
	VerifiedAt            *time.Time
	LastError             *string
}

// Graph is what the service needs of Microsoft (outlook.Client).
type Graph interface {
	VerifyCredentials(ctx context.Context, creds outlook.Credentials) (outlook.TokenInfo, error)
	Forget(creds outlook.Credentials)
}

// Subscriptions is what the service needs of the subscription lifecycle: to
// move a company's subscriptions to a new app, and to remove them (nil
// where nothing is subscribed: calsync rotate-key).
type Subscriptions interface {
	RecreateAll(ctx context.Context, companyID string) error
	RemoveAll(ctx context.Context, companyID string) error
}

// Service is the admin side of credentials: it registers, verifies and
// removes them, on top of the read side (Sessions) every other service
// uses.
type Service struct {
	sessions *Sessions
	store    *db.Store
	keys     *secrets.Keyring
	graph    Graph
	subs     Subscriptions
	log      *slog.Logger
	now      func() time.Time
}

// NewService builds the admin side over sessions. subs may be nil.
func NewService(sessions *Sessions, graph Graph, subs Subscriptions, log *slog.Logger) *Service {
	return &Service{sessions: sessions, store: sessions.store, keys: sessions.keys, graph: graph, subs: subs, log: log, now: time.Now}
}

// Errors the service answers with.
var (
	ErrNotRegistered = apperr.New(apperr.NotFound,
		"カレンダー認証設定が登録されていません。企業設定 → カレンダー認証設定 で authOfficeCalendar.json を登録してください。",
		"No calendar credentials are registered. Upload authOfficeCalendar.json under Company settings → Calendar authentication.")
	errUnreadable = apperr.New(apperr.Internal,
		"保存されている認証情報を復号できません。管理者に連絡してください。",
		"The stored credentials cannot be decrypted; contact the operator.")
)

// prove asks Microsoft for a token with f and checks the app holds
// Calendars.ReadWrite: the status to show, and the refusal (errSwapped,
// a rejection or consent missing) when it is not VERIFIED.
func (s *Service) prove(ctx context.Context, companyID string, f authfile.File) (outlook.TokenInfo, Status, error) {
	creds := outlook.Credentials{TenantID: f.TenantID, ClientID: f.ClientID, ClientSecret: f.ClientSecret}
	info, err := s.graph.VerifyCredentials(ctx, creds)
	if err != nil {
		kind := outlook.KindOf(err)
		status, rej := rejection(err)
		if (kind == outlook.KindTenantNotFound || kind == outlook.KindAppNotFound) && s.swapped(ctx, creds) {
			s.log.InfoContext(ctx, "credentials refused: ids swapped", slog.String("company", companyID))
			return info, status, errSwapped
		}
		s.log.InfoContext(ctx, "credentials refused", slog.String("company", companyID), slog.String("tenant", f.TenantID),
			slog.String("client", f.ClientID), slog.String("kind", string(kind)))
		return info, status, rej
	}
	if !info.HasRole(outlook.RequiredRole) {
		s.log.InfoContext(ctx, "credentials refused: consent missing", slog.String("company", companyID), slog.String("client", f.ClientID))
		return info, StatusConsentMissing, consentMissing(info.Roles)
	}
	return info, StatusVerified, nil
}

// DaysUntilExpiry is how many whole days are left before the secret
// expires (negative once it has), or nil when its expiry was not given.
func (st *Settings) DaysUntilExpiry(now time.Time) *int {
	if st.ClientSecretExpiresAt == nil {
		return nil
	}
	d := daysLeft(*st.ClientSecretExpiresAt, now)
	return &d
}

// daysLeft is how many whole days are left from now until at (negative
// once past).
func daysLeft(at, now time.Time) int { return int(math.Floor(at.Sub(now).Hours() / 24)) }

// Check is what checking an auth file found, before anything is stored.
type Check struct {
	TenantID, ClientID, ClientSecretHint string
	ClientSecretExpiresAt                *time.Time
	Status                               Status // "" when the file itself is wrong
	GrantedPermissions                   []string
	// Problems are what registering this file would be refused for.
	Problems []error
}

// Check reads an uploaded auth file and proves it against Microsoft
// exactly as the upload does, and stores nothing: what the host shows
// before its [登録] button. What is wrong is in Problems, not an error.
func (s *Service) Check(ctx context.Context, companyID string, data []byte) *Check {
	out := &Check{GrantedPermissions: []string{}}
	f, err := authfile.Parse(data)
	if err != nil {
		out.Problems = append(out.Problems, err)
		return out
	}
	out.TenantID, out.ClientID, out.ClientSecretHint, out.ClientSecretExpiresAt = f.TenantID, f.ClientID, hint(f.ClientSecret), f.SecretExpiresAt
	info, status, err := s.prove(ctx, companyID, f)
	out.Status = status
	if info.Roles != nil {
		out.GrantedPermissions = info.Roles
	}
	if err != nil {
		out.Problems = append(out.Problems, err)
	}
	return out
}

// Settings returns the company's settings, or nil when none are registered.
func (s *Service) Settings(ctx context.Context, companyID string) (*Settings, error) {
	c, err := s.store.Credential(ctx, companyID)
	if err != nil || c == nil {
		return nil, err
	}
	return settingsOf(c), nil
}

// Register verifies f against Microsoft and, only if Microsoft accepts it
// and the app holds Calendars.ReadWrite, stores it sealed, replacing any
// earlier registration of the company.
func (s *Service) Register(ctx context.Context, companyID, actor string, f authfile.File) (*Settings, error) {
	f, err := authfile.Validate(f)
	if err != nil {
		return nil, err
	}
	info, _, err := s.prove(ctx, companyID, f)
	if err != nil {
		return nil, err
	}

	prev, err := s.store.Credential(ctx, companyID)
	if err != nil {
		return nil, err
	}
	sealed, keyID, err := s.keys.Seal([]byte(f.ClientSecret), companyID)
	if err != nil {
		return nil, fmt.Errorf("sealing client secret: %w", err)
	}
	now := s.now().UTC()
	row := &db.Credential{
		CompanyID: companyID, TenantID: f.TenantID, ClientID: f.ClientID,
		SecretSealed: sealed, SecretKeyID: keyID, SecretHint: hint(f.ClientSecret), SecretExpiresAt: f.SecretExpiresAt,
		Status: string(StatusVerified), GrantedRoles: info.Roles, VerifiedAt: &now, CheckedAt: &now,
		RegisteredBy: actor, RegisteredAt: now,
	}
	detail := map[string]any{"tenant_id": f.TenantID, "client_id": f.ClientID, "secret_hint": row.SecretHint}
	action := "credentials.register"
	appChanged := false
	var old outlook.Credentials
	if prev != nil {
		action = "credentials.replace"
		appChanged = prev.TenantID != f.TenantID || prev.ClientID != f.ClientID
		detail["previous_tenant_id"], detail["previous_client_id"] = prev.TenantID, prev.ClientID
		detail["app_changed"] = appChanged
		if old, err = s.sessions.Open(prev); err == nil {
			detail["secret_changed"] = old.ClientSecret != f.ClientSecret
		}
	}
	if err := s.store.PutCredential(ctx, row, &db.AuditEntry{CompanyID: companyID, Actor: actor, Action: action, Detail: detail}); err != nil {
		return nil, err
	}
	if old.ClientSecret != "" {
		s.graph.Forget(old)
	}
	s.log.InfoContext(ctx, "credentials registered", slog.String("company", companyID), slog.String("action", action),
		slog.String("tenant", f.TenantID), slog.String("client", f.ClientID), slog.Bool("app_changed", appChanged))
	if appChanged && s.subs != nil {
		// A different app must own the company's subscriptions from now on.
		if err := s.subs.RecreateAll(ctx, companyID); err != nil {
			s.log.WarnContext(ctx, "re-creating subscriptions under the new app failed; the renewal loop retries",
				slog.String("company", companyID), slog.String("error", err.Error()))
		}
	}
	return settingsOf(row), nil
}

// swapped reports whether the credentials work with tenant and client ids
// exchanged (reaching the app is enough: the secret may still be wrong).
func (s *Service) swapped(ctx context.Context, c outlook.Credentials) bool {
	if !authfile.IsGUID(c.TenantID) || !authfile.IsGUID(c.ClientID) {
		return false
	}
	_, err := s.graph.VerifyCredentials(ctx, outlook.Credentials{TenantID: c.ClientID, ClientID: c.TenantID, ClientSecret: c.ClientSecret})
	switch outlook.KindOf(err) {
	case outlook.KindInvalidSecret, outlook.KindSecretExpired:
		return true
	}
	return err == nil
}

// Verify re-checks the stored credentials now and records the outcome. It
// answers the updated settings even when Microsoft refuses them: the status
// and lastError say why.
func (s *Service) Verify(ctx context.Context, companyID string) (*Settings, error) {
	c, err := s.store.Credential(ctx, companyID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ErrNotRegistered
	}
	if err := s.check(ctx, c); err != nil {
		return nil, err
	}
	c, err = s.store.Credential(ctx, companyID)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, ErrNotRegistered
	}
	return settingsOf(c), nil
}

// check asks Microsoft about c and records the result.
func (s *Service) check(ctx context.Context, c *db.Credential) error {
	creds, err := s.sessions.Open(c)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	info, err := s.graph.VerifyCredentials(ctx, creds)
	result := db.CredentialCheck{At: now}
	switch {
	case err != nil:
		status, rej := rejection(err)
		result.Status = string(status)
		msg := rej.Message.JA
		result.LastError = &msg
	case !info.HasRole(outlook.RequiredRole):
		result.Status = string(StatusConsentMissing)
		msg := consentMissing(info.Roles).Message.JA
		result.LastError = &msg
		result.Verified, result.GrantedRoles = true, info.Roles
	default:
		result.Status = string(StatusVerified)
		result.Verified, result.GrantedRoles = true, info.Roles
	}
	if result.Status != c.Status {
		s.log.InfoContext(ctx, "credential status changed", slog.String("company", c.CompanyID),
			slog.String("from", c.Status), slog.String("to", result.Status))
	}
	return s.store.RecordCredentialCheck(ctx, c.CompanyID, c.SecretSealed, result)
}

// Delete removes the company's subscriptions (best effort), then its
// credentials; its calendar links stay, marked ERROR with the reason.
func (s *Service) Delete(ctx context.Context, companyID, actor string) (bool, error) {
	c, err := s.store.Credential(ctx, companyID)
	if err != nil {
		return false, err
	}
	if c == nil {
		return false, ErrNotRegistered
	}
	if s.subs != nil {
		if err := s.subs.RemoveAll(ctx, companyID); err != nil {
			s.log.WarnContext(ctx, "removing subscriptions before deleting credentials failed; they expire on their own",
				slog.String("company", companyID), slog.String("error", err.Error()))
		}
	}
	reason := "カレンダー認証設定が削除されました。企業設定で再登録してください。 / The calendar credentials were deleted; register them again in company settings."
	deleted, err := s.store.DeleteCredential(ctx, companyID, reason, &db.AuditEntry{
		CompanyID: companyID, Actor: actor, Action: "credentials.delete",
		Detail: map[string]any{"tenant_id": c.TenantID, "client_id": c.ClientID, "secret_hint": c.SecretHint},
	})
	if err != nil {
		return false, err
	}
	if creds, err := s.sessions.Open(c); err == nil {
		s.graph.Forget(creds)
	}
	s.log.InfoContext(ctx, "credentials deleted", slog.String("company", companyID))
	return deleted, nil
}

// Reseal re-seals every stored secret not yet under the current key (for
// `calsync rotate-key`) and returns how many it moved.
func (s *Service) Reseal(ctx context.Context) (int, error) {
	rows, err := s.store.CredentialsNotUnder(ctx, s.keys.CurrentID())
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range rows {
		c := &rows[i]
		plain, err := s.keys.Open(c.SecretSealed, c.SecretKeyID, c.CompanyID)
		if err != nil {
			return n, fmt.Errorf("opening secret of company %s (key %s): %w", c.CompanyID, c.SecretKeyID, err)
		}
		sealed, keyID, err := s.keys.Seal(plain, c.CompanyID)
		if err != nil {
			return n, err
		}
		ok, err := s.store.Reseal(ctx, c.CompanyID, c.SecretSealed, sealed, keyID)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// MaskHint renders the stored hint for display.
func MaskHint(last string) string { return "••••" + last }

// hint keeps the last 4 characters of a secret long enough that they give
// nothing useful away (real Entra ID secrets are 40 characters).
func hint(secret string) string {
	r := []rune(secret)
	if len(r) < 16 {
		return ""
	}
	return string(r[len(r)-4:])
}

func settingsOf(c *db.Credential) *Settings {
	return &Settings{
		TenantID:              c.TenantID,
		ClientID:              c.ClientID,
		ClientSecretHint:      MaskHint(c.SecretHint),
		ClientSecretExpiresAt: c.SecretExpiresAt,
		Status:                Status(c.Status),
		GrantedPermissions:    slices.Clone(c.GrantedRoles),
		RegisteredAt:          c.RegisteredAt,
		VerifiedAt:            c.VerifiedAt,
		LastError:             c.LastError,
	}
}
