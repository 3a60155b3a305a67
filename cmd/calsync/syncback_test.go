package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/tehaishokunin/calsync/graphemu"
)

// hostHook is the host app's webhook endpoint, verifying Standard Webhooks
// signatures.
type hostHook struct {
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	got    []map[string]any
	// headers are the accepted deliveries' request headers, as got.
	headers []http.Header
	bad     int
}

func newHostHook(t *testing.T) *hostHook {
	h := &hostHook{secret: []byte("host-webhook-signing-key-0123456789")}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		m := hmac.New(sha256.New, h.secret)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("webhook-signature") != want {
			h.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p map[string]any
		_ = json.Unmarshal(body, &p)
		h.got = append(h.got, p)
		h.headers = append(h.headers, r.Header.Clone())
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostHook) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// subscribe opens a websocket subscription to calendarChanged and returns
// the changes it receives.
func subscribe(t *testing.T, a *app, tok string) <-chan map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, _, err := websocket.Dial(ctx, strings.Replace(a.base, "http", "ws", 1)+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	_ = wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok}})
	var ack map[string]any
	if err := wsjson.Read(ctx, c, &ack); err != nil || ack["type"] != "connection_ack" {
		t.Fatalf("ack %v %v", ack, err)
	}
	_ = wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { calendarChanged { cursor userId externalId outlookEventId changeType changedFields event { subject start } } }`}})
	out := make(chan map[string]any, 16)
	go func() {
		defer close(out)
		for {
			var m map[string]any
			if err := wsjson.Read(ctx, c, &m); err != nil {
				return
			}
			if m["type"] == "next" {
				out <- m["payload"].(map[string]any)["data"].(map[string]any)["calendarChanged"].(map[string]any)
			}
		}
	}()
	return out
}

func ownerCreate(t *testing.T, emu *graphemu.Server, mailbox, subject string) string {
	t.Helper()
	body := `{"subject":"` + subject + `","start":{"dateTime":"2026-12-03T10:00:00","timeZone":"Tokyo Standard Time"},"end":{"dateTime":"2026-12-03T11:00:00","timeZone":"Tokyo Standard Time"}}`
	resp, err := emu.Client().Post(emu.URL+"/_emulator/users/"+mailbox+"/events", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ev map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&ev)
	return ev["id"].(string)
}

func pull(t *testing.T, a *app, tok string) []map[string]any {
	t.Helper()
	r := a.gql(t, tok, `{ calendarChanges(first: 100) { edges { node { cursor userId externalId outlookEventId changeType changedFields event { subject } } } pageInfo { endCursor hasNextPage } } }`, nil)
	var conn struct {
		Edges []struct{ Node map[string]any }
	}
	if err := json.Unmarshal(r.Data["calendarChanges"], &conn); err != nil {
		t.Fatalf("%s %+v", r.Data["calendarChanges"], r.Errors)
	}
	var out []map[string]any
	for _, e := range conn.Edges {
		out = append(out, e.Node)
	}
	return out
}

func TestSyncBackEndToEnd(t *testing.T) {
	t.Parallel()
	host := newHostHook(t)
	a, emu := startWithEmulator(t, map[string]string{
		"CALSYNC_HOST_WEBHOOK_URL":    host.srv.URL,
		"CALSYNC_HOST_WEBHOOK_SECRET": "whsec_" + base64.StdEncoding.EncodeToString(host.secret),
	})
	admin := token(t, "acme", "ua", "user_admin")
	svc := token(t, "acme", "host", "service")
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "" {
		t.Fatal(r.Errors)
	}
	stream := subscribe(t, a, svc)

	// calsync's own push makes no change.
	push := a.gql(t, svc, `mutation($in: CalendarEventInput!) { upsertCalendarEvent(userId: "u-taro", input: $in) { outlookEventId version webLink } }`,
		map[string]any{"in": map[string]any{"externalId": "job-77", "subject": "現場B", "start": "2026-12-05T09:00:00+09:00", "end": "2026-12-05T10:00:00+09:00"}})
	if push.code() != "" {
		t.Fatalf("push: %+v", push.Errors)
	}

	id := ownerCreate(t, emu, "taro.yamada@"+demoDomain, "Outlook で追加")
	var live map[string]any
	select {
	case live = <-stream:
	case <-time.After(15 * time.Second):
		t.Fatal("the websocket subscriber saw no change")
	}
	if live["outlookEventId"] != id || live["changeType"] != "CREATED" || live["externalId"] != nil || live["userId"] != "u-taro" {
		t.Fatalf("websocket change %v", live)
	}
	waitFor(t, "the host webhook", 15*time.Second, func() bool { return host.count() >= 1 })
	host.mu.Lock()
	hooked := host.got[0]
	bad := host.bad
	host.mu.Unlock()
	if data := hooked["data"].(map[string]any); data["outlookEventId"] != id || data["changeType"] != "CREATED" || hooked["type"] != "calendar.changed" || bad != 0 {
		t.Fatalf("host webhook got %v (bad signatures %d)", hooked, bad)
	}
	changes := pull(t, a, svc)
	if len(changes) != 1 || changes[0]["outlookEventId"] != id || changes[0]["cursor"] != live["cursor"] {
		t.Fatalf("pull %v vs websocket %v", changes, live)
	}
	if h := a.gql(t, svc, `{ calendarChangesHead }`, nil); string(h.Data["calendarChangesHead"]) != `"`+changes[0]["cursor"].(string)+`"` {
		t.Fatalf("calendarChangesHead %s, want the newest cursor %v", h.Data["calendarChangesHead"], changes[0]["cursor"])
	}
	// A member sees only their own changes.
	if own := pull(t, a, token(t, "acme", "u-taro", "member")); len(own) != 1 {
		t.Fatalf("member u-taro sees %d", len(own))
	}
	if other := pull(t, a, token(t, "acme", "u-hanako", "member")); len(other) != 0 {
		t.Fatalf("member u-hanako sees %d", len(other))
	}
	if r := a.gql(t, token(t, "acme", "u-hanako", "member"), `{ calendarChanges(userId: "u-taro") { edges { cursor } } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("member reading another's feed: %+v", r.Errors)
	}
}

