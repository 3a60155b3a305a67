package credentials_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/db/dbtest"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/secrets"
)

const (
	tenantA = "aaaaaaaa-0000-4000-8000-000000000001"
	appA    = "aaaaaaaa-1111-4000-8000-000000000001"
	secretA = "Qa8Q~secret-value-of-app-a-0000000001"
	appA2   = "aaaaaaaa-2222-4000-8000-000000000002"
	secretB = "Qb8Q~secret-value-of-app-b-0000000002"
	tenantB = "bbbbbbbb-0000-4000-8000-000000000001"
	appB    = "bbbbbbbb-1111-4000-8000-000000000001"
	appNC   = "aaaaaaaa-3333-4000-8000-000000000003"
)

// recorder is the Subscriptions hook: the subscriptions package does not
// exist yet, so the test records what the service asks of it.
type recorder struct {
	mu        sync.Mutex
	recreated []string
	removed   []string
}

func (r *recorder) RecreateAll(_ context.Context, c string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recreated = append(r.recreated, c)
	return nil
}

func (r *recorder) RemoveAll(_ context.Context, c string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, c)
	return nil
}

type bundle struct {
	svc      *credentials.Service
	sessions *credentials.Sessions
	store    *db.Store
	emu      *graphemu.Server
	graph    *outlook.Client
	subs     *recorder
	logs     *bytes.Buffer
	key      []byte
}

