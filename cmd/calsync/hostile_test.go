package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/config"
	"github.com/tehaishokunin/calsync/db"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
)

// Hostile input through a whole calsync (see server/hostile_test.go for
// the GraphQL document limits). Each case is an attack and the bound it
// must meet.

func TestHostileIdsAndText(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "6, 7. ids and text", "userId of 500,000 bytes, with NUL, with a line break, or blank, on every operation taking one; NUL in externalId; NUL or tab in subject, location, categories, body",
		"INVALID_INPUT naming the field (userId, externalId, input.subject …) before any lock or query; a body keeps tab/CR/LF; no ERROR log, the id never logged")
	a := startApp(t, nil)
	svc := token(t, "acme", "svc", "service")
	admin := token(t, "acme", "ua", "user_admin")
	huge := strings.Repeat("u", 500_000)
	for _, id := range []string{huge, "u\x00", "u\n1", "   "} {
		for name, op := range map[string]struct {
			tok, query string
		}{
			"userCalendarLink":     {svc, `query($u: ID!) { userCalendarLink(userId: $u) { provider } }`},
			"calendarEvent":        {svc, `query($u: ID!) { calendarEvent(userId: $u, externalId: "e1") { subject } }`},
			"calendarChanges":      {svc, `query($u: ID) { calendarChanges(userId: $u) { edges { cursor } } }`},
			"calendarEvents":       {svc, `query($u: ID!) { calendarEvents(userId: $u, start: "2026-12-01T00:00:00Z", end: "2026-12-02T00:00:00Z") { edges { cursor } } }`},
			"setUserCalendar":      {admin, `mutation($u: ID!) { setUserCalendar(userId: $u, input: {provider: NONE}) { provider } }`},
			"upsertCalendarEvent":  {svc, `mutation($u: ID!) { upsertCalendarEvent(userId: $u, input: {externalId: "e1", subject: "s", start: "2026-12-01T09:00:00+09:00", end: "2026-12-01T10:00:00+09:00"}) { subject } }`},
			"upsertCalendarEvents": {svc, `mutation($u: ID!) { upsertCalendarEvents(userId: $u, inputs: [{externalId: "e1", subject: "s", start: "2026-12-01T09:00:00+09:00", end: "2026-12-01T10:00:00+09:00"}]) { externalId } }`},
			"deleteCalendarEvent":  {svc, `mutation($u: ID!) { deleteCalendarEvent(userId: $u, externalId: "e1") }`},
			"resyncUserCalendar":   {svc, `mutation($u: ID!) { resyncUserCalendar(userId: $u) { provider } }`},
		} {
			r := a.gql(t, op.tok, op.query, map[string]any{"u": id})
			if r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "userId" {
				t.Errorf("%s with userId %.12q…: %+v", name, id, r.Errors)
			}
		}
	}
	// The bulk link names the item.
	r := a.gql(t, admin, `mutation($u: ID!) { setUserCalendars(inputs: [{userId: $u, provider: NONE}]) { userId error { code field } } }`, map[string]any{"u": "u\x00"})
	if !strings.Contains(string(r.Data["setUserCalendars"]), `"INVALID_INPUT"`) {
		t.Errorf("bulk link with a NUL id: %s %+v", r.Data["setUserCalendars"], r.Errors)
	}
	// NUL in an externalId.
	for _, q := range []string{
		`mutation { deleteCalendarEvent(userId: "u1", externalId: "e\u0000") }`,
		`{ calendarEvent(userId: "u1", externalId: "e\u0000") { subject } }`,
	} {
		if r := a.gql(t, svc, q, nil); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "externalId" {
			t.Errorf("%s: %+v", q, r.Errors)
		}
	}
	// Control characters in one-line text are refused naming the field; a
	// body keeps its tabs and line breaks (the user is not linked, so a
	// valid entry answers NOT_LINKED).
	push := func(input map[string]any) gqlResponse {
		in := map[string]any{"externalId": "e1", "subject": "s", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T10:00:00+09:00"}
		for k, v := range input {
			in[k] = v
		}
		return a.gql(t, svc, `mutation($in: CalendarEventInput!) { upsertCalendarEvent(userId: "u1", input: $in) { subject } }`, map[string]any{"in": in})
	}
	for field, v := range map[string]any{"subject": "a\x00b", "location": "x\ty", "categories": []string{"ok", "b\x00"}, "body": "a\x00b"} {
		if r := push(map[string]any{field: v}); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "input."+field {
			t.Errorf("%s with a control character: %+v", field, r.Errors)
		}
	}
	if r := push(map[string]any{"body": "一行目\r\n\t二行目"}); r.code() != "NOT_LINKED" {
		t.Errorf("a body with tab and line breaks: %+v", r.Errors)
	}
	// Recurrence rules: an oversized one, extra lines and what Outlook
	// cannot express are refused naming the field and the part, before
	// anything else happens.
	for rule, part := range map[string]string{
		"FREQ=DAILY;" + strings.Repeat("INTERVAL=1;", 10_000):   "RRULE",
		"FREQ=DAILY\nEXDATE:20261202T000000Z":                   "RRULE",
		"DTSTART=20261201T000000Z;FREQ=DAILY":                   "DTSTART",
		"FREQ=SECONDLY;COUNT=100000000":                         "FREQ=SECONDLY",
		"FREQ=MONTHLY;BYDAY=TU;BYSETPOS=1,2,3,4,-1,-2,-3,-4,-5": "BYSETPOS",
	} {
		r := push(map[string]any{"recurrenceRule": rule})
		if r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "input.recurrenceRule" || r.Errors[0].Extensions["part"] != part {
			t.Errorf("recurrenceRule %.40q: %+v", rule, r.Errors)
		}
	}
	if r := push(map[string]any{"recurrenceRule": "FREQ=WEEKLY;BYDAY=TU;COUNT=4"}); r.code() != "NOT_LINKED" {
		t.Errorf("a valid recurrence rule: %+v", r.Errors)
	}
	// Nothing reached the database as an error, and the huge id never
	// reached a log line.
	if strings.Contains(a.logs.String(), "level=ERROR") || strings.Contains(a.logs.String(), huge[:1000]) {
		t.Errorf("logs: %.2000s", a.logs.String())
	}
}

