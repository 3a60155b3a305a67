package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
)

// startWithEmulator runs calsync against a standalone emulator the test
// controls, with the demo tenant registered for company "acme".
func startWithEmulator(t *testing.T, env map[string]string) (*app, *graphemu.Server) {
	t.Helper()
	emu, err := graphemu.Start("", graphemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	if _, err := emu.AddTenant(graphemu.TenantSpec{TenantID: demoTenantID, Domain: demoDomain,
		Apps:  []graphemu.AppSpec{{ClientID: demoClientID, Secret: demoSecret, Roles: []string{"Calendars.ReadWrite", "User.Read.All"}}},
		Users: demoUsers}); err != nil {
		t.Fatal(err)
	}
	if _, err := emu.AddTenant(graphemu.TenantSpec{TenantID: "0b0b0b0b-0000-4000-8000-000000000b0b", Domain: "other.onmicrosoft.com",
		Apps:  []graphemu.AppSpec{{ClientID: "0b0b0b0b-1111-4000-8000-000000000b0b", Secret: "Ob8Q~other-company-secret-value-0001", Roles: []string{"Calendars.ReadWrite", "User.Read.All"}}},
		Users: []graphemu.UserSpec{{Mail: "jiro@other.onmicrosoft.com", DisplayName: "田中 次郎"}}}); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, emu.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{"CALSYNC_GRAPH_BASE_URL": emu.URL, "CALSYNC_LOGIN_BASE_URL": emu.URL, "CALSYNC_GRAPH_CA_FILE": ca}
	for k, v := range env {
		full[k] = v
	}
	a := startApp(t, full)
	if r, body := a.upload(t, token(t, "acme", "admin", "system_admin"), demoFile(demoSecret)); r.code() != "" {
		t.Fatalf("registering demo credentials: %s", body)
	}
	return a, emu
}

const linkFields = `userId provider calendarId status lastError subscriptionExpiresAt lastSyncedAt`

type linkJSON struct {
	UserID, Provider      string
	CalendarID, Status    *string
	LastError             *string
	SubscriptionExpiresAt *time.Time
	LastSyncedAt          *time.Time
}

func (a *app) setLink(t *testing.T, tok, user, provider, address string) (linkJSON, gqlResponse) {
	t.Helper()
	r := a.gql(t, tok, `mutation($u: ID!, $in: UserCalendarInput!) { setUserCalendar(userId: $u, input: $in) { `+linkFields+` } }`,
		map[string]any{"u": user, "in": map[string]any{"provider": provider, "calendarId": address}})
	var l linkJSON
	_ = json.Unmarshal(r.Data["setUserCalendar"], &l)
	return l, r
}

func emuSubscriptions(t *testing.T, emu *graphemu.Server) []map[string]any {
	t.Helper()
	resp, err := emu.Client().Get(emu.URL + "/_emulator/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Value []map[string]any `json:"value"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Value
}

func TestLinkingUsers(t *testing.T) {
	t.Parallel()
	a, emu := startWithEmulator(t, nil)
	admin := token(t, "acme", "ua-1", "user_admin")

	// Full-width characters typed with a Japanese IME still work.
	l, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "　ＴＡＲＯ.ＹＡＭＡＤＡ＠"+strings.ToUpper(demoDomain)+" ")
	if r.code() != "" || l.Status == nil || *l.Status != "ACTIVE" || *l.CalendarID != "taro.yamada@"+demoDomain || l.SubscriptionExpiresAt == nil ||
		time.Until(*l.SubscriptionExpiresAt) < 6*24*time.Hour || l.LastSyncedAt == nil {
		t.Fatalf("link: %+v %+v", l, r.Errors)
	}
	subs := emuSubscriptions(t, emu)
	if len(subs) != 1 || !strings.HasSuffix(subs[0]["notificationUrl"].(string), "/webhooks/graph/notifications") ||
		!strings.HasSuffix(subs[0]["lifecycleNotificationUrl"].(string), "/webhooks/graph/lifecycle") || subs[0]["changeType"] != "created,updated,deleted" {
		t.Fatalf("emulator subscriptions %v", subs)
	}

	// Linking again with the same address is a no-op.
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "" || len(emuSubscriptions(t, emu)) != 1 {
		t.Fatalf("relinking the same address made another subscription: %d", len(emuSubscriptions(t, emu)))
	}

	// Re-pointing deletes the old subscription and makes a new one.
	old := subs[0]["id"]
	l, r = a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "hanako.sato@"+demoDomain)
	subs = emuSubscriptions(t, emu)
	if r.code() != "" || *l.CalendarID != "hanako.sato@"+demoDomain || len(subs) != 1 || subs[0]["id"] == old {
		t.Fatalf("re-point: %+v %v", l, subs)
	}

	// Errors name the problem.
	for _, c := range []struct{ addr, code string }{
		{"nobody@" + demoDomain, "MAILBOX_NOT_FOUND"},
		{"not-an-address", "INVALID_INPUT"},
	} {
		if _, r := a.setLink(t, admin, "u-x", "OFFICE365_OUTLOOK", c.addr); r.code() != c.code || r.Errors[0].Extensions["field"] != "calendarId" {
			t.Fatalf("%s: %+v", c.addr, r.Errors)
		}
	}
	if _, r := a.setLink(t, token(t, "no-creds-co", "ua", "user_admin"), "u-1", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "CREDENTIALS_MISSING" {
		t.Fatalf("no credentials: %+v", r.Errors)
	}

	// Graph's validation request does not reach calsync: no subscription,
	// but the link works in polling mode and says so.
	if err := emu.AddFault(graphemu.Fault{Kind: "failHandshake"}); err != nil {
		t.Fatal(err)
	}
	if _, r := a.setLink(t, admin, "u-ichiro", "OFFICE365_OUTLOOK", "ichiro.suzuki@"+demoDomain); len(r.Errors) != 0 {
		t.Fatalf("handshake failure: %+v", r.Errors)
	}
	q := a.gql(t, admin, `{ userCalendarLink(userId: "u-ichiro") { provider status lastError } }`, nil)
	if !strings.Contains(string(q.Data["userCalendarLink"]), `"POLLING"`) || !strings.Contains(string(q.Data["userCalendarLink"]), "no change notifications") {
		t.Fatalf("link without a subscription: %s", q.Data["userCalendarLink"])
	}

	// Bulk: partial success, one result per item.
	b := a.gql(t, admin, `mutation($in: [UserCalendarBulkInput!]!) { setUserCalendars(inputs: $in) { userId link { status calendarId } error { code field message } } }`,
		map[string]any{"in": []any{
			map[string]any{"userId": "u-ichiro", "provider": "OFFICE365_OUTLOOK", "calendarId": "ichiro.suzuki@" + demoDomain},
			map[string]any{"userId": "u-ghost", "provider": "OFFICE365_OUTLOOK", "calendarId": "ghost@" + demoDomain},
			map[string]any{"userId": "u-taro", "provider": "NONE"},
		}})
	var results []struct {
		UserID string
		Link   *struct{ Status, CalendarID *string }
		Error  *struct{ Code, Field, Message string }
	}
	_ = json.Unmarshal(b.Data["setUserCalendars"], &results)
	if len(results) != 3 || results[0].Error != nil || *results[0].Link.Status != "ACTIVE" || results[1].Error == nil ||
		results[1].Error.Code != "MAILBOX_NOT_FOUND" || results[2].Error != nil {
		t.Fatalf("bulk: %s %+v", b.Data["setUserCalendars"], b.Errors)
	}
	if n := len(emuSubscriptions(t, emu)); n != 1 {
		t.Fatalf("after bulk (u-taro unlinked, u-ichiro linked) %d subscriptions", n)
	}

	// Listing with pagination and a status filter.
	page := a.gql(t, admin, `{ userCalendarLinks(first: 1) { edges { cursor node { userId } } pageInfo { hasNextPage endCursor } } }`, nil)
	var conn struct {
		Edges    []struct{ Cursor string }
		PageInfo struct {
			HasNextPage bool
			EndCursor   string
		}
	}
	_ = json.Unmarshal(page.Data["userCalendarLinks"], &conn)
	if len(conn.Edges) != 1 || conn.PageInfo.HasNextPage {
		t.Fatalf("links page: %s", page.Data["userCalendarLinks"])
	}
	if e := a.gql(t, admin, `{ userCalendarLinks(status: ERROR) { edges { node { userId } } } }`, nil); !strings.Contains(string(e.Data["userCalendarLinks"]), `"edges":[]`) {
		t.Fatalf("status filter: %s", e.Data["userCalendarLinks"])
	}

	// Who may do what.
	member := token(t, "acme", "u-ichiro", "member")
	if r := a.gql(t, member, `{ userCalendarLink(userId: "u-ichiro") { status } }`, nil); r.code() != "" {
		t.Fatalf("member reading own: %+v", r.Errors)
	}
	if r := a.gql(t, member, `{ userCalendarLink(userId: "u-taro") { status } }`, nil); r.code() != "FORBIDDEN" {
		t.Fatalf("member reading another: %+v", r.Errors)
	}
	if _, r := a.setLink(t, member, "u-ichiro", "NONE", ""); r.code() != "FORBIDDEN" {
		t.Fatalf("member changing a link: %+v", r.Errors)
	}
	if _, r := a.setLink(t, token(t, "acme", "svc", "service"), "u-ichiro", "NONE", ""); r.code() != "FORBIDDEN" {
		t.Fatalf("service changing a link: %+v", r.Errors)
	}
	// Another company's admin sees none of acme's users.
	other := token(t, "other-co", "admin-b", "user_admin")
	if r := a.gql(t, other, `{ userCalendarLink(userId: "u-ichiro") { provider } }`, nil); !strings.Contains(string(r.Data["userCalendarLink"]), "NONE") {
		t.Fatalf("other company reads acme's link: %s", r.Data["userCalendarLink"])
	}
	if _, r := a.setLink(t, other, "u-ichiro", "NONE", ""); r.code() != "" {
		t.Fatalf("%+v", r.Errors)
	}
	if r := a.gql(t, admin, `{ userCalendarLink(userId: "u-ichiro") { status } }`, nil); !strings.Contains(string(r.Data["userCalendarLink"]), "ACTIVE") {
		t.Fatalf("another company's unlink touched acme: %s", r.Data["userCalendarLink"])
	}

	// Resync on demand.
	if r := a.gql(t, admin, `mutation { resyncUserCalendar(userId: "u-ichiro") { status lastSyncedAt } }`, nil); r.code() != "" {
		t.Fatalf("resync: %+v", r.Errors)
	}
	if r := a.gql(t, admin, `mutation { resyncUserCalendar(userId: "u-nobody") { status } }`, nil); r.code() != "NOT_LINKED" {
		t.Fatalf("resync unlinked: %+v", r.Errors)
	}
}

func TestLifecycleThroughWebhook(t *testing.T) {
	t.Parallel()
	a, emu := startWithEmulator(t, nil)
	admin := token(t, "acme", "ua-1", "user_admin")
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "" {
		t.Fatal(r.Errors)
	}
	old := emuSubscriptions(t, emu)[0]["id"].(string)
	resp, err := emu.Client().Post(emu.URL+"/_emulator/subscriptions/"+old+"/lifecycle", "application/json", strings.NewReader(`{"lifecycleEvent":"subscriptionRemoved"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, "a new subscription after subscriptionRemoved", 15*time.Second, func() bool {
		subs := emuSubscriptions(t, emu)
		return len(subs) == 1 && subs[0]["id"] != old
	})
}

// TestRestartWithInProcessEmulator: `make run` twice on one database. The
// in-process emulator forgets everything on restart; reconciliation finds
// the link's subscription gone and makes a new one.
func TestRestartWithInProcessEmulator(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	a := startApp(t, map[string]string{"DATABASE_URL": dsn})
	admin := token(t, "demo-company", "admin", "system_admin", "user_admin")
	if r, body := a.upload(t, admin, demoFile(demoSecret)); r.code() != "" {
		t.Fatal(body)
	}
	if _, r := a.setLink(t, admin, "u1", "OFFICE365_OUTLOOK", demoUsers[0].Mail); r.code() != "" {
		t.Fatal(r.Errors)
	}
	store := db.NewStore(db.Open(dsn, db.Options{MaxOpenConns: 2}))
	defer store.DB().Close()
	subID := func() string {
		var id string
		_ = store.DB().NewRaw("SELECT id FROM graph_subscriptions LIMIT 1").Scan(context.Background(), &id)
		return id
	}
	before := subID()
	a.stop(t)
	b := startApp(t, map[string]string{"DATABASE_URL": dsn, "CALSYNC_LOG_LEVEL": "debug"})
	defer func() {
		if t.Failed() {
			t.Log(b.logs.String())
		}
	}()
	waitFor(t, "a new subscription after the restart", 15*time.Second, func() bool {
		id := subID()
		return id != "" && id != before
	})
	if r := b.gql(t, admin, `{ userCalendarLink(userId: "u1") { status } }`, nil); !strings.Contains(string(r.Data["userCalendarLink"]), "ACTIVE") {
		t.Fatalf("after restart: %s", r.Data["userCalendarLink"])
	}
}
