// Package auth verifies the JWTs that the host app sends with every call and
// answers who the caller is: host user id, company and roles. The company is
// always taken from the token, never from an argument, so one company can never
// name another's data.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/tehaishokunin/calsync/apperr"
)

// Role is what a caller may do.
type Role string

// The roles API.md defines.
const (
	// SystemAdmin manages the company's credentials (企業設定) and links.
	SystemAdmin Role = "system_admin"
	// UserAdmin manages users' calendar links (ユーザー管理).
	UserAdmin Role = "user_admin"
	// Service is the host backend: pushes events and reads changes.
	Service Role = "service"
	// Member reads only their own link and changes.
	Member Role = "member"
)

// KnownRoles lists every role, in a stable order.
var KnownRoles = []Role{SystemAdmin, UserAdmin, Service, Member}

// ParseRoles parses a comma-separated role list, refusing unknown names.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(KnownRoles, Role(p)) {
			return nil, fmt.Errorf("unknown role %q (known: system_admin, user_admin, service, member)", p)
		}
		out = append(out, Role(p))
	}
	return out, nil
}

// Caller is the verified identity behind a request.
type Caller struct {
	UserID    string
	CompanyID string
	Roles     []Role
	ExpiresAt time.Time
}

// Has reports whether the caller holds any of roles.
func (c Caller) Has(roles ...Role) bool {
	for _, r := range roles {
		if slices.Contains(c.Roles, r) {
			return true
		}
	}
	return false
}

// Errors every edge answers with.
var (
	ErrNoToken = apperr.New(apperr.Unauthenticated,
		"認証が必要です。Authorization ヘッダーに Bearer トークンを指定してください。",
		"Authentication required: send an Authorization: Bearer <token> header.")
	ErrBadToken = apperr.New(apperr.Unauthenticated,
		"トークンが無効です（署名または形式が正しくありません）。",
		"The token is invalid (bad signature or malformed).")
	ErrExpired = apperr.New(apperr.Unauthenticated,
		"トークンの有効期限が切れています。再ログインしてください。",
		"The token has expired; sign in again.")
	ErrClaims = apperr.New(apperr.Unauthenticated,
		"トークンに必要なクレーム（sub, company_id, roles, exp）がありません。",
		"The token lacks a required claim (sub, company_id, roles, exp).")
	ErrForbidden = apperr.New(apperr.Forbidden,
		"この操作を行う権限がありません。",
		"You do not have permission to perform this operation.")
)

// Verifier checks tokens signed with HS256 (shared secret) and/or RS256 and
// friends (keys from a JWKS URL, cached and refreshed in the background).
type Verifier struct {
	secret []byte
	keys   jwk.Set
	now    func() time.Time
	// verified remembers tokens that passed, by their SHA-256, so the
	// host's backend, which sends the same token with every call, pays for
	// parsing and checking it once a minute instead of on every request
	// (about a tenth of a millisecond of CPU each). Only successes are
	// kept, each until verifiedTTL has passed or the token expires,
	// whichever is first.
	verified struct {
		sync.Mutex
		m map[[sha256.Size]byte]verifiedToken
	}
}

// verifiedToken is a token that passed, and until when that answer stands.
type verifiedToken struct {
	caller Caller
	until  time.Time
}

const (
	// verifiedTTL bounds how long a passed token is taken without being
	// checked again: a key dropped from the JWKS stops being accepted
	// within this time, as it would within the key cache's refresh.
	verifiedTTL = time.Minute
	// verifiedMax bounds the tokens remembered; the memory is then
	// forgotten all at once.
	verifiedMax = 10_000
	// skew is the clock difference allowed on exp and nbf.
	skew = 30 * time.Second
)

// VerifierConfig says which keys are trusted. At least one must be set.
type VerifierConfig struct {
	HS256Secret []byte
	JWKSURL     string
	HTTPClient  *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewVerifier builds a verifier. With a JWKS URL the key set is fetched once
// now (a failure is returned so start-up names the problem) and then kept
// fresh in the background until ctx ends.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	v := &Verifier{secret: cfg.HS256Secret, now: cfg.Now}
	if v.now == nil {
		v.now = time.Now
	}
	if len(cfg.HS256Secret) == 0 && cfg.JWKSURL == "" {
		return nil, errors.New("no token verification configured: set CALSYNC_JWT_SECRET or CALSYNC_JWKS_URL")
	}
	if cfg.JWKSURL != "" {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		cache := jwk.NewCache(ctx)
		if err := cache.Register(cfg.JWKSURL, jwk.WithMinRefreshInterval(5*time.Minute), jwk.WithHTTPClient(client)); err != nil {
			return nil, fmt.Errorf("registering JWKS URL: %w", err)
		}
		if _, err := cache.Refresh(ctx, cfg.JWKSURL); err != nil {
			return nil, fmt.Errorf("fetching JWKS from CALSYNC_JWKS_URL: %w", err)
		}
		v.keys = jwk.NewCachedSet(cache, cfg.JWKSURL)
	}
	return v, nil
}

// Verify checks the token's signature, expiry and claims and returns the
// caller. Errors are *apperr.Error with code UNAUTHENTICATED.
func (v *Verifier) Verify(ctx context.Context, raw string) (Caller, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Caller{}, ErrNoToken
	}
	sum := sha256.Sum256([]byte(raw))
	now := v.now()
	v.verified.Lock()
	hit, ok := v.verified.m[sum]
	v.verified.Unlock()
	if ok && now.Before(hit.until) {
		c := hit.caller
		c.Roles = slices.Clone(c.Roles) // the caller's own, as a fresh verification's
		return c, nil
	}
	c, err := v.verify(ctx, raw)
	if err != nil {
		return Caller{}, err
	}
	until := now.Add(verifiedTTL)
	if exp := c.ExpiresAt.Add(skew); exp.Before(until) {
		until = exp
	}
	v.verified.Lock()
	if v.verified.m == nil || len(v.verified.m) >= verifiedMax {
		v.verified.m = map[[sha256.Size]byte]verifiedToken{}
	}
	kept := c
	kept.Roles = slices.Clone(c.Roles)
	v.verified.m[sum] = verifiedToken{caller: kept, until: until}
	v.verified.Unlock()
	return c, nil
}

