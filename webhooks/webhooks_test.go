package webhooks_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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
}

func setup(t *testing.T, store *db.Store) *fixture {
	f := &fixture{store: store, reg: prometheus.NewRegistry()}
	h := webhooks.New(store, f.reg, func() { f.wakes++ }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	mux.Handle("/n", h.Notifications())
	mux.Handle("/l", h.Lifecycle())
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func seed(t *testing.T, store *db.Store) (subID, clientState string) {
	ctx := context.Background()
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
	store := db.NewStore(dbtest.New(t))
	f := setup(t, store)
	sub, cs := seed(t, store)
	body := `{"value":[
	  {"subscriptionId":"` + sub + `","clientState":"` + cs + `","changeType":"updated","resource":"Users/x/Events/1","tenantId":"t"},
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
