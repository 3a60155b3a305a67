package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/tehaishokunin/calsync/auth"
)

func TestProductionHidesPlaygroundAndIntrospection(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_GRAPH": "microsoft", "CALSYNC_PUBLIC_URL": "https://calsync.example.jp",
		"CALSYNC_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="})
	if s, _ := get(t, a.base+"/playground"); s != 404 {
		t.Fatalf("playground in production: %d", s)
	}
	r := a.gql(t, token(t, "acme", "u", "system_admin"), `{ __schema { types { name } } }`, nil)
	if len(r.Errors) == 0 {
		t.Fatal("introspection answered in production")
	}
	// Switchable on.
	b := startApp(t, map[string]string{"CALSYNC_GRAPH": "microsoft", "CALSYNC_PUBLIC_URL": "https://calsync.example.jp",
		"CALSYNC_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "CALSYNC_PLAYGROUND": "true", "CALSYNC_INTROSPECTION": "true"})
	if s, _ := get(t, b.base+"/playground"); s != 200 {
		t.Fatalf("playground switched on: %d", s)
	}
	if r := b.gql(t, "", `{ __schema { queryType { name } } }`, nil); len(r.Errors) != 0 {
		t.Fatalf("introspection switched on: %+v", r.Errors)
	}
}

func TestQueryLimits(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_MAX_QUERY_DEPTH": "4", "CALSYNC_MAX_ALIASES": "3"})
	svc := token(t, "acme", "u", "service")
	refused := func(name string, r gqlResponse, limit string) {
		t.Helper()
		if r.code() != "QUERY_TOO_COMPLEX" || r.Errors[0].Extensions["limit"] != limit || r.Errors[0].Extensions["max"] == nil {
			t.Errorf("%s: want QUERY_TOO_COMPLEX (%s), got %+v", name, limit, r.Errors)
		}
	}
	// Depth counts through fragments; four levels pass, five do not.
	refused("depth via fragment", a.gql(t, svc, `query { calendarChanges { edges { ...E } } } fragment E on CalendarChangeEdge { node { event { subject } } }`, nil), "depth")
	if r := a.gql(t, svc, `{ calendarChanges { edges { node { cursor } } } }`, nil); r.code() != "" {
		t.Errorf("four levels refused: %+v", r.Errors)
	}
	// Aliases: three pass, four do not.
	refused("aliases", a.gql(t, svc, `{ a: calendarChanges { pageInfo { hasNextPage } } b: calendarChanges { pageInfo { hasNextPage } } c: calendarChanges { pageInfo { hasNextPage } } d: calendarChanges { pageInfo { hasNextPage } } }`, nil), "aliases")
	if r := a.gql(t, svc, `{ a: calendarChanges { pageInfo { hasNextPage } } b: calendarChanges { pageInfo { hasNextPage } } c: calendarChanges { pageInfo { hasNextPage } } }`, nil); r.code() != "" {
		t.Errorf("three aliases refused: %+v", r.Errors)
	}
	// The message speaks the caller's language.
	r := a.gql(t, svc, `{ a: calendarChanges { pageInfo { hasNextPage } } b: calendarChanges { pageInfo { hasNextPage } } c: calendarChanges { pageInfo { hasNextPage } } d: calendarChanges { pageInfo { hasNextPage } } }`, nil, "Accept-Language", "en")
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "too many aliases") {
		t.Errorf("English message: %+v", r.Errors)
	}
	// Introspection (on with the emulator) is not held to the depth limit:
	// GraphiQL's type references nest deeper than any operation.
	if r := a.gql(t, svc, `{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }`, nil); r.code() != "" {
		t.Errorf("introspection refused: %+v", r.Errors)
	}

	// Complexity prices list fields by the page asked for.
	b := startApp(t, map[string]string{"CALSYNC_COMPLEXITY_LIMIT": "200"})
	page := func(n int) string {
		return fmt.Sprintf(`{ calendarChanges(first: %d) { edges { cursor node { cursor changeType } } } }`, n)
	}
	if r := b.gql(t, svc, page(20), nil); r.code() != "" {
		t.Errorf("a page of 20 refused: %+v", r.Errors)
	}
	refused("a page of 100", b.gql(t, svc, page(100), nil), "complexity")
	refused("default page (100)", b.gql(t, svc, `{ calendarChanges { edges { cursor node { cursor changeType } } } }`, nil), "complexity")

	// With the defaults a full page of everything passes, and list sizes
	// past the services' caps are refused naming the field.
	c := startApp(t, nil)
	full := `{ calendarChanges(first: 500) { edges { cursor node { cursor userId externalId outlookEventId changeType changedFields occurredAt event { subject start end location body } } } pageInfo { hasNextPage endCursor } } }`
	if r := c.gql(t, svc, full, nil); r.code() != "" {
		t.Errorf("a full page refused by default: %+v", r.Errors)
	}
	if r := c.gql(t, svc, `{ calendarChanges(first: 501) { edges { cursor } } }`, nil); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "first" {
		t.Errorf("first 501: %+v", r.Errors)
	}
	admin := token(t, "acme", "ua", "user_admin")
	if r := c.gql(t, admin, `{ userCalendarLinks(first: 201) { edges { cursor } } }`, nil); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "first" {
		t.Errorf("links first 201: %+v", r.Errors)
	}
	inputs := make([]map[string]any, 501)
	for i := range inputs {
		inputs[i] = map[string]any{"externalId": fmt.Sprint("j", i), "subject": "s", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T10:00:00+09:00"}
	}
	if r := c.gql(t, svc, `mutation($in: [CalendarEventInput!]!) { upsertCalendarEvents(userId: "u1", inputs: $in) { externalId } }`, map[string]any{"in": inputs}); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "inputs" {
		t.Errorf("501 events: %+v", r.Errors)
	}
	links := make([]map[string]any, 501)
	for i := range links {
		links[i] = map[string]any{"userId": fmt.Sprint("u", i), "provider": "NONE"}
	}
	if r := c.gql(t, admin, `mutation($in: [UserCalendarBulkInput!]!) { setUserCalendars(inputs: $in) { userId } }`, map[string]any{"in": links}); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "inputs" {
		t.Errorf("501 links: %+v", r.Errors)
	}
}

func TestCompanyMutationRateLimit(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_COMPANY_MUTATIONS_PER_SECOND": "1", "CALSYNC_COMPANY_MUTATION_BURST": "3"})
	busy := token(t, "busy-co", "ua", "user_admin")
	codes := []string{}
	for i := 0; i < 5; i++ {
		r := a.gql(t, busy, `mutation { setUserCalendar(userId: "u1", input: {provider: NONE}) { provider } }`, nil)
		codes = append(codes, r.code())
	}
	if strings.Join(codes, ",") != ",,,THROTTLED,THROTTLED" {
		t.Fatalf("codes %v", codes)
	}
	// Another company and reads are not held back.
	if r := a.gql(t, token(t, "calm-co", "ua", "user_admin"), `mutation { setUserCalendar(userId: "u1", input: {provider: NONE}) { provider } }`, nil); r.code() != "" {
		t.Fatalf("another company throttled: %+v", r.Errors)
	}
	if r := a.gql(t, busy, `{ userCalendarLink(userId: "u1") { provider } }`, nil); r.code() != "" {
		t.Fatalf("a read throttled: %+v", r.Errors)
	}
}

func TestWebsocketClosesWhenTokenExpires(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	signed := time.Now()
	tok, err := auth.Sign([]byte(testSecret), auth.Caller{UserID: "svc", CompanyID: "acme", Roles: []auth.Role{auth.Service}}, 2*time.Second, signed)
	if err != nil {
		t.Fatal(err)
	}
	// exp has whole seconds: the token expires at this instant. Measured
	// from it, not from when the socket was ready, so a slow dial on a busy
	// machine cannot make a correct close look early.
	expires := time.Unix(signed.Add(2*time.Second).Unix(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(a.base, "http", "ws", 1)+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_ = wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok}})
	_ = wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { calendarChanged { cursor } }`}})
	for {
		var m map[string]any
		if err := wsjson.Read(ctx, c, &m); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the socket outlived its token")
			}
			if early := time.Until(expires); early > 0 {
				t.Fatalf("closed %v before the token expired: %v", early, err)
			}
			return
		}
	}
}

func TestCORSAndWebsocketOrigins(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_ALLOWED_ORIGINS": "https://app.example.jp, https://*.tehai.example"})
	do := func(method, origin string, headers ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, a.base+"/graphql", strings.NewReader(`{"query":"{ calendarAuthSettings { tenantId } }"}`))
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	preflight := []string{"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type"}
	for _, origin := range []string{"https://app.example.jp", "https://staging.tehai.example"} {
		resp := do(http.MethodOptions, origin, preflight...)
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
		if got := do(http.MethodPost, origin, "Authorization", "Bearer "+token(t, "acme", "sa", "system_admin")).Header.Get("Access-Control-Allow-Origin"); got != origin {
			t.Errorf("POST from %s: Access-Control-Allow-Origin %q", origin, got)
		}
	}
	for _, origin := range []string{"https://evil.example", "http://app.example.jp", "https://app.example.jp.evil.example", "null"} {
		resp := do(http.MethodOptions, origin, preflight...)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %d %v", origin, resp.StatusCode, resp.Header)
		}
		if got := do(http.MethodPost, origin).Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("POST from %s got Access-Control-Allow-Origin %q", origin, got)
		}
	}
	if got := do(http.MethodPost, "").Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no Origin got Access-Control-Allow-Origin %q", got)
	}
	// The websocket takes the same list.
	wsURL := strings.Replace(a.base, "http", "ws", 1) + "/graphql"
	for origin, want := range map[string]bool{"https://app.example.jp": true, "https://evil.example": false} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"},
			HTTPHeader: http.Header{"Origin": []string{origin}}})
		cancel()
		if (err == nil) != want {
			t.Errorf("websocket from %s: err %v, resp %v", origin, err, resp)
		}
		if c != nil {
			c.CloseNow()
		}
	}
}
