package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/tehaishokunin/calsync/apperr"
)

var secret = []byte("test-secret-0123456789abcdef0123")

func TestHS256(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	v, err := NewVerifier(ctx, VerifierConfig{HS256Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	want := Caller{UserID: "u1", CompanyID: "c1", Roles: []Role{SystemAdmin, Member}}
	tok, err := Sign(secret, want, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != "u1" || got.CompanyID != "c1" || !got.Has(SystemAdmin) || !got.Has(Member) || got.Has(Service) {
		t.Fatalf("caller = %+v", got)
	}

	t.Run("expired", func(t *testing.T) {
		old, _ := Sign(secret, want, time.Minute, now.Add(-time.Hour))
		_, err := v.Verify(ctx, old)
		if !errorIs(err, ErrExpired) {
			t.Fatalf("err = %v, want expired", err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		forged, _ := Sign([]byte("another-secret-another-secret-xx"), want, time.Hour, now)
		_, err := v.Verify(ctx, forged)
		if !errorIs(err, ErrBadToken) {
			t.Fatalf("err = %v, want bad token", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		_, err := v.Verify(ctx, "not.a.jwt")
		if apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("alg none refused", func(t *testing.T) {
		tok, _ := jwt.NewBuilder().Subject("u1").Expiration(now.Add(time.Hour)).Claim("company_id", "c1").Claim("roles", []string{"system_admin"}).Build()
		b, err := jwt.Sign(tok, jwt.WithInsecureNoSignature())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(ctx, string(b)); apperr.CodeOf(err) != apperr.Unauthenticated {
			t.Fatalf("unsigned token accepted: %v", err)
		}
	})
	t.Run("missing company", func(t *testing.T) {
		tok, _ := Sign(secret, Caller{UserID: "u1", Roles: []Role{Member}}, time.Hour, now)
		if _, err := v.Verify(ctx, tok); !errorIs(err, ErrClaims) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing exp", func(t *testing.T) {
		tok, _ := jwt.NewBuilder().Subject("u1").Claim("company_id", "c1").Claim("roles", []string{"system_admin"}).Build()
		b, _ := jwt.Sign(tok, jwt.WithKey(jwa.HS256, secret))
		if _, err := v.Verify(ctx, string(b)); !errorIs(err, ErrClaims) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRS256ViaJWKS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := jwk.FromRaw(priv)
	_ = key.Set(jwk.KeyIDKey, "k1")
	pub, _ := key.PublicKey()
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()

	v, err := NewVerifier(ctx, VerifierConfig{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jwt.NewBuilder().Subject("svc").Expiration(time.Now().Add(time.Hour)).
		Claim("company_id", "c9").Claim("roles", []string{"service"}).Build()
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, key))
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, string(b))
	if err != nil {
		t.Fatal(err)
	}
	if c.CompanyID != "c9" || !c.Has(Service) {
		t.Fatalf("caller = %+v", c)
	}
	// An HS256 token must not verify when only JWKS is configured, even if it
	// is signed with the public key's bytes (algorithm confusion).
	hs, _ := Sign([]byte("whatever-secret-whatever-secret!"), c, time.Hour, time.Now())
	if _, err := v.Verify(ctx, hs); !errorIs(err, ErrBadToken) {
		t.Fatalf("HS256 accepted by JWKS-only verifier: %v", err)
	}
}

func TestRequire(t *testing.T) {
	ctx := context.Background()
	if _, err := Require(ctx, Member); !errorIs(err, ErrNoToken) {
		t.Fatalf("no caller: %v", err)
	}
	ctx2 := WithCaller(ctx, Caller{UserID: "u", CompanyID: "c", Roles: []Role{Member}})
	if _, err := Require(ctx2, SystemAdmin); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("wrong role: %v", err)
	}
	if _, err := Require(ctx2, SystemAdmin, Member); err != nil {
		t.Fatalf("right role: %v", err)
	}
	ctx3 := WithFailure(ctx, ErrExpired)
	if _, err := Require(ctx3, Member); !errorIs(err, ErrExpired) {
		t.Fatalf("failure not kept: %v", err)
	}
}

func TestParseRoles(t *testing.T) {
	r, err := ParseRoles("system_admin, user_admin")
	if err != nil || len(r) != 2 {
		t.Fatalf("%v %v", r, err)
	}
	if _, err := ParseRoles("root"); err == nil {
		t.Fatal("unknown role accepted")
	}
}

// errorIs compares by identity of the message, since all share a code.
func errorIs(err error, want *apperr.Error) bool {
	e := apperr.As(err)
	return e.Code == want.Code && e.Message == want.Message
}

// hmacWithHeader signs claims with HMAC-SHA256 under an arbitrary
// protected header, as an attacker crafting a token would.
func hmacWithHeader(t *testing.T, header map[string]any, key []byte) string {
	t.Helper()
	claims := map[string]any{"sub": "u1", "company_id": "c1", "roles": []string{"system_admin"}, "exp": time.Now().Add(time.Hour).Unix()}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestHeaderAlgorithmAndCritEnforced(t *testing.T) {
	ctx := context.Background()
	v, err := NewVerifier(ctx, VerifierConfig{HS256Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	// The control: a hand-made HS256 token verifies.
	if _, err := v.Verify(ctx, hmacWithHeader(t, map[string]any{"alg": "HS256", "typ": "JWT"}, secret)); err != nil {
		t.Fatalf("hand-made HS256 token refused: %v", err)
	}
	for name, h := range map[string]map[string]any{
		"RS256 header over an HMAC signature":  {"alg": "RS256", "typ": "JWT"},
		"HS512 header over an HS256 signature": {"alg": "HS512"},
		"no alg":                               {"typ": "JWT"},
		"crit naming an extension":             {"alg": "HS256", "crit": []string{"exp"}, "exp": 1},
		"empty crit":                           {"alg": "HS256", "crit": []string{}},
	} {
		if _, err := v.Verify(ctx, hmacWithHeader(t, h, secret)); !errorIs(err, ErrBadToken) {
			t.Errorf("%s: accepted (%v)", name, err)
		}
	}
	// JSON serialization and oversized headers are refused before parsing.
	for name, tok := range map[string]string{
		"json serialization": `{"payload":"e30","signatures":[]}`,
		"huge header":        strings.Repeat("A", 100000) + ".e30.sig",
		"four parts":         "a.b.c.d",
	} {
		if _, err := v.Verify(ctx, tok); !errorIs(err, ErrBadToken) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestPassedTokensAreRememberedWithinTheirLife checks the memory of passed
// tokens: a remembered token still expires on time and is checked again
// after verifiedTTL, and a token differing in any byte (a forged signature
// over the same claims) is never taken for a remembered one.
func TestPassedTokensAreRememberedWithinTheirLife(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	v, err := NewVerifier(ctx, VerifierConfig{HS256Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	want := Caller{UserID: "u1", CompanyID: "c1", Roles: []Role{Service}}
	tok, _ := Sign(secret, want, 5*time.Minute, now)
	first, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	first.Roles[0] = SystemAdmin // a caller changing its copy changes nothing remembered
	again, err := v.Verify(ctx, tok)
	if err != nil || again.UserID != "u1" || !again.Has(Service) || again.Has(SystemAdmin) {
		t.Fatalf("remembered token read back as %+v, %v", again, err)
	}

	// The same header and claims with another signature: refused, though
	// the genuine token is remembered.
	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	sig[0] ^= 1
	if sig[0] == '.' {
		sig[0] = 'A'
	}
	forged := parts[0] + "." + parts[1] + "." + string(sig)
	if _, err := v.Verify(ctx, forged); !errorIs(err, ErrBadToken) {
		t.Fatalf("forged signature accepted: %v", err)
	}

	// Checked again after verifiedTTL: a verifier whose secret changed
	// meanwhile (a key dropped from the JWKS) stops taking it.
	v.secret = []byte("rotated-secret-rotated-secret-xx")
	now = now.Add(verifiedTTL - time.Second)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("remembered token refused within verifiedTTL: %v", err)
	}
	now = now.Add(2 * time.Second)
	if _, err := v.Verify(ctx, tok); !errorIs(err, ErrBadToken) {
		t.Fatalf("token taken from memory after verifiedTTL: %v", err)
	}

	// A remembered token still expires when its exp (and the skew) passes.
	v.secret = secret
	short, _ := Sign(secret, want, 10*time.Second, now)
	if _, err := v.Verify(ctx, short); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10*time.Second + skew + time.Second)
	if _, err := v.Verify(ctx, short); !errorIs(err, ErrExpired) {
		t.Fatalf("remembered token outlived its exp: %v", err)
	}
}