func TestNotificationsDuringDatabaseOutage(t *testing.T) {
	t.Parallel()
	proxy := newTCPProxy(t, pgHostPort(t))
	dsn := proxiedURL(t, proxy, schemaURL(t))
	a, emu := startWithEmulator(t, map[string]string{"DATABASE_URL": dsn})
	admin := token(t, "acme", "ua", "user_admin")
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "" {
		t.Fatal(r.Errors)
	}
	proxy.stop()
	id := ownerCreate(t, emu, "taro.yamada@"+demoDomain, "停止中の変更")
	// Graph's delivery gets 503 while Postgres is away...
	waitFor(t, "a 503 to Graph", 15*time.Second, func() bool {
		_, body := get(t, a.base+"/metrics")
		return strings.Contains(body, `calsync_http_requests_total{code="503",method="post",route="/webhooks/graph/notifications"}`)
	})
	// ...and its retry succeeds once Postgres is back.
	proxy.start(t)
	svc := token(t, "acme", "host", "service")
	waitFor(t, "the change after Graph's retry", 30*time.Second, func() bool {
		// Reads may still fail while Postgres is coming back (the proxy
		// accepts before Postgres answers); a pooled connection it dropped
		// is discarded before use (db.connAlive), so one clean read is
		// enough.
		r := a.gql(t, svc, `{ calendarChanges(first: 100) { edges { node { outlookEventId } } } }`, nil)
		if len(r.Errors) > 0 {
			return false
		}
		for _, c := range pull(t, a, svc) {
			if c["outlookEventId"] == id {
				return true
			}
		}
		return false
	})
}

func TestChangeReachesOtherReplica(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	a, emu := startWithEmulator(t, map[string]string{"DATABASE_URL": dsn})
	// The second replica shares the database and the emulator.
	b := startApp(t, map[string]string{"DATABASE_URL": dsn, "CALSYNC_GRAPH_BASE_URL": a.env["CALSYNC_GRAPH_BASE_URL"],
		"CALSYNC_LOGIN_BASE_URL": a.env["CALSYNC_LOGIN_BASE_URL"], "CALSYNC_GRAPH_CA_FILE": a.env["CALSYNC_GRAPH_CA_FILE"]})
	if _, r := a.setLink(t, token(t, "acme", "ua", "user_admin"), "u-taro", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "" {
		t.Fatal(r.Errors)
	}
	stream := subscribe(t, b, token(t, "acme", "host", "service"))
	id := ownerCreate(t, emu, "taro.yamada@"+demoDomain, "別レプリカへ")
	select {
	case c := <-stream:
		if c["outlookEventId"] != id {
			t.Fatalf("replica B got %v", c)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the change did not reach replica B's subscriber")
	}
}
