package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwt"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/db"
)

const settingsQuery = `{ calendarAuthSettings { tenantId clientId clientSecretHint status grantedPermissions registeredAt verifiedAt } }`

func TestCallerAuthentication(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)

	cases := []struct {
		name, tok, code string
	}{
		{"no token", "", "UNAUTHENTICATED"},
		{"garbage", "abc.def.ghi", "UNAUTHENTICATED"},
		{"bad signature", signWith(t, "another-secret-another-secret-another", time.Hour), "UNAUTHENTICATED"},
		{"expired", signWith(t, testSecret, -time.Hour), "UNAUTHENTICATED"},
		{"wrong role", token(t, "acme", "u1", "user_admin", "member"), "FORBIDDEN"},
		{"service role", token(t, "acme", "u1", "service"), "FORBIDDEN"},
		{"right role", token(t, "acme", "u1", "system_admin"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.gql(t, c.tok, settingsQuery, nil)
			if r.code() != c.code {
				t.Fatalf("code = %q, want %q (%+v)", r.code(), c.code, r.Errors)
			}
		})
	}

	t.Run("expired and forged tokens say why", func(t *testing.T) {
		exp := a.gql(t, signWith(t, testSecret, -time.Hour), settingsQuery, nil, "Accept-Language", "en")
		bad := a.gql(t, signWith(t, "another-secret-another-secret-another", time.Hour), settingsQuery, nil, "Accept-Language", "en")
		if !strings.Contains(exp.Errors[0].Message, "expired") || !strings.Contains(bad.Errors[0].Message, "invalid") {
			t.Fatalf("messages: %q / %q", exp.Errors[0].Message, bad.Errors[0].Message)
		}
	})
	t.Run("message language follows Accept-Language, Japanese by default", func(t *testing.T) {
		ja := a.gql(t, "", settingsQuery, nil)
		en := a.gql(t, "", settingsQuery, nil, "Accept-Language", "en-US,en;q=0.9")
		if !strings.Contains(ja.Errors[0].Message, "認証") {
			t.Fatalf("default message not Japanese: %q", ja.Errors[0].Message)
		}
		if !strings.Contains(en.Errors[0].Message, "Authentication required") {
			t.Fatalf("English message: %q", en.Errors[0].Message)
		}
	})
	t.Run("query errors have a code", func(t *testing.T) {
		r := a.gql(t, token(t, "acme", "u1", "system_admin"), `{ noSuchField }`, nil)
		if r.code() == "" {
			t.Fatalf("no code on validation error: %+v", r.Errors)
		}
	})
}

