package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/db/dbtest"
	"github.com/tehaishokunin/calsync/webhooks"
)

type fixture struct {
	srv   *httptest.Server
	store *db.Store
	reg   *prometheus.Registry
	wakes int
	woken []int64 // the links of the last wake
}

func setup(t *testing.T, store *db.Store) *fixture {
	f := &fixture{store: store, reg: prometheus.NewRegistry()}
	h := webhooks.New(store, f.reg, func(links []int64) { f.wakes++; f.woken = links }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	mux.Handle("/n", h.Notifications())
	mux.Handle("/l", h.Lifecycle())
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

const tenant = "6e0c3f7a-5d1b-4c2e-9f10-1a2b3c4d5e6f"

func seed(t *testing.T, store *db.Store) (subID, clientState string) {
	ctx := context.Background()
	if err := store.PutCredential(ctx, &db.Credential{CompanyID: "acme", TenantID: tenant, ClientID: "c", SecretSealed: []byte{1},
		SecretKeyID: "k", SecretHint: "abcd", Status: "VERIFIED", GrantedRoles: []string{"Calendars.ReadWrite"}, RegisteredBy: "admin"},
		&db.AuditEntry{CompanyID: "acme", Actor: "admin", Action: "credentials.register", Detail: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	l := &db.CalendarLink{CompanyID: "acme", UserID: "u1", Provider: db.ProviderOutlook, Status: db.LinkActive}
	if err := store.SaveLink(ctx, l); err != nil {
		t.Fatal(err)
	}
	s := &db.GraphSubscription{ID: "sub-1", LinkID: l.ID, CompanyID: "acme", Resource: "/users/x/events", ExpiresAt: time.Now().Add(time.Hour),
		RenewAt: time.Now().Add(time.Hour), ClientState: "the-client-state", Status: db.SubActive}
	if err := store.InsertSubscription(ctx, s); err != nil {
		t.Fatal(err)
	}
	return s.ID, s.ClientState
}

func post(t *testing.T, url, ctype, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHandshake(t *testing.T) {
	t.Parallel()
	f := setup(t, db.NewStore(dbtest.New(t)))
	tok := "Validation: Testing client application reachability for subscription Request-Id: 0ab2"
	for _, path := range []string{"/n", "/l"} {
		resp, err := http.Post(f.srv.URL+path+"?validationToken="+url.QueryEscape(tok), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != tok || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("%s: %d %q %s", path, resp.StatusCode, b, resp.Header.Get("Content-Type"))
		}
	}
	if s, _ := post(t, f.srv.URL+"/n?validationToken="+url.QueryEscape("a\x00b"), "text/plain", ""); s != 400 {
		t.Fatalf("control characters in token: %d", s)
	}
}

func TestAcceptAndReject(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "2. wrong clientState, unknown subscription", "a POST mixing a genuine notification with a wrong clientState, an unknown subscription id and a deletion; lifecycle notifications with a wrong clientState",
		"only the genuine ones stored (clientState compared in constant time); the others counted")
	store := db.NewStore(dbtest.New(t))
	f := setup(t, store)
	sub, cs := seed(t, store)
	body := `{"value":[
	  {"subscriptionId":"` + sub + `","clientState":"` + cs + `","changeType":"updated","resource":"Users/x/Events/1","tenantId":"` + strings.ToUpper(tenant) + `"},
	  {"subscriptionId":"` + sub + `","clientState":"wrong","changeType":"updated","resource":"Users/x/Events/2"},
	  {"subscriptionId":"unknown","clientState":"` + cs + `","changeType":"updated","resource":"Users/x/Events/3"},
	  {"subscriptionId":"` + sub + `","clientState":"` + cs + `","changeType":"deleted","resource":"Users/x/Events/4"}]}`
	if s, _ := post(t, f.srv.URL+"/n", "application/json", body); s != 202 {
		t.Fatalf("status %d", s)
	}
	if n, _ := store.PendingInbox(context.Background()); n != 2 {
		t.Fatalf("%d stored, want the 2 genuine ones", n)
	}
	counts := map[string]float64{}
	for _, r := range []string{"accepted", "bad_client_state", "unknown_subscription"} {
		counts[r] = counter(t, f.reg, r)
	}
	if counts["accepted"] != 2 || counts["bad_client_state"] != 1 || counts["unknown_subscription"] != 1 || f.wakes != 1 {
		t.Fatalf("counts %v wakes %d", counts, f.wakes)
	}
	// The wake names the link once, however many of its notifications came.
	var link int64
	if err := store.DB().NewRaw("SELECT link_id FROM graph_subscriptions WHERE id = ?", sub).Scan(context.Background(), &link); err != nil {
		t.Fatal(err)
	}
	if len(f.woken) != 1 || f.woken[0] != link {
		t.Fatalf("woke the worker for links %v, want [%d]", f.woken, link)
	}
	// Lifecycle notifications are checked the same way.
	life := `{"value":[{"subscriptionId":"` + sub + `","clientState":"nope","lifecycleEvent":"missed"},{"subscriptionId":"` + sub + `","clientState":"` + cs + `","lifecycleEvent":"missed"}]}`
	if s, _ := post(t, f.srv.URL+"/l", "application/json", life); s != 202 {
		t.Fatalf("lifecycle status %d", s)
	}
	if n, _ := store.PendingInbox(context.Background()); n != 3 {
		t.Fatalf("%d stored after lifecycle", n)
	}
}

// counter reads calsync_webhook_notifications_total{result=...} summed
// over endpoints.
func counter(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func TestMalformedAndOversized(t *testing.T) {
	t.Parallel()
	f := setup(t, db.NewStore(dbtest.New(t)))
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"value":`, 400},
		{`not json`, 400},
		{`{"other":[]}`, 400},
		{`{"value":[]}`, 202},
		{`{"value":[` + strings.Repeat(`{"subscriptionId":"x"},`, 60000) + `{}]}`, 413},
	} {
		if s, _ := post(t, f.srv.URL+"/n", "application/json", c.body); s != c.want {
			t.Errorf("body %.30q: %d, want %d", c.body, s, c.want)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/n", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}

func TestDatabaseDownAnswers503(t *testing.T) {
	t.Parallel()
	// A Postgres that cannot be reached: nothing may be acknowledged.
	dead := db.NewStore(db.Open("postgres://postgres@127.0.0.1:1/none?sslmode=disable&dial_timeout=1s", db.Options{}))
	defer dead.DB().Close()
	f := setup(t, dead)
	s, _ := post(t, f.srv.URL+"/n", "application/json", `{"value":[{"subscriptionId":"s","clientState":"c","changeType":"updated"}]}`)
	if s != http.StatusServiceUnavailable {
		t.Fatalf("status %d with the database down", s)
	}
}

// countingStore is the real store, counting the subscription reads.
type countingStore struct {
	*db.Store
	reads atomic.Int64
}

func (c *countingStore) SubscriptionStates(ctx context.Context, ids []string) (map[string]db.SubscriptionState, error) {
	c.reads.Add(1)
	return c.Store.SubscriptionStates(ctx, ids)
}

func TestForgedNotifications(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "1. forged notifications", "another tenant's tenantId with the right clientState; text/plain, form and ISO-8859-1 bodies; invalid UTF-8; 100,000 nested arrays; 5,000 nested objects in one field; one unknown subscription id POSTed 20 times",
		"nothing stored; each counted once under its reason; a repeated unknown id costs one database read")
	store := db.NewStore(dbtest.New(t))
	sub, cs := seed(t, store)
	cstore := &countingStore{Store: store}
	f := &fixture{store: store, reg: prometheus.NewRegistry()}
	h := webhooks.New(cstore, f.reg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.srv = httptest.NewServer(h.Notifications())
	t.Cleanup(f.srv.Close)

	genuine := `{"value":[{"subscriptionId":"` + sub + `","clientState":"` + cs + `","changeType":"updated","resource":"Users/x/Events/1","tenantId":"` + tenant + `"}]}`
	for _, c := range []struct {
		name, ctype, body string
		status            int
		result            string
	}{
		{"another tenant", "application/json", strings.Replace(genuine, tenant, "0badc0de-0000-4000-8000-000000000000", 1), 202, "tenant_mismatch"},
		{"wrong content type", "text/plain", genuine, 415, "malformed"},
		{"form content type", "application/x-www-form-urlencoded", genuine, 415, "malformed"},
		{"other charset", "application/json; charset=iso-8859-1", genuine, 415, "malformed"},
		{"not UTF-8", "application/json", "{\"value\":[{\"subscriptionId\":\"\xff\xfe\"}]}", 400, "malformed"},
		{"deeply nested", "application/json", `{"value":[` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `]}`, 400, "malformed"},
		{"nested in a field", "application/json", `{"value":[{"subscriptionId":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat("}", 5000) + `}]}`, 400, "malformed"},
	} {
		before := counter(t, f.reg, c.result)
		if s, _ := post(t, f.srv.URL, c.ctype, c.body); s != c.status {
			t.Errorf("%s: status %d, want %d", c.name, s, c.status)
		}
		if got := counter(t, f.reg, c.result) - before; got != 1 {
			t.Errorf("%s: %s counted %v times, want 1", c.name, c.result, got)
		}
	}
	if n, _ := store.PendingInbox(context.Background()); n != 0 {
		t.Fatalf("%d forged notifications stored", n)
	}
	// The genuine one, with the tenant in either case, is accepted.
	if s, _ := post(t, f.srv.URL, "application/json; charset=utf-8", strings.Replace(genuine, tenant, strings.ToUpper(tenant), 1)); s != 202 {
		t.Fatalf("genuine: %d", s)
	}
	if n, _ := store.PendingInbox(context.Background()); n != 1 {
		t.Fatalf("%d stored, want the genuine one", n)
	}

	// An unknown id repeated costs one database read, not one per POST.
	forged := `{"value":[{"subscriptionId":"4b1d0000-0000-4000-8000-000000000001","clientState":"x","changeType":"updated","resource":"r","tenantId":"` + tenant + `"}]}`
	reads := cstore.reads.Load()
	for i := 0; i < 20; i++ {
		if s, _ := post(t, f.srv.URL, "application/json", forged); s != 202 {
			t.Fatalf("forged: %d", s)
		}
	}
	if got := cstore.reads.Load() - reads; got != 1 {
		t.Fatalf("20 POSTs of one unknown id read the database %d times", got)
	}
	if got := counter(t, f.reg, "unknown_subscription"); got != 20 {
		t.Fatalf("unknown_subscription counted %v, want 20", got)
	}
}

// TestVersionsAndHostileValues: the event and changeKey a notification
// names are kept only when plausible, and values Postgres would refuse
// (NUL) never fail the commit that other requests' notifications share.
func TestVersionsAndHostileValues(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "3. values Postgres refuses", "from a genuine subscription: NUL in resource, in changeType, in resourceData id and in @odata.etag; a 300-byte etag; an etag without W/; an etag of W/\" alone; NUL in a lifecycleEvent and a 10,000-byte one",
		"all stored and answered 202 (NUL removed, implausible versions dropped, odd lifecycle events stored as unknown): one bad value never fails the group commit other requests share")
	store := db.NewStore(dbtest.New(t))
	f := setup(t, store)
	sub, cs := seed(t, store)
	note := func(changeType, resource, id, etag string) string {
		b, _ := json.Marshal(map[string]any{"subscriptionId": sub, "clientState": cs, "changeType": changeType, "resource": resource,
			"resourceData": map[string]any{"id": id, "@odata.etag": etag}})
		return string(b)
	}
	body := `{"value":[` + strings.Join([]string{
		note("updated", "Users/x/Events/AAMk1", "AAMk1", `W/"DwAAABYAAAA1"`),
		note("created", "Users/x/Events/AAMk2", "AAMk2", `"no-weak-prefix"`),
		note("updated", "Users/x/Events/AAMk3", "AAMk3", `W/"`+strings.Repeat("A", 300)+`"`),
		note("updated", "Users/x/Events/AAMk4", "AAMk\u00004", `W/"DwAAABYAAAA4"`),
		note("updated", "Users/x/Events/AAMk5", "AAMk5", `W/"Dw\u0000AA"`),
		note("deleted", "Users/x/Events/AAMk6", "AAMk6", `W/"DwAAABYAAAA6"`),
		note("updated", "Users/x/Events/\u0000AAMk7", "", ""),
		note("up\u0000dated", "Users/x/Events/AAMk8", "AAMk8", `W/"DwAAABYAAAA8"`),
		note("updated", "Users/x/Events/AAMk9", "AAMk9", `W/"`), // one quote for both: it panicked the handler
	}, ",") + `]}`
	if s, _ := post(t, f.srv.URL+"/n", "application/json", body); s != 202 {
		t.Fatalf("status %d", s)
	}
	var rows []db.InboxItem
	if err := store.DB().NewSelect().Model(&rows).Order("id").Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 9 {
		t.Fatalf("%d stored, want all 9", len(rows))
	}
	want := map[int][2]string{0: {"AAMk1", "DwAAABYAAAA1"}}
	for i, r := range rows {
		if got := [2]string{r.EventID, r.ChangeKey}; got != want[i] {
			t.Errorf("notification %d stored version %q, want %q", i, got, want[i])
		}
		if strings.ContainsRune(*r.Resource, 0) || strings.ContainsRune(*r.ChangeType, 0) {
			t.Errorf("notification %d stored a NUL: %q %q", i, *r.Resource, *r.ChangeType)
		}
	}
	// Lifecycle events: a NUL, or a name no event has, in place of Graph's short names.
	life := func(event string) string {
		b, _ := json.Marshal(map[string]any{"subscriptionId": sub, "clientState": cs, "lifecycleEvent": event})
		return string(b)
	}
	body = `{"value":[` + life("missed") + "," + life("mis\u0000sed") + "," + life(strings.Repeat("x", 10_000)) + `]}`
	if s, _ := post(t, f.srv.URL+"/l", "application/json", body); s != 202 {
		t.Fatalf("lifecycle status %d", s)
	}
	var events []string
	if err := store.DB().NewRaw("SELECT lifecycle_event FROM inbox WHERE kind = 'lifecycle' ORDER BY id").Scan(context.Background(), &events); err != nil {
		t.Fatal(err)
	}
	if strings.Join(events, ",") != "missed,unknown,unknown" {
		t.Fatalf("lifecycle events stored as %q, want missed and two unknown", events)
	}
}

// gatedStore is the real store whose subscription reads wait for open.
type gatedStore struct {
	*db.Store
	reads atomic.Int64
	open  chan struct{}
}

func (g *gatedStore) SubscriptionStates(ctx context.Context, ids []string) (map[string]db.SubscriptionState, error) {
	g.reads.Add(1)
	<-g.open
	return g.Store.SubscriptionStates(ctx, ids)
}

// postAll POSTs each body to url at once, each from its own goroutine, and
// returns the channel their statuses arrive on (0: no answer).
func postAll(url string, bodies []string) <-chan int {
	statuses := make(chan int, len(bodies))
	for _, body := range bodies {
		go func() {
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	return statuses
}

// TestConcurrentMissesShareOneRead: a burst of notifications for a
// subscription not in the cache (Graph's backlog after a restart) makes
// one read of its state, not one per request; every one is accepted.
func TestConcurrentMissesShareOneRead(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	sub, cs := seed(t, store)
	g := &gatedStore{Store: store, open: make(chan struct{})}
	h := webhooks.New(g, prometheus.NewRegistry(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h.Notifications())
	t.Cleanup(srv.Close)
	body := `{"value":[{"subscriptionId":"` + sub + `","clientState":"` + cs + `","changeType":"updated","resource":"Users/x/Events/1"}]}`
	const n = 20
	statuses := postAll(srv.URL, slices.Repeat([]string{body}, n))
	// Hold the first read while the others arrive: without sharing, they
	// would start reads of their own (up to the four lookup slots).
	deadline := time.Now().Add(5 * time.Second)
	for g.reads.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end) && g.reads.Load() == 1; {
		time.Sleep(5 * time.Millisecond)
	}
	close(g.open)
	for range n {
		if s := <-statuses; s != 202 {
			t.Fatalf("status %d, want 202", s)
		}
	}
	if r := g.reads.Load(); r != 1 {
		t.Fatalf("%d reads of one subscription's state for %d concurrent notifications, want 1", r, n)
	}
	if got, _ := store.PendingInbox(context.Background()); got != n {
		t.Fatalf("%d stored, want %d", got, n)
	}
}

// TestMissesOfManySubscriptionsShareReads: notifications for many
// subscriptions none of which is cached (every subscription after a start)
// are read a few statements at a time, not one statement per subscription
// behind the four lookup slots; every one is accepted.
func TestMissesOfManySubscriptionsShareReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := db.NewStore(dbtest.New(t))
	first, cs := seed(t, store)
	var linkID int64
	if err := store.DB().NewRaw("SELECT link_id FROM graph_subscriptions WHERE id = ?", first).Scan(ctx, &linkID); err != nil {
		t.Fatal(err)
	}
	const n = 40
	ids := []string{first}
	for i := 1; i < n; i++ {
		s := &db.GraphSubscription{ID: fmt.Sprintf("sub-many-%02d", i), LinkID: linkID, CompanyID: "acme", Resource: "/users/x/events",
			ExpiresAt: time.Now().Add(time.Hour), RenewAt: time.Now().Add(time.Hour), ClientState: cs, Status: db.SubActive}
		if err := store.InsertSubscription(ctx, s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	g := &gatedStore{Store: store, open: make(chan struct{})}
	h := webhooks.New(g, prometheus.NewRegistry(), nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h.Notifications())
	t.Cleanup(srv.Close)
	var bodies []string
	for _, id := range ids {
		bodies = append(bodies, `{"value":[{"subscriptionId":"`+id+`","clientState":"`+cs+`","changeType":"updated","resource":"Users/x/Events/1"}]}`)
	}
	statuses := postAll(srv.URL, bodies)
	// Hold the reads (four at most, one per slot) while the rest arrive
	// and queue their ids; then let them all go.
	deadline := time.Now().Add(5 * time.Second)
	for g.reads.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	close(g.open)
	for range n {
		if s := <-statuses; s != 202 {
			t.Fatalf("status %d, want 202", s)
		}
	}
	if r := g.reads.Load(); r > 8 {
		t.Fatalf("%d reads of subscription states for %d subscriptions missed at once, want at most 8", r, n)
	}
	if got, _ := store.PendingInbox(ctx); got != n {
		t.Fatalf("%d stored, want %d", got, n)
	}
}