func newKey(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func setup(t *testing.T) *bundle {
	t.Helper()
	emu, err := graphemu.Start("", graphemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	past := time.Now().Add(-time.Hour)
	if _, err := emu.AddTenant(graphemu.TenantSpec{TenantID: tenantA, Domain: "a.onmicrosoft.com", Apps: []graphemu.AppSpec{
		{ClientID: appA, Secret: secretA, Roles: []string{"Calendars.ReadWrite"}},
		{ClientID: appA2, Secret: secretB, Roles: []string{"Calendars.ReadWrite", "User.Read.All"}},
		{ClientID: appNC, Secret: secretA, Roles: []string{"User.Read.All"}},
		{ClientID: "aaaaaaaa-4444-4000-8000-000000000004", Secret: secretA, SecretExpiresAt: &past, Roles: []string{"Calendars.ReadWrite"}},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.AddTenant(graphemu.TenantSpec{TenantID: tenantB, Domain: "b.onmicrosoft.com", Apps: []graphemu.AppSpec{
		{ClientID: appB, Secret: secretB, Roles: []string{"Calendars.ReadWrite"}},
	}}); err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	keys, _ := secrets.NewKeyring(key)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := db.NewStore(dbtest.New(t))
	graph := outlook.New(outlook.Config{GraphBaseURL: emu.URL, LoginBaseURL: emu.URL, Transport: emu.Transport()})
	subs := &recorder{}
	sessions := credentials.NewSessions(store, keys, graph, log)
	return &bundle{svc: credentials.NewService(sessions, graph, subs, log), sessions: sessions, store: store, emu: emu, graph: graph, subs: subs, logs: &logs, key: key}
}

func file(tenant, client, secret string) authfile.File {
	return authfile.File{TenantID: tenant, ClientID: client, ClientSecret: secret}
}

func TestRegisterAndRead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	s, err := b.svc.Register(ctx, "acme", "admin-1", file(tenantA, appA, secretA))
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != credentials.StatusVerified || s.ClientSecretHint != "••••0001" || s.TenantID != tenantA ||
		len(s.GrantedPermissions) != 1 || s.VerifiedAt == nil {
		t.Fatalf("settings %+v", s)
	}
	row, _ := b.store.Credential(ctx, "acme")
	if bytes.Contains(row.SecretSealed, []byte(secretA)) || strings.Contains(row.SecretHint, secretA[:10]) || row.SecretKeyID != secrets.KeyID(b.key) {
		t.Fatal("secret stored in the clear")
	}
	var plain int
	if err := b.store.DB().NewRaw("SELECT count(*) FROM credentials WHERE row_to_json(credentials.*)::text LIKE ?", "%"+secretA+"%").Scan(ctx, &plain); err != nil || plain != 0 {
		t.Fatalf("a column holds the secret in plain text (%d, %v)", plain, err)
	}
	creds, err := b.sessions.Credentials(ctx, "acme")
	if err != nil || creds.ClientSecret != secretA {
		t.Fatalf("opening: %v", err)
	}
	audit, _ := b.store.AuditEntries(ctx, "acme")
	if len(audit) != 1 || audit[0].Action != "credentials.register" || audit[0].Actor != "admin-1" {
		t.Fatalf("audit %+v", audit)
	}
	if strings.Contains(b.logs.String(), secretA) {
		t.Fatal("the secret reached the log")
	}
	if other, _ := b.svc.Settings(ctx, "other-co"); other != nil {
		t.Fatal("another company sees acme's settings")
	}
}

func TestRejections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		f      authfile.File
		code   apperr.Code
		status string
		field  string
	}{
		{"wrong secret", file(tenantA, appA, "Qz8Q~not-the-right-secret-value-000000"), apperr.CredentialsRejected, "INVALID_SECRET", "client_secret"},
		{"expired secret", file(tenantA, "aaaaaaaa-4444-4000-8000-000000000004", secretA), apperr.CredentialsRejected, "SECRET_EXPIRED", "client_secret"},
		{"unknown tenant", file("cccccccc-0000-4000-8000-000000000009", appA, secretA), apperr.CredentialsRejected, "TENANT_NOT_FOUND", "tenant_id"},
		{"unknown domain", file("nobody.onmicrosoft.com", appA, secretA), apperr.CredentialsRejected, "TENANT_NOT_FOUND", "tenant_id"},
		{"unknown app", file(tenantA, "cccccccc-1111-4000-8000-000000000009", secretA), apperr.CredentialsRejected, "APP_NOT_FOUND", "client_id"},
		{"no consent", file(tenantA, appNC, secretA), apperr.ConsentMissing, "CONSENT_MISSING", "client_id"},
		{"swapped ids", file(appA, tenantA, secretA), apperr.AuthFileInvalid, "", "tenant_id"},
		{"secret id instead of value", file(tenantA, appA, "0f3c5b6e-9d2a-4f4e-8a0b-1c2d3e4f5a6b"), apperr.AuthFileInvalid, "", "client_secret"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.svc.Register(ctx, "acme", "admin-1", c.f)
			ae := apperr.As(err)
			status, _ := ae.Extra["status"].(string)
			if ae.Code != c.code || status != c.status || ae.Field != c.field || ae.Hint == nil {
				t.Fatalf("code=%s status=%q field=%q hint=%v (%v)", ae.Code, status, ae.Field, ae.Hint, err)
			}
			if strings.Contains(ae.Message.EN+ae.Message.JA+ae.Hint.EN+ae.Hint.JA, c.f.ClientSecret) {
				t.Fatal("error shows the secret")
			}
			if s, _ := b.svc.Settings(ctx, "acme"); s != nil {
				t.Fatal("refused credentials were stored")
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		keys, _ := secrets.NewKeyring(b.key)
		dead := outlook.New(outlook.Config{GraphBaseURL: "https://127.0.0.1:1", LoginBaseURL: "https://127.0.0.1:1", Transport: b.emu.Transport()})
		svc := credentials.NewService(credentials.NewSessions(b.store, keys, dead, slog.New(slog.NewTextHandler(b.logs, nil))), dead, nil, slog.New(slog.NewTextHandler(b.logs, nil)))
		_, err := svc.Register(ctx, "acme", "admin-1", file(tenantA, appA, secretA))
		ae := apperr.As(err)
		if ae.Code != apperr.CredentialsRejected || ae.Extra["status"] != "UNREACHABLE" {
			t.Fatalf("%v", err)
		}
	})
	if strings.Contains(b.logs.String(), secretA) {
		t.Fatal("a secret reached the log")
	}
}

func TestReplaceVerifyAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.svc.Register(ctx, "acme", "admin-1", file(tenantA, appA, secretA)); err != nil {
		t.Fatal(err)
	}
	// Routine secret rotation of the same app keeps subscriptions.
	if _, err := b.emu.AddTenant(graphemu.TenantSpec{TenantID: tenantA, Apps: []graphemu.AppSpec{{ClientID: appA, Secret: secretB, Roles: []string{"Calendars.ReadWrite"}}}}); err != nil {
		t.Fatal(err)
	}
	s, err := b.svc.Register(ctx, "acme", "admin-2", file(tenantA, appA, secretB))
	if err != nil || s.ClientSecretHint != "••••0002" {
		t.Fatalf("%+v %v", s, err)
	}
	if len(b.subs.recreated) != 0 {
		t.Fatal("a secret rotation re-created subscriptions")
	}
	// Another app of the tenant moves the subscriptions.
	if _, err := b.svc.Register(ctx, "acme", "admin-2", file(tenantA, appA2, secretB)); err != nil {
		t.Fatal(err)
	}
	if len(b.subs.recreated) != 1 || b.subs.recreated[0] != "acme" {
		t.Fatalf("recreated %v", b.subs.recreated)
	}
	audit, _ := b.store.AuditEntries(ctx, "acme")
	if len(audit) != 3 || audit[1].Action != "credentials.replace" || audit[1].Detail["app_changed"] != false ||
		audit[1].Detail["secret_changed"] != true || audit[2].Detail["app_changed"] != true {
		t.Fatalf("audit %+v", audit)
	}

	// The secret expires in Entra ID: verification shows it without losing
	// the registration.
	past := time.Now().Add(-time.Minute)
	if _, err := b.emu.AddTenant(graphemu.TenantSpec{TenantID: tenantA, Apps: []graphemu.AppSpec{{ClientID: appA2, Secret: secretB, SecretExpiresAt: &past, Roles: []string{"Calendars.ReadWrite"}}}}); err != nil {
		t.Fatal(err)
	}
	v, err := b.svc.Verify(ctx, "acme")
	if err != nil || v.Status != credentials.StatusSecretExpired || v.LastError == nil || v.TenantID != tenantA {
		t.Fatalf("verify: %+v %v", v, err)
	}

	// The daily checker finds a recovered app.
	if _, err := b.emu.AddTenant(graphemu.TenantSpec{TenantID: tenantA, Apps: []graphemu.AppSpec{{ClientID: appA2, Secret: secretB, Roles: []string{"Calendars.ReadWrite"}}}}); err != nil {
		t.Fatal(err)
	}
	checker := credentials.NewChecker(b.svc, time.Hour, 0, slog.New(slog.NewTextHandler(b.logs, nil)))
	if n := checker.RunOnce(ctx); n != 1 {
		t.Fatalf("checked %d", n)
	}
	if s, _ := b.svc.Settings(ctx, "acme"); s.Status != credentials.StatusVerified {
		t.Fatalf("after check: %+v", s)
	}

	// Delete: subscriptions first, then credentials; links remain, in ERROR.
	if _, err := b.store.DB().NewRaw("INSERT INTO calendar_links (company_id, user_id, provider, calendar_id, status) VALUES ('acme', 'u1', 'OFFICE365_OUTLOOK', 'taro@a.onmicrosoft.com', 'ACTIVE')").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err := b.svc.Delete(ctx, "acme", "admin-3")
	if err != nil || !ok || len(b.subs.removed) != 1 {
		t.Fatalf("delete %v %v %v", ok, err, b.subs.removed)
	}
	if s, _ := b.svc.Settings(ctx, "acme"); s != nil {
		t.Fatal("still registered")
	}
	var status, lastError string
	if err := b.store.DB().NewRaw("SELECT status, last_error FROM calendar_links WHERE company_id = 'acme'").Scan(ctx, &status, &lastError); err != nil || status != "ERROR" || !strings.Contains(lastError, "deleted") {
		t.Fatalf("link after delete: %s %q %v", status, lastError, err)
	}
	if _, err := b.svc.Delete(ctx, "acme", "admin-3"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := b.svc.Verify(ctx, "acme"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("verify after delete: %v", err)
	}
	audit, _ = b.store.AuditEntries(ctx, "acme")
	if last := audit[len(audit)-1]; last.Action != "credentials.delete" || last.Actor != "admin-3" {
		t.Fatalf("audit %+v", last)
	}
	if strings.Contains(b.logs.String(), secretA) || strings.Contains(b.logs.String(), secretB) {
		t.Fatal("a secret reached the log")
	}
}

func TestCompaniesNeverMix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.svc.Register(ctx, "company-a", "a", file(tenantA, appA, secretA)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Register(ctx, "company-b", "b", file(tenantB, appB, secretB)); err != nil {
		t.Fatal(err)
	}
	ca, _ := b.sessions.Credentials(ctx, "company-a")
	cb, _ := b.sessions.Credentials(ctx, "company-b")
	if ca.ClientSecret != secretA || cb.ClientSecret != secretB || ca.TenantID != tenantA || cb.TenantID != tenantB {
		t.Fatal("credentials mixed")
	}
	// A sealed secret copied into another company's row does not open.
	if _, err := b.store.DB().NewRaw("UPDATE credentials SET secret_sealed = (SELECT secret_sealed FROM credentials WHERE company_id = 'company-b') WHERE company_id = 'company-a'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.sessions.Credentials(ctx, "company-a"); apperr.CodeOf(err) != apperr.Internal {
		t.Fatalf("copied ciphertext opened: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.svc.Register(ctx, "acme", "a", file(tenantA, appA, secretA)); err != nil {
		t.Fatal(err)
	}
	newKey := newKey(t)
	log := slog.New(slog.NewTextHandler(b.logs, nil))
	onlyNew, _ := secrets.NewKeyring(newKey)
	if _, err := credentials.NewSessions(b.store, onlyNew, b.graph, log).Credentials(ctx, "acme"); apperr.CodeOf(err) != apperr.Internal {
		t.Fatalf("opened without the old key: %v", err)
	}
	both, _ := secrets.NewKeyring(newKey, b.key)
	rotating := credentials.NewService(credentials.NewSessions(b.store, both, b.graph, log), b.graph, nil, log)
	if n, err := rotating.Reseal(ctx); err != nil || n != 1 {
		t.Fatalf("resealed %d, %v", n, err)
	}
	if n, _ := rotating.Reseal(ctx); n != 0 {
		t.Fatalf("second reseal moved %d", n)
	}
	c, err := credentials.NewSessions(b.store, onlyNew, b.graph, log).Credentials(ctx, "acme")
	if err != nil || c.ClientSecret != secretA {
		t.Fatalf("after rotation: %v", err)
	}
}
