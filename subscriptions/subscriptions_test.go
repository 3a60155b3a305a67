package subscriptions_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/testenv"
	"github.com/tehaishokunin/calsync/links"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/secrets"
	"github.com/tehaishokunin/calsync/subscriptions"
)

const (
	tenantID = testenv.TenantID
	clientID = testenv.ClientID
	secret   = testenv.Secret
	company  = testenv.Company
)

type bundle struct {
	emu     *graphemu.Server
	store   *db.Store
	creds   *credentials.Service
	keys    *secrets.Keyring
	mgr     *subscriptions.Manager
	links   *links.Service
	graph   *outlook.Client
	log     *slog.Logger
	logs    *testenv.SyncBuffer
	mailbox string
	hooks   *httptest.Server
}

func setup(t *testing.T) *bundle {
	t.Helper()
	e := testenv.New(t)
	return &bundle{emu: e.Emu, store: e.Store, creds: e.Creds, keys: e.Keys, mgr: e.Subs, links: e.Links, graph: e.Graph, log: e.Log,
		logs: e.Logs, mailbox: e.Mailbox, hooks: e.Hooks}
}

func (b *bundle) link(t *testing.T, user, mailbox string) *db.CalendarLink {
	t.Helper()
	if _, err := b.links.Set(context.Background(), company, "admin", links.Input{UserID: user, Provider: db.ProviderOutlook, CalendarID: mailbox}); err != nil {
		t.Fatal(err)
	}
	l, err := b.store.Link(context.Background(), company, user)
	if err != nil || l == nil {
		t.Fatal(err)
	}
	return l
}

func (b *bundle) subsOf(t *testing.T, linkID int64) []db.GraphSubscription {
	t.Helper()
	s, err := b.store.SubscriptionsOfLink(context.Background(), linkID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// emuSubs lists the emulator's live subscriptions by id.
func (b *bundle) emuSubs(t *testing.T) map[string]time.Time {
	t.Helper()
	resp, err := b.emu.Client().Get(b.emu.URL + "/_emulator/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Value []struct {
			ID         string    `json:"id"`
			Expiration time.Time `json:"expirationDateTime"`
		} `json:"value"`
	}
	if err := jsonDecode(resp, &out); err != nil {
		t.Fatal(err)
	}
	m := map[string]time.Time{}
	for _, s := range out.Value {
		m[s.ID] = s.Expiration
	}
	return m
}

func (b *bundle) countPatches(since int64) int {
	n := 0
	for _, r := range b.emu.Requests(since) {
		if r.Method == "PATCH" && strings.HasPrefix(r.Path, "/v1.0/subscriptions/") {
			n++
		}
	}
	return n
}

func (b *bundle) makeDue(t *testing.T, id string, expiresIn time.Duration) {
	t.Helper()
	if _, err := b.store.DB().NewUpdate().Model((*db.GraphSubscription)(nil)).Set("renew_at = now() - interval '1 second'").
		Set("expires_at = ?", time.Now().Add(expiresIn)).Where("id = ?", id).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLinkCreatesLongLivedSubscription(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := b.link(t, "u1", b.mailbox)
	subs := b.subsOf(t, l.ID)
	if len(subs) != 1 || l.Status != db.LinkActive {
		t.Fatalf("link %+v subs %+v", l, subs)
	}
	s := subs[0]
	if got := time.Until(s.ExpiresAt); got < subscriptions.Lifetime-time.Minute || got > outlook.MaxEventSubscription {
		t.Fatalf("expiration in %v, want about 10,075 minutes", got)
	}
	if len(s.ClientState) < 32 || !s.RenewAt.Before(s.ExpiresAt.Add(-24*time.Hour)) {
		t.Fatalf("clientState %q renewAt %v", s.ClientState, s.RenewAt)
	}
	if d, _ := b.store.Delta(context.Background(), l.ID); d == nil || d.DeltaLink == nil {
		t.Fatal("no initial delta link")
	}
	other := b.link(t, "u2", b.mailbox)
	if b.subsOf(t, other.ID)[0].ClientState == s.ClientState {
		t.Fatal("clientState reused across subscriptions")
	}
}

func TestRenewalOfSubscriptionNearExpiry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]
	b.makeDue(t, sub.ID, time.Minute)
	since := b.emu.LastRequestSeq()
	r := subscriptions.NewRenewer(b.mgr, time.Hour, b.log)
	if n := r.RunOnce(context.Background()); n != 1 {
		t.Fatalf("renewed %d", n)
	}
	if p := b.countPatches(since); p != 1 {
		t.Fatalf("%d PATCH requests", p)
	}
	after := b.subsOf(t, l.ID)[0]
	if after.ID != sub.ID || time.Until(after.ExpiresAt) < 6*24*time.Hour || !after.RenewAt.After(time.Now().Add(4*24*time.Hour)) {
		t.Fatalf("after renewal %+v", after)
	}
	if exp := b.emuSubs(t)[sub.ID]; time.Until(exp) < 6*24*time.Hour {
		t.Fatalf("emulator expiration %v", exp)
	}
	if n := r.RunOnce(context.Background()); n != 0 {
		t.Fatalf("renewed again: %d", n)
	}
}