// verify is Verify without the memory of passed tokens.
func (v *Verifier) verify(ctx context.Context, raw string) (Caller, error) {
	key, err := v.keyFor(raw)
	if err != nil {
		return Caller{}, err
	}
	opts := []jwt.ParseOption{
		key,
		jwt.WithContext(ctx),
		jwt.WithValidate(true),
		jwt.WithClock(jwt.ClockFunc(v.now)),
		jwt.WithAcceptableSkew(skew),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.SubjectKey),
	}
	tok, err := jwt.ParseString(raw, opts...)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired()) {
			return Caller{}, ErrExpired.Wrap(err)
		}
		if errors.Is(err, jwt.ErrRequiredClaim()) {
			return Caller{}, ErrClaims.Wrap(err)
		}
		return Caller{}, ErrBadToken.Wrap(err)
	}
	c := Caller{UserID: tok.Subject(), ExpiresAt: tok.Expiration()}
	if s, ok := tok.PrivateClaims()["company_id"].(string); ok {
		c.CompanyID = s
	}
	if list, ok := tok.PrivateClaims()["roles"].([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok && slices.Contains(KnownRoles, Role(s)) {
				c.Roles = append(c.Roles, Role(s))
			}
		}
	}
	if c.UserID == "" || c.CompanyID == "" || len(c.Roles) == 0 {
		return Caller{}, ErrClaims
	}
	return c, nil
}

// asymmetric are the algorithms accepted with keys from CALSYNC_JWKS_URL.
var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true, "EdDSA": true,
}

// maxHeaderBytes bounds the encoded JOSE header read before verifying.
const maxHeaderBytes = 4096

// keyFor reads the token's protected header and picks the one key source
// its algorithm belongs to: HS256 only with the shared secret, the
// asymmetric algorithms only with the JWKS, so a header can never steer
// verification to another source's algorithm (an RS256 header over an HMAC
// signature is refused). Only the compact serialization is accepted, and a
// header with "crit" is refused: calsync understands no JWS extension, and
// RFC 7515 §4.1.11 makes such a token invalid.
func (v *Verifier) keyFor(raw string) (jwt.ParseOption, error) {
	enc, _, _ := strings.Cut(raw, ".")
	if strings.Count(raw, ".") != 2 || len(enc) > maxHeaderBytes {
		return nil, ErrBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil, ErrBadToken
	}
	var h struct {
		Alg  string           `json:"alg"`
		Kid  string           `json:"kid"`
		Crit *json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(b, &h); err != nil || h.Crit != nil {
		return nil, ErrBadToken
	}
	switch {
	case h.Alg == "HS256" && len(v.secret) > 0:
		return jwt.WithKey(jwa.HS256, v.secret), nil
	case asymmetric[h.Alg] && v.keys != nil:
		if h.Kid != "" {
			// A key that names its algorithm is used only with that one.
			if k, ok := v.keys.LookupKeyID(h.Kid); ok && k.Algorithm().String() != "" && k.Algorithm().String() != h.Alg {
				return nil, ErrBadToken
			}
		}
		return jwt.WithKeySet(v.keys, jws.WithInferAlgorithmFromKey(true), jws.WithRequireKid(false)), nil
	}
	return nil, ErrBadToken
}

// Sign makes an HS256 token for c, for `calsync dev-token` and tests. It is
// not used to serve requests.
func Sign(secret []byte, c Caller, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("no CALSYNC_JWT_SECRET configured: refusing to sign a token")
	}
	roles := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		roles[i] = string(r)
	}
	tok, err := jwt.NewBuilder().
		Subject(c.UserID).
		IssuedAt(now).
		Expiration(now.Add(ttl)).
		Claim("company_id", c.CompanyID).
		Claim("roles", roles).
		Build()
	if err != nil {
		return "", fmt.Errorf("building token: %w", err)
	}
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, secret))
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return string(b), nil
}

type callerKey struct{}

// result is what the transport found: a caller, or why there is none.
type result struct {
	caller Caller
	err    error
}

// WithCaller stores a verified caller in ctx.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, result{caller: c})
}

// WithFailure records that the request carried a token that failed
// verification, so operations answer with the precise reason.
func WithFailure(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, callerKey{}, result{err: err})
}

// FromContext returns the caller, or the reason there is none.
func FromContext(ctx context.Context) (Caller, error) {
	r, ok := ctx.Value(callerKey{}).(result)
	if !ok {
		return Caller{}, ErrNoToken
	}
	if r.err != nil {
		return Caller{}, r.err
	}
	return r.caller, nil
}

// Require returns the caller if it holds any of roles, UNAUTHENTICATED when
// there is no valid token, FORBIDDEN otherwise.
func Require(ctx context.Context, roles ...Role) (Caller, error) {
	c, err := FromContext(ctx)
	if err != nil {
		return Caller{}, err
	}
	if !c.Has(roles...) {
		return Caller{}, ErrForbidden
	}
	return c, nil
}

// BearerToken extracts the token from an Authorization header value; ok is
// false when the header is absent.
func BearerToken(header string) (string, bool) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", false
	}
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}