func TestHostileWebsocketSubscriptionCaps(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "4. subscriptions per websocket and per caller", "25 subscribes on one member-token connection (cap 20), then 40 more over two connections (caller cap 50)",
		"exactly 5, then 10, refused with the graphql-transport-ws error message (QUERY_TOO_COMPLEX); counts freed when the sockets close")
	a := startApp(t, map[string]string{"CALSYNC_WS_SUBSCRIPTIONS_PER_CONNECTION": "20", "CALSYNC_WS_SUBSCRIPTIONS_PER_CALLER": "50"})
	wsURL := strings.Replace(a.base, "http", "ws", 1) + "/graphql"
	tok := token(t, "acme", "m1", "member")
	// A socket's messages are read by one goroutine for its whole life:
	// coder/websocket closes a connection whose read is cancelled.
	type socket struct {
		c    *websocket.Conn
		msgs chan map[string]any
	}
	dial := func() *socket {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			t.Fatal(err)
		}
		_ = wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok}})
		var m map[string]any
		if err := wsjson.Read(ctx, c, &m); err != nil || m["type"] != "connection_ack" {
			t.Fatalf("init: %v %v", m, err)
		}
		s := &socket{c: c, msgs: make(chan map[string]any, 1000)}
		go func() {
			defer close(s.msgs)
			for {
				var m map[string]any
				if err := wsjson.Read(context.Background(), c, &m); err != nil {
					return
				}
				s.msgs <- m
			}
		}()
		return s
	}
	// subscribeN sends n subscribes and returns how many were refused with
	// the graphql-transport-ws error message: it waits for wantRefused of
	// them, or (wantRefused 0) for wait.
	subscribeN := func(s *socket, prefix string, n, wantRefused int, wait time.Duration) int {
		ctx := context.Background()
		for i := 0; i < n; i++ {
			if err := wsjson.Write(ctx, s.c, map[string]any{"id": fmt.Sprint(prefix, i), "type": "subscribe",
				"payload": map[string]any{"query": `subscription { calendarChanged { cursor } }`}}); err != nil {
				t.Fatal(err)
			}
		}
		refused := 0
		timeout := time.After(wait)
		for refused < wantRefused || wantRefused == 0 {
			select {
			case m, ok := <-s.msgs:
				if !ok {
					t.Fatal("the server closed the socket")
				}
				if m["type"] != "error" {
					continue
				}
				payload, _ := m["payload"].([]any)
				if len(payload) == 0 || !strings.Contains(fmt.Sprint(payload[0]), "QUERY_TOO_COMPLEX") {
					t.Fatalf("refusal without its code: %v", m)
				}
				refused++
			case <-timeout:
				return refused
			}
		}
		return refused
	}
	c1 := dial()
	defer c1.c.CloseNow()
	if n := subscribeN(c1, "a", 25, 5, 10*time.Second); n != 5 {
		t.Fatalf("25 subscribes on one connection (cap 20): %d refused, want 5", n)
	}
	// The caller's cap spans connections: 20 live, 30 more allowed.
	c2, c3 := dial(), dial()
	defer c2.c.CloseNow()
	defer c3.c.CloseNow()
	refused := subscribeN(c2, "b", 20, 0, 2*time.Second) + subscribeN(c3, "c", 20, 10, 10*time.Second)
	if refused != 10 {
		t.Fatalf("60 subscribes of one caller over three connections (cap 50): %d refused, want 10", refused)
	}
	// Closing the connections frees their counts.
	c1.c.CloseNow()
	c2.c.CloseNow()
	c3.c.CloseNow()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c := dial()
		n := subscribeN(c, "d", 20, 0, time.Second)
		c.c.CloseNow()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing every connection, %d of 20 subscribes still refused", n)
		}
	}
}

