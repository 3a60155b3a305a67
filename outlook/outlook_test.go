package outlook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/outlook"
)

const (
	tenantID = "7d0f3a1c-0000-4000-8000-00000000a001"
	clientID = "1b2c3d4e-0000-4000-8000-00000000c001"
	secret   = "Xy8Q~emulator-secret-value-0001"
	propID   = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calsyncExternalId"
)

type fixture struct {
	emu    *graphemu.Server
	client *outlook.Client
	creds  outlook.Credentials
	taro   graphemu.UserSpec
	hanako graphemu.UserSpec
}

func setup(t *testing.T) *fixture {
	t.Helper()
	emu, err := graphemu.Start("", graphemu.Options{RetryBase: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	past := time.Now().Add(-time.Hour)
	users, err := emu.AddTenant(graphemu.TenantSpec{
		TenantID: tenantID, Domain: "contoso.onmicrosoft.com",
		Apps: []graphemu.AppSpec{
			{ClientID: clientID, Secret: secret, Roles: []string{"Calendars.ReadWrite", "User.Read.All"}},
			{ClientID: "expired-0000-4000-8000-00000000c002", Secret: "old-secret", SecretExpiresAt: &past, Roles: []string{"Calendars.ReadWrite"}},
			{ClientID: "noconsent-0000-4000-8000-0000000c003", Secret: "nc-secret", Roles: []string{}},
			{ClientID: "limited-0000-4000-8000-000000000c04", Secret: "lim-secret", Roles: []string{"Calendars.ReadWrite"}, AllowedMailboxes: []string{"taro@contoso.onmicrosoft.com"}},
		},
		Users: []graphemu.UserSpec{
			{Mail: "taro@contoso.onmicrosoft.com", DisplayName: "山田 太郎"},
			{Mail: "hanako@contoso.onmicrosoft.com", DisplayName: "佐藤 花子"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := outlook.New(outlook.Config{GraphBaseURL: emu.URL, LoginBaseURL: emu.URL, Transport: emu.Transport()})
	return &fixture{emu: emu, client: c, creds: outlook.Credentials{TenantID: tenantID, ClientID: clientID, ClientSecret: secret}, taro: users[0], hanako: users[1]}
}

func (f *fixture) session(t *testing.T) *outlook.Session {
	t.Helper()
	s, err := f.client.For(f.creds)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantKind(t *testing.T, err error, kind outlook.Kind) {
	t.Helper()
	if outlook.KindOf(err) != kind {
		t.Fatalf("error kind = %s, want %s (err: %v)", outlook.KindOf(err), kind, err)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()

	info, err := f.client.VerifyCredentials(ctx, f.creds)
	if err != nil {
		t.Fatal(err)
	}
	if !info.HasRole("Calendars.ReadWrite") || !info.ExpiresOn.After(time.Now()) {
		t.Fatalf("token info %+v", info)
	}
	t.Run("by domain", func(t *testing.T) {
		c := f.creds
		c.TenantID = "contoso.onmicrosoft.com"
		if _, err := f.client.VerifyCredentials(ctx, c); err != nil {
			t.Fatal(err)
		}
	})
	cases := []struct {
		name  string
		creds outlook.Credentials
		kind  outlook.Kind
		code  string
	}{
		{"wrong secret", outlook.Credentials{TenantID: tenantID, ClientID: clientID, ClientSecret: "nope"}, outlook.KindInvalidSecret, "AADSTS7000215"},
		{"expired secret", outlook.Credentials{TenantID: tenantID, ClientID: "expired-0000-4000-8000-00000000c002", ClientSecret: "old-secret"}, outlook.KindSecretExpired, "AADSTS7000222"},
		{"unknown tenant", outlook.Credentials{TenantID: "00000000-dead-4000-8000-000000000000", ClientID: clientID, ClientSecret: secret}, outlook.KindTenantNotFound, "AADSTS90002"},
		{"unknown app", outlook.Credentials{TenantID: tenantID, ClientID: "99999999-0000-4000-8000-000000000000", ClientSecret: secret}, outlook.KindAppNotFound, "AADSTS700016"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.client.VerifyCredentials(ctx, c.creds)
			wantKind(t, err, c.kind)
			if !strings.Contains(err.Error(), c.code) {
				t.Fatalf("error %q lacks %s", err, c.code)
			}
			if strings.Contains(err.Error(), c.creds.ClientSecret) {
				t.Fatalf("error leaks the secret: %q", err)
			}
		})
	}
	t.Run("no consent", func(t *testing.T) {
		info, err := f.client.VerifyCredentials(ctx, outlook.Credentials{TenantID: tenantID, ClientID: "noconsent-0000-4000-8000-0000000c003", ClientSecret: "nc-secret"})
		if err != nil || info.HasRole("Calendars.ReadWrite") {
			t.Fatalf("%+v %v", info, err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		c := outlook.New(outlook.Config{GraphBaseURL: "https://" + addr, LoginBaseURL: "https://" + addr, Transport: f.emu.Transport()})
		_, err := c.VerifyCredentials(ctx, f.creds)
		wantKind(t, err, outlook.KindUnreachable)
	})
}

func TestUsersAndAccess(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	u, err := s.GetUser(ctx, "TARO@contoso.onmicrosoft.com")
	if err != nil || u.ID != f.taro.ID || u.DisplayName != "山田 太郎" {
		t.Fatalf("%+v %v", u, err)
	}
	_, err = s.GetUser(ctx, "nobody@contoso.onmicrosoft.com")
	wantKind(t, err, outlook.KindNotFound)

	limited, err := f.client.For(outlook.Credentials{TenantID: tenantID, ClientID: "limited-0000-4000-8000-000000000c04", ClientSecret: "lim-secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = limited.GetUser(ctx, f.taro.Mail)
	wantKind(t, err, outlook.KindAccessDenied) // no User.Read.All
	if owner, err := limited.CalendarOwner(ctx, f.taro.Mail); err != nil || owner.Mail != f.taro.Mail {
		t.Fatalf("allowed mailbox: %+v %v", owner, err)
	}
	_, err = limited.CalendarOwner(ctx, f.hanako.Mail)
	wantKind(t, err, outlook.KindAccessDenied) // application access policy
	_, err = limited.CalendarOwner(ctx, "nobody@contoso.onmicrosoft.com")
	wantKind(t, err, outlook.KindNotFound)

	noConsent, _ := f.client.For(outlook.Credentials{TenantID: tenantID, ClientID: "noconsent-0000-4000-8000-0000000c003", ClientSecret: "nc-secret"})
	_, err = noConsent.CalendarOwner(ctx, f.taro.Mail)
	wantKind(t, err, outlook.KindNoPermissions) // a token without roles: 401 NoPermissionsInAccessToken
}

func tokyo(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestEventLifecycle(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	jst := tokyo(t)
	in := outlook.Event{
		Subject: "現場A 設備点検", Body: "持ち物: 脚立", Location: "東京都港区",
		Start: time.Date(2026, 12, 1, 9, 0, 0, 0, jst), End: time.Date(2026, 12, 1, 12, 0, 0, 0, jst),
		TimeZone: "Tokyo Standard Time", ShowAs: "busy", Categories: []string{"手配"},
		ExtendedProperties: map[string]string{propID: "job-42"}, TransactionID: "txn-job-42",
	}
	ev, err := s.CreateEvent(ctx, f.taro.ID, in)
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID == "" || ev.ChangeKey == "" || ev.ICalUID == "" || ev.Subject != in.Subject {
		t.Fatalf("created %+v", ev)
	}
	if !ev.Start.Equal(in.Start) || ev.Start.Hour() != 0 || ev.TimeZone != "Tokyo Standard Time" {
		t.Fatalf("start %v (%s), want 00:00Z", ev.Start, ev.TimeZone)
	}

	again, err := s.CreateEvent(ctx, f.taro.ID, in)
	if err != nil || again.ID != ev.ID {
		t.Fatalf("transactionId retry made %q (first %q): %v", again.ID, ev.ID, err)
	}

	found, err := s.FindEventsByProperty(ctx, f.taro.Mail, propID, "job-42")
	if err != nil || len(found) != 1 || found[0].ID != ev.ID || found[0].ExtendedProperties[propID] != "job-42" {
		t.Fatalf("find by property: %+v %v", found, err)
	}
	if none, err := s.FindEventsByProperty(ctx, f.taro.Mail, propID, "job-43"); err != nil || len(none) != 0 {
		t.Fatalf("find other value: %+v %v", none, err)
	}

	got, err := s.GetEvent(ctx, f.taro.ID, ev.ID, propID)
	if err != nil || got.ExtendedProperties[propID] != "job-42" || got.Location != "東京都港区" || got.Body != "持ち物: 脚立" {
		t.Fatalf("get: %+v %v", got, err)
	}

	in.Subject = "現場A 設備点検（変更）"
	upd, err := s.UpdateEvent(ctx, f.taro.ID, ev.ID, in, []string{"subject"}, ev.ChangeKey)
	if err != nil || upd.Subject != in.Subject || upd.ChangeKey == ev.ChangeKey {
		t.Fatalf("update: %+v %v", upd, err)
	}
	if !upd.Start.Equal(ev.Start) {
		t.Fatalf("PATCH of subject moved the start: %v", upd.Start)
	}
	// The emulator's events, as Graph writes them, are read by the fast
	// decoder itself, not by the fallback to kiota (wire.go).
	resp, err := f.emu.Client().Get(f.emu.URL + "/_emulator/users/" + f.taro.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	var listed struct{ Value []json.RawMessage }
	err = json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if err != nil || len(listed.Value) == 0 {
		t.Fatalf("listing the emulator's events: %d, %v", len(listed.Value), err)
	}
	for _, raw := range listed.Value {
		if !outlook.ReadsPlainly(raw) {
			t.Fatalf("the fast decoder fell back to kiota for a single event:\n%s", raw)
		}
	}
	_, err = s.UpdateEvent(ctx, f.taro.ID, ev.ID, in, []string{"subject"}, ev.ChangeKey)
	wantKind(t, err, outlook.KindConflict)

	if err := s.DeleteEvent(ctx, f.taro.ID, ev.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetEvent(ctx, f.taro.ID, ev.ID, "")
	wantKind(t, err, outlook.KindNotFound)
	wantKind(t, s.DeleteEvent(ctx, f.taro.ID, ev.ID), outlook.KindNotFound)
}

func TestAllDayAndDaylightSaving(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	ny, _ := time.LoadLocation("America/New_York")
	// 2026-03-08 is the US change to daylight saving time.
	ev, err := s.CreateEvent(ctx, f.taro.ID, outlook.Event{
		Subject: "DST", Start: time.Date(2026, 3, 7, 9, 0, 0, 0, ny), End: time.Date(2026, 3, 9, 9, 0, 0, 0, ny), TimeZone: "Eastern Standard Time",
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Start.Hour() != 14 || ev.End.Hour() != 13 {
		t.Fatalf("EST/EDT conversion: %v .. %v", ev.Start, ev.End)
	}
	jst := tokyo(t)
	allDay, err := s.CreateEvent(ctx, f.taro.ID, outlook.Event{
		Subject: "終日", IsAllDay: true, Start: time.Date(2026, 12, 24, 0, 0, 0, 0, jst), End: time.Date(2026, 12, 26, 0, 0, 0, 0, jst), TimeZone: "Tokyo Standard Time",
	})
	if err != nil || !allDay.IsAllDay || allDay.End.Sub(allDay.Start) != 48*time.Hour {
		t.Fatalf("all-day: %+v %v", allDay, err)
	}
	_, err = s.CreateEvent(ctx, f.taro.ID, outlook.Event{
		Subject: "bad all-day", IsAllDay: true, Start: time.Date(2026, 12, 24, 9, 0, 0, 0, jst), End: time.Date(2026, 12, 25, 0, 0, 0, 0, jst), TimeZone: "Tokyo Standard Time",
	})
	wantKind(t, err, outlook.KindBadRequest)
}

func TestDelta(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 5; i++ {
		ev, err := s.CreateEvent(ctx, f.taro.ID, outlook.Event{Subject: "e", Start: base.Add(time.Duration(i) * 24 * time.Hour), End: base.Add(time.Duration(i)*24*time.Hour + time.Hour), TimeZone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	// Outside the window.
	if _, err := s.CreateEvent(ctx, f.taro.ID, outlook.Event{Subject: "far", Start: base.AddDate(1, 0, 0), End: base.AddDate(1, 0, 0).Add(time.Hour), TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	start, end := base.Add(-time.Hour), base.AddDate(0, 1, 0)
	round := func(link string) (changed []outlook.Event, removed []string, deltaLink string, pages int) {
		for {
			p, err := s.Delta(ctx, f.taro.ID, link, start, end, 2)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			changed, removed = append(changed, p.Changed...), append(removed, p.Removed...)
			if p.DeltaLink != "" {
				return changed, removed, p.DeltaLink, pages
			}
			if p.NextLink == "" {
				t.Fatal("page with neither nextLink nor deltaLink")
			}
			link = p.NextLink
		}
	}
	changed, removed, dl, pages := round("")
	if len(changed) != 5 || len(removed) != 0 || pages != 3 {
		t.Fatalf("full round: %d changed, %d removed, %d pages", len(changed), len(removed), pages)
	}
	if _, err := s.UpdateEvent(ctx, f.taro.ID, ids[1], outlook.Event{Subject: "moved"}, []string{"subject"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEvent(ctx, f.taro.ID, ids[2]); err != nil {
		t.Fatal(err)
	}
	changed, removed, dl2, _ := round(dl)
	if len(changed) != 1 || changed[0].ID != ids[1] || changed[0].Subject != "moved" || len(removed) != 1 || removed[0] != ids[2] {
		t.Fatalf("incremental: changed %+v removed %v", changed, removed)
	}
	if c, r, _, _ := round(dl2); len(c) != 0 || len(r) != 0 {
		t.Fatalf("quiet round: %d changed %d removed", len(c), len(r))
	}
	if err := f.emu.AddFault(graphemu.Fault{Kind: "replayDelta"}); err != nil {
		t.Fatal(err)
	}
	if c, r, _, _ := round(dl2); len(c) != 1 || len(r) != 1 {
		t.Fatalf("replayed round: %d changed %d removed", len(c), len(r))
	}
	if err := f.emu.AddFault(graphemu.Fault{Kind: "staleDeltaTokens"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Delta(ctx, f.taro.ID, dl2, start, end, 2)
	wantKind(t, err, outlook.KindSyncReset)
}

// receiver is a notification endpoint like calsync's: it answers the
// validation handshake and records notifications.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex
	tokens   []string
	bodies   []map[string]any
	failNext int
	got      chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if tok := req.URL.Query().Get("validationToken"); tok != "" {
			r.mu.Lock()
			r.tokens = append(r.tokens, tok)
			r.mu.Unlock()
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, tok)
			return
		}
		r.mu.Lock()
		if r.failNext > 0 {
			r.failNext--
			r.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var body map[string]any
		_ = json.NewDecoder(req.Body).Decode(&body)
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) wait(t *testing.T) map[string]any {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10s")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[len(r.bodies)-1]
}

func TestSubscriptionsAndNotifications(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	rcv := newReceiver(t)
	req := outlook.SubscriptionRequest{
		Resource: "/users/" + f.taro.ID + "/events", ChangeTypes: []string{"created", "updated", "deleted"},
		NotificationURL: rcv.srv.URL + "/webhooks/graph/notifications", LifecycleURL: rcv.srv.URL + "/webhooks/graph/lifecycle",
		ClientState: strings.Repeat("s", 128), Expiration: time.Now().Add(outlook.MaxEventSubscription - time.Minute),
	}
	sub, err := s.CreateSubscription(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	tokens := append([]string(nil), rcv.tokens...)
	rcv.mu.Unlock()
	if len(tokens) != 2 || !strings.HasPrefix(tokens[0], "Validation: Testing client application reachability") {
		t.Fatalf("handshake tokens seen: %q", tokens)
	}

	t.Run("limits", func(t *testing.T) {
		bad := req
		bad.Expiration = time.Now().Add(outlook.MaxEventSubscription + time.Hour)
		_, err := s.CreateSubscription(ctx, bad)
		wantKind(t, err, outlook.KindBadRequest)
		bad = req
		bad.ClientState = strings.Repeat("s", 129)
		_, err = s.CreateSubscription(ctx, bad)
		wantKind(t, err, outlook.KindBadRequest)
	})
	t.Run("failed handshake", func(t *testing.T) {
		if err := f.emu.AddFault(graphemu.Fault{Kind: "failHandshake"}); err != nil {
			t.Fatal(err)
		}
		_, err := s.CreateSubscription(ctx, req)
		wantKind(t, err, outlook.KindBadRequest)
		wrong := req
		wrong.NotificationURL = rcv.srv.URL + "/?echo=broken"
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json") // not text/plain
			_, _ = io.WriteString(w, r.URL.Query().Get("validationToken"))
		}))
		defer echo.Close()
		wrong.NotificationURL = echo.URL
		_, err = s.CreateSubscription(ctx, wrong)
		wantKind(t, err, outlook.KindBadRequest)
	})

	// An owner-side edit reaches the receiver in the documented shape.
	owner := ownerCreate(t, f, map[string]any{"subject": "Outlook で作成", "start": map[string]any{"dateTime": "2026-12-02T10:00:00", "timeZone": "Tokyo Standard Time"}, "end": map[string]any{"dateTime": "2026-12-02T11:00:00", "timeZone": "Tokyo Standard Time"}})
	body := rcv.wait(t)
	n := body["value"].([]any)[0].(map[string]any)
	if n["subscriptionId"] != sub.ID || n["changeType"] != "created" || n["clientState"] != req.ClientState || n["tenantId"] != tenantID {
		t.Fatalf("notification %v", n)
	}
	if rd := n["resourceData"].(map[string]any); rd["id"] != owner {
		t.Fatalf("resourceData.id = %v, want immutable id %s", rd["id"], owner)
	}

	t.Run("retry after failed delivery", func(t *testing.T) {
		rcv.mu.Lock()
		rcv.failNext = 1
		rcv.mu.Unlock()
		ownerCreate(t, f, map[string]any{"subject": "retry", "start": map[string]any{"dateTime": "2026-12-03T10:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2026-12-03T11:00:00", "timeZone": "UTC"}})
		b := rcv.wait(t)
		if b["value"].([]any)[0].(map[string]any)["changeType"] != "created" {
			t.Fatalf("redelivered %v", b)
		}
	})

	renewed, err := s.RenewSubscription(ctx, sub.ID, time.Now().Add(48*time.Hour))
	if err != nil || renewed.Expiration.Sub(time.Now()) < 47*time.Hour {
		t.Fatalf("renew: %+v %v", renewed, err)
	}
	if err := s.ReauthorizeSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.DeleteSubscription(ctx, sub.ID), outlook.KindNotFound)
	_, err = s.RenewSubscription(ctx, sub.ID, time.Now().Add(time.Hour))
	wantKind(t, err, outlook.KindNotFound)
}

func ownerCreate(t *testing.T, f *fixture, ev map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(ev)
	resp, err := f.emu.Client().Post(f.emu.URL+"/_emulator/users/"+f.taro.Mail+"/events", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 201 {
		t.Fatalf("owner create: %d %v", resp.StatusCode, out)
	}
	return out["id"].(string)
}

func TestThrottling(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	since := f.emu.LastRequestSeq()
	if err := f.emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: f.taro.Mail, Count: 1, RetryAfterSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := s.CalendarOwner(ctx, f.taro.ID); err != nil {
		t.Fatalf("the SDK should retry after Retry-After: %v", err)
	}
	if waited := time.Since(began); waited < time.Second {
		t.Fatalf("retried after %v, before Retry-After", waited)
	}
	var statuses []int
	for _, r := range f.emu.Requests(since) {
		if strings.HasSuffix(r.Path, "/calendar") {
			statuses = append(statuses, r.Status)
		}
	}
	if len(statuses) != 2 || statuses[0] != 429 || statuses[1] != 200 {
		t.Fatalf("statuses %v, want [429 200]", statuses)
	}

	// More 429s than the SDK retries: the caller sees KindThrottled with the delay.
	if err := f.emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: f.taro.Mail, Count: 10, RetryAfterSeconds: 0}); err != nil {
		t.Fatal(err)
	}
	_, err := s.CalendarOwner(ctx, f.taro.ID)
	wantKind(t, err, outlook.KindThrottled)
	f.emu.ClearFaults()

	// A Retry-After longer than the retry budget (10 s here) is not waited
	// out: one call, and the caller gets the delay to pass on.
	if err := f.emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: f.taro.Mail, Count: 10, RetryAfterSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	since = f.emu.LastRequestSeq()
	_, err = s.CalendarOwner(ctx, f.taro.ID)
	wantKind(t, err, outlook.KindThrottled)
	var oe *outlook.Error
	if !errors.As(err, &oe) || oe.RetryAfter != 30*time.Second {
		t.Fatalf("retry after: %+v", err)
	}
	if n := len(f.emu.Requests(since)); n != 1 {
		t.Fatalf("%d calls for a 30 s Retry-After, want 1", n)
	}
	f.emu.ClearFaults()
}

func TestIdempotentCallsRetryServerErrorsAndCutConnections(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	s := f.session(t)
	ev, err := s.CreateEvent(ctx, f.taro.ID, outlook.Event{Subject: "retry", Start: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC),
		End: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	calls := func(since int64, method string) []int {
		var out []int
		for _, r := range f.emu.Requests(since) {
			if r.Method == method {
				out = append(out, r.Status)
			}
		}
		return out
	}
	// Two 500s on a read: retried, the third answers.
	since := f.emu.LastRequestSeq()
	if err := f.emu.AddFault(graphemu.Fault{Kind: "serverError", Mailbox: f.taro.Mail, Method: "GET", Count: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetEvent(ctx, f.taro.ID, ev.ID, ""); err != nil {
		t.Fatalf("read through two 500s: %v", err)
	}
	if got := fmt.Sprint(calls(since, "GET")); got != "[500 500 200]" {
		t.Fatalf("reads answered %s", got)
	}
	// Three are more than the retries: the caller sees KindUnavailable.
	if err := f.emu.AddFault(graphemu.Fault{Kind: "serverError", Mailbox: f.taro.Mail, Method: "GET", Count: 3}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetEvent(ctx, f.taro.ID, ev.ID, "")
	wantKind(t, err, outlook.KindUnavailable)
	// A delete whose connection is cut is sent again.
	since = f.emu.LastRequestSeq()
	if err := f.emu.AddFault(graphemu.Fault{Kind: "dropConnection", Mailbox: f.taro.Mail, Method: "DELETE", Count: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEvent(ctx, f.taro.ID, ev.ID); err != nil {
		t.Fatalf("delete past a cut connection: %v", err)
	}
	if got := fmt.Sprint(calls(since, "DELETE")); got != "[0 204]" {
		t.Fatalf("deletes answered %s", got)
	}
	// A PATCH is not re-sent by the client: the caller decides.
	if err := f.emu.AddFault(graphemu.Fault{Kind: "serverError", Mailbox: f.taro.Mail, Method: "PATCH", Count: 1}); err != nil {
		t.Fatal(err)
	}
	since = f.emu.LastRequestSeq()
	_, err = s.UpdateEvent(ctx, f.taro.ID, ev.ID, outlook.Event{Subject: "x"}, []string{"subject"}, "")
	wantKind(t, err, outlook.KindUnavailable)
	if got := fmt.Sprint(calls(since, "PATCH")); got != "[500]" {
		t.Fatalf("patches answered %s", got)
	}
}

// TestHostileAnswerOverTheBound checks MaxAnswerBytes: an answer longer
// than the bound fails the call with a clear error instead of being read
// whole, whether it declares its length or not, and an answer just inside
// the bound is read as usual.
func TestHostileAnswerOverTheBound(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "1. answers without end", "an event answer and a delta page of about 100 KB against a 64 KiB bound (the default is 32 MiB); three events of about 40 KB each, one page of 120 KB",
		"the call fails with \"over 65536 bytes\" without reading the rest; a page over the bound whose events each fit is asked again one event at a time and read whole; an answer inside the bound and the default bound read as usual")
	f := setup(t)
	ctx := context.Background()
	const bound = 64 << 10
	c := outlook.New(outlook.Config{GraphBaseURL: f.emu.URL, LoginBaseURL: f.emu.URL, Transport: f.emu.Transport(), MaxAnswerBytes: bound})
	s, err := c.For(f.creds)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	small, err := s.CreateEvent(ctx, f.taro.ID, outlook.Event{Subject: "小", Body: "short", Start: start, End: start.Add(time.Hour), TimeZone: "UTC"})
	if err != nil {
		t.Fatalf("an answer inside the bound was refused: %v", err)
	}
	// About 100 KB of body: the emulator makes the event, its answer is
	// over the bound.
	big := outlook.Event{Subject: "大", Body: strings.Repeat("長い本文。", 7000), Start: start, End: start.Add(time.Hour), TimeZone: "UTC"}
	_, err = s.CreateEvent(ctx, f.taro.ID, big)
	if err == nil || !strings.Contains(err.Error(), "over 65536 bytes") {
		t.Fatalf("an answer over the bound was read: %v", err)
	}
	// A delta page holding that event is over the bound too, and so is
	// that event alone: the round fails. A session with the default bound
	// reads it.
	round := func(s *outlook.Session, mailbox string) (map[string]bool, error) {
		seen, link := map[string]bool{}, ""
		for pages := 0; pages < 20; pages++ {
			p, err := s.Delta(ctx, mailbox, link, start.Add(-time.Hour), start.Add(2*time.Hour), 100)
			if err != nil {
				return seen, err
			}
			for _, ev := range p.Changed {
				seen[ev.ID] = true
			}
			if p.DeltaLink != "" {
				return seen, nil
			}
			link = p.NextLink
		}
		return seen, errors.New("no deltaLink after 20 pages")
	}
	if _, err := round(s, f.taro.ID); err == nil || !strings.Contains(err.Error(), "over 65536 bytes") {
		t.Fatalf("a delta round with an event over the bound was read: %v", err)
	}
	page, err := f.session(t).Delta(ctx, f.taro.ID, "", start.Add(-time.Hour), start.Add(2*time.Hour), 0)
	if err != nil || len(page.Changed) != 2 {
		t.Fatalf("default bound: %d events, %v", len(page.Changed), err)
	}
	// Events each inside the bound but over it together (pictures pasted
	// into their bodies): the page is asked again one event at a time, and
	// the whole round is read.
	var medium []string
	for i := range 3 {
		ev, err := f.session(t).CreateEvent(ctx, f.hanako.ID, outlook.Event{Subject: fmt.Sprintf("中%d", i), Body: strings.Repeat("写真。", 4500),
			Start: start, End: start.Add(time.Hour), TimeZone: "UTC"})
		if err != nil {
			t.Fatal(err)
		}
		medium = append(medium, ev.ID)
	}
	since := f.emu.LastRequestSeq()
	seen, err := round(s, f.hanako.ID)
	if err != nil {
		t.Fatalf("a round of events each inside the bound: %v", err)
	}
	deltas := 0
	for _, r := range f.emu.Requests(since) {
		if strings.Contains(r.Path, "/calendarView/delta") {
			deltas++
		}
	}
	// Three events of about 40 KB: the first page of 100 is over the
	// bound and asked again, then one event a page (and the last page).
	if deltas < 4 {
		t.Fatalf("%d delta requests: the page over the bound was not asked again one event at a time", deltas)
	}
	for _, id := range medium {
		if !seen[id] {
			t.Fatalf("event %s missing from the round read one at a time (%d seen)", id, len(seen))
		}
	}
	if got, err := s.GetEvent(ctx, f.taro.ID, small.ID, ""); err != nil || got.Subject != "小" {
		t.Fatalf("small event after the refusals: %+v %v", got, err)
	}
}