func signWith(t *testing.T, secret string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	tok, _ := jwt.NewBuilder().Subject("u1").IssuedAt(now.Add(-2*time.Hour)).Expiration(now.Add(ttl)).
		Claim("company_id", "acme").Claim("roles", []string{"system_admin"}).Build()
	b, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256, []byte(secret)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCompaniesNeverSeeEachOther(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	a := startApp(t, map[string]string{"DATABASE_URL": dsn})
	store := db.NewStore(db.Open(dsn, db.Options{MaxOpenConns: 2}))
	defer store.DB().Close()

	waitFor(t, "readiness", 10*time.Second, func() bool { s, _ := get(t, a.base+"/readyz"); return s == 200 })
	now := time.Now().UTC().Truncate(time.Second)
	err := store.PutCredential(context.Background(), &db.Credential{
		CompanyID: "company-b", TenantID: "b-tenant.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555",
		SecretSealed: []byte("sealed"), SecretKeyID: "k1", SecretHint: "wxyz", Status: "VERIFIED",
		GrantedRoles: []string{"Calendars.ReadWrite"}, VerifiedAt: &now, RegisteredBy: "admin-b", RegisteredAt: now,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}

	asA := a.gql(t, token(t, "company-a", "admin-a", "system_admin"), settingsQuery, nil)
	if asA.code() != "" || string(asA.Data["calendarAuthSettings"]) != "null" {
		t.Fatalf("company A sees %s %+v", asA.Data["calendarAuthSettings"], asA.Errors)
	}
	asB := a.gql(t, token(t, "company-b", "admin-b", "system_admin"), settingsQuery, nil)
	var s struct {
		TenantID, ClientSecretHint, Status string
		GrantedPermissions                 []string
		VerifiedAt                         time.Time
	}
	if err := json.Unmarshal(asB.Data["calendarAuthSettings"], &s); err != nil {
		t.Fatalf("%s %+v: %v", asB.Data["calendarAuthSettings"], asB.Errors, err)
	}
	if s.TenantID != "b-tenant.onmicrosoft.com" || s.ClientSecretHint != "••••wxyz" || s.Status != "VERIFIED" ||
		len(s.GrantedPermissions) != 1 || !s.VerifiedAt.Equal(now) {
		t.Fatalf("company B settings = %+v", s)
	}
}

func TestReadyzFollowsPostgres(t *testing.T) {
	t.Parallel()
	proxy := newTCPProxy(t, pgHostPort(t))
	dsn := proxiedURL(t, proxy, schemaURL(t))
	a := startApp(t, map[string]string{"DATABASE_URL": dsn})

	waitFor(t, "ready", 10*time.Second, func() bool { s, _ := get(t, a.base+"/readyz"); return s == 200 })
	proxy.stop()
	var body string
	waitFor(t, "503 while Postgres is unreachable", 15*time.Second, func() bool {
		var s int
		s, body = get(t, a.base+"/readyz")
		return s == 503
	})
	if !strings.Contains(body, "database unreachable") || strings.Contains(body, "127.0.0.1") {
		t.Fatalf("readyz body %q", body)
	}
	if s, _ := get(t, a.base+"/healthz"); s != 200 {
		t.Fatalf("healthz = %d while db down; liveness must not depend on the database", s)
	}
	proxy.start(t)
	waitFor(t, "200 after Postgres returns", 15*time.Second, func() bool { s, _ := get(t, a.base+"/readyz"); return s == 200 })
}

func TestReadyzWaitsForMigrations(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	a := startApp(t, map[string]string{"DATABASE_URL": dsn})
	var out bytes.Buffer
	env := map[string]string{"CALSYNC_GRAPH": "emulator", "DATABASE_URL": dsn}
	if err := run(context.Background(), []string{"migrate", "down"}, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "rolled back") {
		t.Fatalf("migrate down said %q", out.String())
	}
	s, body := get(t, a.base+"/readyz")
	if s != 503 || !strings.Contains(body, "migrations pending") {
		t.Fatalf("readyz = %d %s", s, body)
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "status"}, func(k string) string { return env[k] }, &out, io.Discard); err != nil || !strings.Contains(out.String(), "pending") {
		t.Fatalf("status: %q %v", out.String(), err)
	}
	if err := run(context.Background(), []string{"migrate", "up"}, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s, _ := get(t, a.base+"/readyz"); s != 200 {
		t.Fatalf("readyz after up = %d", s)
	}
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_MAX_BODY_BYTES": "4096"})
	big := `{"query":"{ __typename }","variables":{"x":"` + strings.Repeat("a", 5000) + `"}}`
	resp, err := http.Post(a.base+"/graphql", "application/json", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared length: status %d", resp.StatusCode)
	}
	// Chunked: no Content-Length to check up front.
	req, _ := http.NewRequest(http.MethodPost, a.base+"/graphql", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "REQUEST_TOO_LARGE") {
		t.Fatalf("chunked: status %d %s", resp.StatusCode, b)
	}
	small := a.gql(t, "", `{ __typename }`, nil)
	if string(small.Data["__typename"]) != `"Query"` {
		t.Fatalf("small request failed: %+v", small)
	}
}

func TestMetricsAndPlayground(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	a.gql(t, "", `{ __typename }`, nil)
	if s, body := get(t, a.base+"/playground"); s != 200 || !strings.Contains(body, "/graphql") {
		t.Fatalf("playground = %d", s)
	}
	_, body := get(t, a.base+"/metrics")
	for _, want := range []string{
		`calsync_http_requests_total{code="200",method="post",route="/graphql"}`,
		`calsync_http_request_duration_seconds_bucket{method="post",route="/graphql"`,
		`go_goroutines`,
		`go_sql_wait_count_total{db_name="main"}`,
		`go_sql_in_use_connections{db_name="locks"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestWebsocketAuthentication(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	a := startApp(t, map[string]string{"DATABASE_URL": dsn})
	store := db.NewStore(db.Open(dsn, db.Options{MaxOpenConns: 2}))
	defer store.DB().Close()
	wsURL := strings.Replace(a.base, "http", "ws", 1) + "/graphql"
	dial := func(t *testing.T, payload map[string]any) *websocket.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Subprotocol() != "graphql-transport-ws" {
			t.Fatalf("subprotocol %q", c.Subprotocol())
		}
		if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": payload}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	read := func(c *websocket.Conn) (map[string]any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var m map[string]any
		err := wsjson.Read(ctx, c, &m)
		return m, err
	}

	t.Run("no token closes the socket", func(t *testing.T) {
		c := dial(t, map[string]any{})
		defer c.CloseNow()
		for {
			_, err := read(c)
			if err != nil {
				if websocket.CloseStatus(err) == -1 {
					t.Fatalf("socket not closed by the server: %v", err)
				}
				return
			}
		}
	})
	t.Run("forged token closes the socket", func(t *testing.T) {
		c := dial(t, map[string]any{"Authorization": "Bearer " + signWith(t, "another-secret-another-secret-another", time.Hour)})
		defer c.CloseNow()
		for {
			m, err := read(c)
			if err != nil {
				return
			}
			if m["type"] == "connection_ack" {
				t.Fatal("forged token acknowledged")
			}
		}
	})
	t.Run("valid token subscribes", func(t *testing.T) {
		c := dial(t, map[string]any{"Authorization": "Bearer " + token(t, "acme", "svc", "service")})
		defer c.CloseNow()
		m, err := read(c)
		if err != nil || m["type"] != "connection_ack" {
			t.Fatalf("init answer %v %v", m, err)
		}
		ctx := context.Background()
		if err := wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
			"query": `subscription { calendarChanged { cursor outlookEventId changeType } }`}}); err != nil {
			t.Fatal(err)
		}
		// A change recorded (by any replica) reaches the subscriber. The
		// subscription starts at the feed's end when the server registers
		// it, so keep recording until one arrives.
		ctx2 := context.Background()
		msgs := make(chan map[string]any, 10)
		go func() {
			defer close(msgs)
			for {
				var m map[string]any
				if err := wsjson.Read(ctx2, c, &m); err != nil {
					return
				}
				msgs <- m
			}
		}()
		deadline := time.After(10 * time.Second)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				if err := store.InsertChange(ctx2, &db.Change{CompanyID: "acme", UserID: "u1", OutlookEventID: "AAk1", ChangeType: "UPDATED", ChangedFields: []string{"subject"}}); err != nil {
					t.Fatal(err)
				}
				if err := store.NotifyChanges(ctx2, "acme"); err != nil {
					t.Fatal(err)
				}
			case m, ok := <-msgs:
				if !ok {
					t.Fatal("socket closed")
				}
				if m["type"] == "ping" || m["type"] == "pong" {
					continue
				}
				b, _ := json.Marshal(m)
				if m["type"] != "next" || !strings.Contains(string(b), `"outlookEventId":"AAk1"`) {
					t.Fatalf("subscription answer %s", b)
				}
				return
			case <-deadline:
				t.Fatal("no change reached the subscriber")
			}
		}
	})
	t.Run("foreign origin refused", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
			Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader:   http.Header{"Origin": []string{"https://evil.example"}},
		})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("foreign origin: %v %v", resp, err)
		}
	})
}

func TestDevToken(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALSYNC_GRAPH": "emulator"}
	err := run(context.Background(), []string{"dev-token", "--company", "c", "--user", "u", "--roles", "system_admin"},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CALSYNC_JWT_SECRET") {
		t.Fatalf("dev-token without secret: %v", err)
	}
	env["CALSYNC_JWT_SECRET"] = testSecret
	err = run(context.Background(), []string{"dev-token", "--company", "c", "--user", "u", "--roles", "root"},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "root") {
		t.Fatalf("unknown role: %v", err)
	}
	// Only the secret is needed: a production environment (Graph =
	// microsoft, no encryption key, plain-http public URL that serve would
	// refuse) still signs, and the token verifies against that secret.
	prod := map[string]string{"CALSYNC_GRAPH": "microsoft", "CALSYNC_PUBLIC_URL": "http://calsync.example.jp", "CALSYNC_JWT_SECRET": testSecret}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"dev-token", "--company", "c", "--user", "u", "--roles", "service"},
		func(k string) string { return prod[k] }, &out, io.Discard); err != nil {
		t.Fatalf("dev-token with only the secret: %v", err)
	}
	v, err := auth.NewVerifier(context.Background(), auth.VerifierConfig{HS256Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(context.Background(), strings.TrimSpace(out.String())); err != nil || c.CompanyID != "c" || c.UserID != "u" {
		t.Fatalf("the token does not verify: %+v %v", c, err)
	}
	// A short secret is still refused, naming the variable.
	prod["CALSYNC_JWT_SECRET"] = "short"
	err = run(context.Background(), []string{"dev-token", "--company", "c", "--user", "u", "--roles", "service"},
		func(k string) string { return prod[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CALSYNC_JWT_SECRET: must be at least 32 bytes") {
		t.Fatalf("short secret: %v", err)
	}
}

func TestBadConfigStopsStartup(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CALSYNC_GRAPH": "microsoft", "CALSYNC_JWT_SECRET": testSecret}
	err := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CALSYNC_ENCRYPTION_KEY") {
		t.Fatalf("serve without key: %v", err)
	}
	env = map[string]string{"CALSYNC_GRAPH": "emulator", "DATABASE_URL": schemaURL(t)}
	err = run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CALSYNC_JWT_SECRET") {
		t.Fatalf("serve without caller auth: %v", err)
	}
}