func TestHostileTokensCursorsAndListening(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "11, 12, 14. tokens, cursors, listening", "an RS256 header over an HMAC signature, and a crit header, sent to /graphql; company B replaying company A's feed cursor; `make run` (emulator) with no CALSYNC_ADDR",
		"UNAUTHENTICATED for both tokens; INVALID_INPUT (field after) for the foreign cursor, which shows no position; the emulator listens on 127.0.0.1 only")
	dsn := schemaURL(t)
	a := startApp(t, map[string]string{"DATABASE_URL": dsn})
	store := db.NewStore(db.Open(dsn, db.Options{MaxOpenConns: 2}))
	defer store.DB().Close()

	forge := func(header map[string]any) string {
		enc := func(v any) string {
			b, _ := json.Marshal(v)
			return base64.RawURLEncoding.EncodeToString(b)
		}
		in := enc(header) + "." + enc(map[string]any{"sub": "u1", "company_id": "acme", "roles": []string{"system_admin"}, "exp": time.Now().Add(time.Hour).Unix()})
		m := hmac.New(sha256.New, []byte(testSecret))
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	if r := a.gql(t, forge(map[string]any{"alg": "HS256"}), settingsQuery, nil); r.code() != "" {
		t.Fatalf("the control token was refused: %+v", r.Errors)
	}
	for name, h := range map[string]map[string]any{"RS256 header": {"alg": "RS256"}, "crit": {"alg": "HS256", "crit": []string{"x"}, "x": 1}} {
		if r := a.gql(t, forge(h), settingsQuery, nil); r.code() != "UNAUTHENTICATED" {
			t.Errorf("%s: %+v", name, r.Errors)
		}
	}

	ctx := context.Background()
	if _, err := store.DB().NewInsert().Model(&db.Change{CompanyID: "company-a", UserID: "u1", OutlookEventID: "AAMk-a", ChangeType: "CREATED", ChangedFields: []string{}}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	page := func(tok, after string) gqlResponse {
		return a.gql(t, tok, `query($a: String) { calendarChanges(after: $a) { edges { cursor node { outlookEventId } } } }`, map[string]any{"a": after})
	}
	svcA, svcB := token(t, "company-a", "svc", "service"), token(t, "company-b", "svc", "service")
	var conn struct {
		Edges []struct{ Cursor string }
	}
	r := page(svcA, "")
	if err := json.Unmarshal(r.Data["calendarChanges"], &conn); err != nil || len(conn.Edges) != 1 {
		t.Fatalf("company A's feed: %s %+v", r.Data["calendarChanges"], r.Errors)
	}
	cur := conn.Edges[0].Cursor
	if raw, _ := base64.RawURLEncoding.DecodeString(cur); strings.Contains(string(raw), ":") {
		t.Errorf("the cursor shows its position: %q", raw)
	}
	if r := page(svcA, cur); r.code() != "" {
		t.Errorf("company A's own cursor: %+v", r.Errors)
	}
	if r := page(svcB, cur); r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "after" {
		t.Errorf("company B with company A's cursor: %+v", r.Errors)
	}

	cfg, err := config.Load(func(k string) string { return map[string]string{"CALSYNC_GRAPH": "emulator"}[k] })
	if err != nil || cfg.Addr != "127.0.0.1:8080" {
		t.Errorf("emulator mode listens on %q (%v)", cfg.Addr, err)
	}
}