func TestRemovedSubscriptionIsRecreated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]
	// Graph drops the subscription (the notification to our hook is only
	// queued here; the renewal discovers the 404).
	if err := b.emu.AddFault(graphemu.Fault{Kind: "dropNotifications", Count: 1}); err != nil {
		t.Fatal(err)
	}
	resp, err := b.emu.Client().Post(b.emu.URL+"/_emulator/subscriptions/"+sub.ID+"/lifecycle", "application/json", strings.NewReader(`{"lifecycleEvent":"subscriptionRemoved"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b.makeDue(t, sub.ID, time.Hour)
	subscriptions.NewRenewer(b.mgr, time.Hour, b.log).RunOnce(context.Background())
	now := b.subsOf(t, l.ID)
	if len(now) != 1 || now[0].ID == sub.ID {
		t.Fatalf("subscriptions after recreate: %+v", now)
	}
	if _, live := b.emuSubs(t)[now[0].ID]; !live {
		t.Fatal("new subscription not in Graph")
	}
}

func TestLifecycleEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]

	since := b.emu.LastRequestSeq()
	if err := b.mgr.HandleLifecycle(ctx, sub.ID, subscriptions.EventReauthorizationRequired); err != nil {
		t.Fatal(err)
	}
	if b.countPatches(since) != 1 {
		t.Fatal("reauthorizationRequired did not renew")
	}

	since = b.emu.LastRequestSeq()
	if err := b.mgr.HandleLifecycle(ctx, sub.ID, subscriptions.EventMissed); err != nil {
		t.Fatal(err)
	}
	deltas := 0
	for _, r := range b.emu.Requests(since) {
		if strings.Contains(r.Path, "/delta") {
			deltas++
		}
	}
	if deltas == 0 {
		t.Fatal("missed did not resync")
	}

	if err := b.mgr.HandleLifecycle(ctx, sub.ID, "somethingNew"); err != nil {
		t.Fatalf("unknown event: %v", err)
	}
	if !strings.Contains(b.logs.String(), "unknown lifecycle event") {
		t.Fatal("unknown event not logged")
	}

	if err := b.mgr.HandleLifecycle(ctx, sub.ID, subscriptions.EventSubscriptionRemoved); err != nil {
		t.Fatal(err)
	}
	now := b.subsOf(t, l.ID)
	if len(now) != 1 || now[0].ID == sub.ID {
		t.Fatalf("after subscriptionRemoved: %+v", now)
	}
}

func TestReconcileRecreatesMissing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]
	if err := b.store.DeleteSubscription(context.Background(), sub.ID); err != nil {
		t.Fatal(err)
	}
	if err := b.mgr.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if subs := b.subsOf(t, l.ID); len(subs) != 1 || subs[0].ID == sub.ID {
		t.Fatalf("after reconcile %+v", subs)
	}
}

func TestRenewalFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]

	// Microsoft rejects the stored secret: credentials and links say so.
	if _, err := b.emu.AddTenant(graphemu.TenantSpec{TenantID: tenantID, Apps: []graphemu.AppSpec{{ClientID: clientID, Secret: "rotated-in-portal-secret-000000", Roles: []string{"Calendars.ReadWrite"}}}}); err != nil {
		t.Fatal(err)
	}
	// A fresh client: the old one would reuse its cached token.
	fresh := outlook.New(outlook.Config{GraphBaseURL: b.emu.URL, LoginBaseURL: b.emu.URL, Transport: b.emu.Transport()})
	u, _ := url.Parse(b.hooks.URL)
	mgr := subscriptions.NewManager(subscriptions.Config{PublicURL: u}, b.store, credentials.NewSessions(b.store, b.keys, fresh, b.log), nil, nil, b.log)
	if err := mgr.Renew(ctx, sub); err == nil {
		t.Fatal("renewal with a rejected secret succeeded")
	}
	s, _ := b.creds.Settings(ctx, company)
	link, _ := b.store.LinkByID(ctx, l.ID)
	if s.Status != credentials.StatusInvalidSecret || link.Status != db.LinkError || link.LastError == nil {
		t.Fatalf("credentials %s, link %s %v", s.Status, link.Status, link.LastError)
	}
}

func TestRepeatedFailuresMarkLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.link(t, "u1", b.mailbox)
	sub := b.subsOf(t, l.ID)[0]
	// Four failures so far; Graph keeps answering 429 beyond the SDK's
	// own retries, so this is the fifth.
	if _, err := b.store.DB().NewUpdate().Model((*db.GraphSubscription)(nil)).Set("renewal_failures = 4").Where("id = ?", sub.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: b.mailbox, Count: 10, RetryAfterSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	cur, _ := b.store.Subscription(ctx, sub.ID)
	if err := b.mgr.Renew(ctx, *cur); outlook.KindOf(err) != outlook.KindThrottled {
		t.Fatalf("renew: %v", err)
	}
	cur, _ = b.store.Subscription(ctx, sub.ID)
	link, _ := b.store.LinkByID(ctx, l.ID)
	if cur.RenewalFailures != 5 || link.Status != db.LinkError || !strings.Contains(*link.LastError, "5") || !cur.RenewAt.After(time.Now()) {
		t.Fatalf("sub %+v link %+v", cur, link)
	}
}

func TestTwoRenewersRenewEachOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	l := b.link(t, "u0", b.mailbox)
	// 500 due subscriptions, made directly to keep the test quick.
	sess, err := b.graph.For(outlook.Credentials{TenantID: tenantID, ClientID: clientID, ClientSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	sem := make(chan struct{}, 16)
	for i := 0; i < 500; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			s, err := sess.CreateSubscription(ctx, outlook.SubscriptionRequest{
				Resource: "/users/" + b.mailbox + "/events", ChangeTypes: []string{"updated"},
				NotificationURL: b.hooks.URL + subscriptions.NotificationPath, ClientState: fmt.Sprint("cs-", i),
				Expiration: time.Now().Add(time.Hour),
			})
			if err == nil {
				err = b.store.InsertSubscription(ctx, &db.GraphSubscription{ID: s.ID, LinkID: l.ID, CompanyID: company, Resource: s.Resource,
					ExpiresAt: s.Expiration, RenewAt: time.Now().Add(-time.Second), ClientState: fmt.Sprint("cs-", i), Status: db.SubActive})
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	since := b.emu.LastRequestSeq()
	r1 := subscriptions.NewRenewer(b.mgr, time.Hour, b.log)
	r2 := subscriptions.NewRenewer(b.mgr, time.Hour, b.log)
	var n1, n2 int
	var rw sync.WaitGroup
	rw.Add(2)
	go func() { defer rw.Done(); n1 = r1.RunOnce(ctx) }()
	go func() { defer rw.Done(); n2 = r2.RunOnce(ctx) }()
	rw.Wait()
	if n1+n2 != 500 {
		t.Fatalf("renewers attempted %d + %d", n1, n2)
	}
	if p := b.countPatches(since); p != 500 {
		t.Fatalf("%d PATCH requests for 500 due subscriptions", p)
	}
	t.Logf("renewer 1: %d, renewer 2: %d", n1, n2)
}
