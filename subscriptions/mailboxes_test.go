package subscriptions_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/testenv"
	"github.com/tehaishokunin/calsync/links"
)

// TestMailboxesThatCannotBeUsed (issue 16 §2): a user without an Exchange
// Online mailbox answers MAILBOX_NOT_ENABLED with a licence hint, an
// address outside the tenant MAILBOX_NOT_FOUND, a personal address is
// refused before any Graph call, and nothing is stored for any of them.
func TestMailboxesThatCannotBeUsed(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	f := false
	if _, err := e.Emu.AddTenant(graphemu.TenantSpec{TenantID: tenantID, Domain: testenv.Domain,
		Users: []graphemu.UserSpec{{Mail: "f1@" + testenv.Domain, DisplayName: "現場 一郎", Mailbox: &f}}}); err != nil {
		t.Fatal(err)
	}
	set := func(user, addr string) error {
		_, err := e.Links.Set(ctx, company, "admin", links.Input{UserID: user, Provider: db.ProviderOutlook, CalendarID: addr})
		return err
	}
	err := set("f1", "f1@"+testenv.Domain)
	if ae := apperr.As(err); ae == nil || ae.Code != apperr.MailboxNotEnabled || ae.Field != "calendarId" || ae.Hint == nil || !strings.Contains(ae.Hint.EN, "Exchange Online") {
		t.Fatalf("no Exchange Online mailbox: %v", err)
	}
	if ae := apperr.As(set("x", "nobody@"+testenv.Domain)); ae == nil || ae.Code != apperr.MailboxNotFound {
		t.Fatalf("an address outside the tenant: %v", ae)
	}
	before := e.Requests(0, func(graphemu.RequestRecord) bool { return true })
	for _, addr := range []string{"taro.yamada@outlook.com", "TARO@Hotmail.co.jp", "genba.taro@docomo.ne.jp", "ｔａｒｏ＠ｇｍａｉｌ．ｃｏｍ"} {
		if ae := apperr.As(set("p", addr)); ae == nil || ae.Code != apperr.InvalidInput || ae.Field != "calendarId" || ae.Hint == nil {
			t.Errorf("personal address %s: %v", addr, ae)
		}
	}
	if n := e.Requests(0, func(graphemu.RequestRecord) bool { return true }); n != before {
		t.Errorf("personal addresses made %d Graph calls", n-before)
	}
	for _, user := range []string{"f1", "x", "p"} {
		if l, err := e.Store.Link(ctx, company, user); err != nil || (l != nil && l.Provider != db.ProviderNone) {
			t.Errorf("a refused link left %+v %v", l, err)
		}
	}
}

// TestMailboxNotReadyIsActivatedLater (issue 16 §2): a new hire's mailbox
// still being provisioned is linked as PENDING and tried again on a
// backoff; once the mailbox exists, the link becomes ACTIVE by itself —
// subscribed, first sync run — and two replicas activating at once make
// one subscription.
func TestMailboxNotReadyIsActivatedLater(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	addr := "newhire@" + testenv.Domain
	if _, err := e.Emu.AddTenant(graphemu.TenantSpec{TenantID: tenantID, Domain: testenv.Domain,
		Users: []graphemu.UserSpec{{Mail: addr, DisplayName: "新人 花子", MailboxReadyAfterSeconds: 86400}}}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Links.Set(ctx, company, "admin", links.Input{UserID: "new", Provider: db.ProviderOutlook, CalendarID: addr})
	if err != nil {
		t.Fatalf("linking a mailbox being provisioned: %v", err)
	}
	if l.Status == nil || *l.Status != db.LinkPending || l.LastError == nil || !strings.Contains(*l.LastError, "provisioned") {
		t.Fatalf("link %+v", l)
	}
	row, _ := e.Store.Link(ctx, company, "new")
	if row.NextAttemptAt == nil || time.Until(*row.NextAttemptAt) < 50*time.Second || len(subsOfLink(t, e, row.ID)) != 0 {
		t.Fatalf("pending row %+v", row)
	}
	now := time.Now()
	if n := e.Subs.ActivatePending(ctx, now); n != 0 {
		t.Fatalf("tried %d links before their attempt was due", n)
	}
	// Due, still not ready: it waits longer (the backoff doubles).
	if n := e.Subs.ActivatePending(ctx, now.Add(2*time.Minute)); n != 1 {
		t.Fatalf("tried %d due links, want 1", n)
	}
	row, _ = e.Store.Link(ctx, company, "new")
	if row.Status != db.LinkPending || row.Attempts != 2 || row.NextAttemptAt.Sub(now) < 3*time.Minute {
		t.Fatalf("after a second failed attempt: %+v", row)
	}

	// The mailbox is provisioned; the craftsman already has an appointment.
	e.Control(t, "PATCH", "/_emulator/users/"+addr, map[string]any{"mailbox": true}, nil)
	e.Control(t, "POST", "/_emulator/users/"+addr+"/events", map[string]any{"subject": "健康診断",
		"start": map[string]any{"dateTime": time.Now().Add(72 * time.Hour).UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"},
		"end":   map[string]any{"dateTime": time.Now().Add(73 * time.Hour).UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"}}, nil)
	var wg sync.WaitGroup
	for range 2 { // two replicas' renewers at the same moment
		wg.Add(1)
		go func() { defer wg.Done(); e.Subs.ActivatePending(ctx, now.Add(time.Hour)) }()
	}
	wg.Wait()
	row, _ = e.Store.Link(ctx, company, "new")
	if row.Status != db.LinkActive || row.NextAttemptAt != nil || row.Attempts != 0 || row.LastSyncedAt == nil {
		t.Fatalf("after the mailbox was provisioned: %+v", row)
	}
	if subs := subsOfLink(t, e, row.ID); len(subs) != 1 {
		t.Fatalf("%d subscriptions after activation, want 1", len(subs))
	}
	cs, _, err := e.Store.Changes(ctx, company, 0, "", 100)
	if err != nil || len(cs) != 1 || !strings.Contains(string(cs[0].Event), "健康診断") {
		t.Fatalf("first sync after activation: %+v %v", cs, err)
	}
}

func subsOfLink(t *testing.T, e *testenv.Env, linkID int64) []db.GraphSubscription {
	t.Helper()
	subs, err := e.Store.SubscriptionsOfLink(context.Background(), linkID)
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

// TestPollingUntilASubscriptionCanBeMade (issue 16 §3): when Graph's
// validation request cannot reach calsync, the link is usable in POLLING
// mode (its first sync done, the reason shown), resync rounds keep it, and
// the subscription is retried on a backoff until it is made: then ACTIVE.
func TestPollingUntilASubscriptionCanBeMade(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events", map[string]any{"subject": "既存の予定",
		"start": map[string]any{"dateTime": time.Now().Add(48 * time.Hour).UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"},
		"end":   map[string]any{"dateTime": time.Now().Add(49 * time.Hour).UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"}}, nil)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "failHandshake", Count: 100}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Links.Set(ctx, company, "admin", links.Input{UserID: "u1", Provider: db.ProviderOutlook, CalendarID: e.Mailbox})
	if err != nil {
		t.Fatalf("linking while Graph cannot validate: %v", err)
	}
	if l.Status == nil || *l.Status != db.LinkPolling || l.LastError == nil || !strings.Contains(*l.LastError, "no change notifications") {
		t.Fatalf("link %+v", l)
	}
	row, _ := e.Store.Link(ctx, company, "u1")
	if row.LastSyncedAt == nil || row.NextPollAt == nil || row.NextAttemptAt == nil || len(subsOfLink(t, e, row.ID)) != 0 {
		t.Fatalf("polling row %+v", row)
	}
	if cs, _, _ := e.Store.Changes(ctx, company, 0, "", 10); len(cs) != 1 {
		t.Fatalf("first sync of a polling link reported %d events, want 1", len(cs))
	}
	// Still failing: still POLLING, tried later.
	now := time.Now()
	if n := e.Subs.ActivatePending(ctx, now.Add(2*time.Minute)); n != 1 {
		t.Fatalf("tried %d links", n)
	}
	if row, _ = e.Store.Link(ctx, company, "u1"); row.Status != db.LinkPolling || row.Attempts != 2 {
		t.Fatalf("after a failed retry: %+v", row)
	}
	e.Emu.ClearFaults()
	e.Subs.ActivatePending(ctx, now.Add(time.Hour))
	if row, _ = e.Store.Link(ctx, company, "u1"); row.Status != db.LinkActive || row.LastError != nil || row.NextAttemptAt != nil || len(subsOfLink(t, e, row.ID)) != 1 {
		t.Fatalf("after the subscription was made: %+v", row)
	}
}
