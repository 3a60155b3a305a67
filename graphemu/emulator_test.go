package graphemu_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/graphemu"
)

// The emulator's own tests speak raw HTTP, the way Microsoft documents the
// wire format; the outlook package's tests drive it through the real SDK.

type env struct {
	srv    *graphemu.Server
	client *http.Client
	user   graphemu.UserSpec
	token  string
}

func start(t *testing.T) *env {
	t.Helper()
	srv, err := graphemu.Start("", graphemu.Options{RetryBase: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &env{srv: srv, client: srv.Client()}
	var out struct {
		Users []graphemu.UserSpec `json:"users"`
	}
	e.do(t, "POST", "/_emulator/tenants", "", map[string]any{
		"tenantId": "tid-1", "domain": "fabrikam.onmicrosoft.com",
		"apps":  []any{map[string]any{"clientId": "app-1", "secret": "sec-1", "roles": []string{"Calendars.ReadWrite"}}},
		"users": []any{map[string]any{"mail": "ichiro@fabrikam.onmicrosoft.com", "displayName": "鈴木 一郎"}},
	}, 201, &out)
	e.user = out.Users[0]
	var tok map[string]any
	e.form(t, "/tid-1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"}, "client_secret": {"sec-1"}, "scope": {"https://graph.microsoft.com/.default"}}, 200, &tok)
	e.token = tok["access_token"].(string)
	return e
}

func (e *env) do(t *testing.T, method, path, token string, body any, want int, out any, headers ...string) http.Header {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.Header
}

func (e *env) form(t *testing.T, path string, v url.Values, want int, out any) {
	t.Helper()
	resp, err := e.client.PostForm(e.srv.URL+path, v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
}

func documented(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "documented", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// sameShape reports every documented field that got is missing or carries
// with another JSON type. A documented null accepts any type.
func sameShape(path string, doc, got any) []string {
	if doc == nil {
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %T", path, got)}
		}
		var probs []string
		for k, v := range d {
			gv, present := g[k]
			if !present {
				probs = append(probs, path+"."+k+": missing")
				continue
			}
			probs = append(probs, sameShape(path+"."+k, v, gv)...)
		}
		return probs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want array, got %T", path, got)}
		}
		if len(d) > 0 && len(g) > 0 {
			return sameShape(path+"[0]", d[0], g[0])
		}
		return nil
	default:
		if fmt.Sprintf("%T", doc) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: want %T, got %T", path, doc, got)}
		}
		return nil
	}
}

func checkShape(t *testing.T, fixture string, got any) {
	t.Helper()
	if probs := sameShape("$", documented(t, fixture), got); len(probs) > 0 {
		t.Errorf("%s: emulator output differs from the documented shape:\n  %s", fixture, strings.Join(probs, "\n  "))
	}
}

// hook is a notification endpoint.
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []map[string]any
	got    chan struct{}
}

func newHook(t *testing.T) *hook {
	h := &hook{got: make(chan struct{}, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, tok)
			return
		}
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		h.mu.Lock()
		h.bodies = append(h.bodies, b)
		h.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		h.got <- struct{}{}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case <-h.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bodies[len(h.bodies)-1]
}

func TestDocumentedShapes(t *testing.T) {
	t.Parallel()
	e := start(t)
	var tok, tokErr, graphErr map[string]any
	e.form(t, "/tid-1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"}, "client_secret": {"sec-1"}, "scope": {"https://graph.microsoft.com/.default"}}, 200, &tok)
	checkShape(t, "token.json", tok)
	e.form(t, "/tid-1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"}, "client_secret": {"wrong"}, "scope": {"https://graph.microsoft.com/.default"}}, 401, &tokErr)
	checkShape(t, "token-error.json", tokErr)
	e.do(t, "GET", "/v1.0/users/nobody@fabrikam.onmicrosoft.com/events", e.token, nil, 404, &graphErr)
	checkShape(t, "graph-error.json", graphErr)

	h := newHook(t)
	var sub map[string]any
	e.do(t, "POST", "/v1.0/subscriptions", e.token, map[string]any{
		"changeType": "created,updated,deleted", "notificationUrl": h.srv.URL + "/n", "lifecycleNotificationUrl": h.srv.URL + "/l",
		"resource": "/users/" + e.user.ID + "/events", "expirationDateTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"clientState": "cs-1",
	}, 201, &sub)
	checkShape(t, "subscription.json", sub)

	var ev map[string]any
	e.do(t, "POST", "/v1.0/users/"+e.user.ID+"/events", e.token, map[string]any{
		"subject": "打合せ", "body": map[string]any{"contentType": "text", "content": "資料持参"},
		"start":    map[string]any{"dateTime": "2026-12-01T10:00:00", "timeZone": "Tokyo Standard Time"},
		"end":      map[string]any{"dateTime": "2026-12-01T11:00:00", "timeZone": "Tokyo Standard Time"},
		"location": map[string]any{"displayName": "本社"},
	}, 201, &ev, "Prefer", `outlook.timezone="Tokyo Standard Time"`)
	checkShape(t, "event.json", ev)
	if ev["start"].(map[string]any)["dateTime"] != "2026-12-01T10:00:00.0000000" || ev["start"].(map[string]any)["timeZone"] != "Tokyo Standard Time" {
		t.Errorf("outlook.timezone not honoured: %v", ev["start"])
	}
	checkShape(t, "change-notification.json", h.next(t))

	e.do(t, "POST", "/_emulator/subscriptions/"+sub["id"].(string)+"/lifecycle", "", map[string]any{"lifecycleEvent": "reauthorizationRequired"}, 202, nil)
	checkShape(t, "lifecycle-notification.json", h.next(t))

	var page map[string]any
	e.do(t, "GET", "/v1.0/users/"+e.user.ID+"/calendarView/delta?startDateTime=2026-11-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z", e.token, nil, 200, &page)
	checkShape(t, "delta-last-page.json", page)
	e.do(t, "DELETE", "/v1.0/users/"+e.user.ID+"/events/"+ev["id"].(string), e.token, nil, 204, nil)
	link, _ := url.Parse(page["@odata.deltaLink"].(string))
	e.do(t, "GET", link.RequestURI(), e.token, nil, 200, &page)
	checkShape(t, "delta-removed.json", page["value"].([]any)[0])

	var batch map[string]any
	e.do(t, "POST", "/v1.0/$batch", e.token, map[string]any{"requests": []any{map[string]any{
		"id": "1", "method": "POST", "url": "/users/" + e.user.ID + "/events",
		"headers": map[string]string{"Content-Type": "application/json"},
		"body":    map[string]any{"subject": "b", "start": map[string]any{"dateTime": "2026-12-05T10:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2026-12-05T11:00:00", "timeZone": "UTC"}},
	}}}, 200, &batch)
	checkShape(t, "batch-response.json", batch)
}

func TestGraphRefusesBadTokens(t *testing.T) {
	t.Parallel()
	e := start(t)
	var out map[string]any
	e.do(t, "GET", "/v1.0/users/"+e.user.ID+"/events", "", nil, 401, &out)
	if out["error"].(map[string]any)["code"] != "InvalidAuthenticationToken" {
		t.Fatalf("%v", out)
	}
	e.do(t, "GET", "/v1.0/users/"+e.user.ID+"/events", e.token+"x", nil, 401, nil)
	other, err := graphemu.Start("", graphemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// A token signed by another emulator (another issuer key) is refused.
	if _, err := other.AddTenant(graphemu.TenantSpec{TenantID: "tid-1", Apps: []graphemu.AppSpec{{ClientID: "app-1", Secret: "sec-1", Roles: []string{"Calendars.ReadWrite"}}}}); err != nil {
		t.Fatal(err)
	}
	resp, err := other.Client().PostForm(other.URL+"/tid-1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"}, "client_secret": {"sec-1"}, "scope": {"https://graph.microsoft.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	e.do(t, "GET", "/v1.0/users/"+e.user.ID+"/events", tok["access_token"].(string), nil, 401, nil)
}

func TestSubscriptionLimitsAndExpiry(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	srv, err := graphemu.Start("", graphemu.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	users, _ := srv.AddTenant(graphemu.TenantSpec{TenantID: "t", Apps: []graphemu.AppSpec{{ClientID: "a", Secret: "s", Roles: []string{"Calendars.ReadWrite"}}},
		Users: []graphemu.UserSpec{{Mail: "x@t.example"}}})
	e := &env{srv: srv, client: srv.Client(), user: users[0]}
	var tok map[string]any
	e.form(t, "/t/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"a"}, "client_secret": {"s"}, "scope": {"https://graph.microsoft.com/.default"}}, 200, &tok)
	e.token = tok["access_token"].(string)
	h := newHook(t)
	create := func(want int) {
		e.do(t, "POST", "/v1.0/subscriptions", e.token, map[string]any{
			"changeType": "created", "notificationUrl": h.srv.URL, "resource": "users/" + e.user.ID + "/events",
			"expirationDateTime": clock().Add(time.Hour).UTC().Format(time.RFC3339), "clientState": "c",
		}, want, nil)
	}
	for i := 0; i < 1000; i++ {
		create(201)
	}
	create(403) // 1,000 per mailbox
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	var list map[string]any
	e.do(t, "GET", "/_emulator/subscriptions", "", nil, 200, &list)
	if n := len(list["value"].([]any)); n != 0 {
		t.Fatalf("%d subscriptions outlived their expiration", n)
	}
	create(401) // the token expired with the clock too
	e.form(t, "/t/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"a"}, "client_secret": {"s"}, "scope": {"https://graph.microsoft.com/.default"}}, 200, &tok)
	e.token = tok["access_token"].(string)
	create(201)
	// http to a non-loopback host is refused, as Graph requires https.
	e.do(t, "POST", "/v1.0/subscriptions", e.token, map[string]any{
		"changeType": "created", "notificationUrl": "http://calsync.example.jp/hook", "resource": "users/" + e.user.ID + "/events",
		"expirationDateTime": clock().Add(time.Hour).UTC().Format(time.RFC3339),
	}, 400, nil)
}

func TestBatchLimitAndConcurrency(t *testing.T) {
	t.Parallel()
	e := start(t)
	reqs := make([]any, 21)
	for i := range reqs {
		reqs[i] = map[string]any{"id": fmt.Sprint(i + 1), "method": "GET", "url": "/users/" + e.user.ID + "/events"}
	}
	e.do(t, "POST", "/v1.0/$batch", e.token, map[string]any{"requests": reqs}, 400, nil)

	// Each batch step is throttled on its own.
	e.do(t, "POST", "/_emulator/faults", "", map[string]any{"kind": "throttle", "mailbox": e.user.Mail, "count": 1, "retryAfterSeconds": 7}, 204, nil)
	var out struct {
		Responses []struct {
			ID      string            `json:"id"`
			Status  int               `json:"status"`
			Headers map[string]string `json:"headers"`
		} `json:"responses"`
	}
	e.do(t, "POST", "/v1.0/$batch", e.token, map[string]any{"requests": reqs[:3]}, 200, &out)
	// Steps run in any order: exactly one is throttled, whichever ran first.
	throttled, ok200 := 0, 0
	for _, r := range out.Responses {
		switch {
		case r.Status == 429 && r.Headers["Retry-After"] == "7":
			throttled++
		case r.Status == 200:
			ok200++
		}
	}
	if len(out.Responses) != 3 || throttled != 1 || ok200 != 2 {
		t.Fatalf("batch responses %+v", out.Responses)
	}

	// At most 4 concurrent requests per app and mailbox.
	var wg sync.WaitGroup
	statuses := make(chan int, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", e.srv.URL+"/v1.0/users/"+e.user.ID+"/calendarView/delta?startDateTime=2026-01-01T00:00:00Z&endDateTime=2027-01-01T00:00:00Z", nil)
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := e.client.Do(req)
			if err == nil {
				statuses <- resp.StatusCode
				if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
					t.Error("429 without Retry-After")
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		if s != 200 && s != 429 {
			t.Fatalf("status %d", s)
		}
		if s == 200 {
			ok++
		}
	}
	if ok == 0 {
		t.Fatal("no request got through")
	}
}

func TestFaultsOnNotifications(t *testing.T) {
	t.Parallel()
	e := start(t)
	h := newHook(t)
	e.do(t, "POST", "/v1.0/subscriptions", e.token, map[string]any{
		"changeType": "created,updated,deleted", "notificationUrl": h.srv.URL, "resource": "users/" + e.user.ID + "/events",
		"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "clientState": "c",
	}, 201, nil)
	mk := func(subject string) {
		e.do(t, "POST", "/_emulator/users/"+e.user.Mail+"/events", "", map[string]any{"subject": subject,
			"start": map[string]any{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}}, 201, nil)
	}
	e.do(t, "POST", "/_emulator/faults", "", map[string]any{"kind": "dropNotifications", "count": 1}, 204, nil)
	mk("dropped")
	mk("delivered")
	b := h.next(t)
	if n := len(b["value"].([]any)); n != 1 {
		t.Fatalf("%d notifications, want the one not dropped", n)
	}
	e.do(t, "POST", "/_emulator/faults", "", map[string]any{"kind": "delayNotifications", "ms": 300, "count": 1}, 204, nil)
	began := time.Now()
	mk("late")
	h.next(t)
	if time.Since(began) < 300*time.Millisecond {
		t.Fatal("delayed notification arrived early")
	}
	// dropResponse: the event is made but the answer is lost.
	e.do(t, "POST", "/_emulator/faults", "", map[string]any{"kind": "dropResponse", "count": 1}, 204, nil)
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1.0/users/"+e.user.ID+"/events", strings.NewReader(`{"subject":"lost","transactionId":"t-1","start":{"dateTime":"2026-12-09T10:00:00","timeZone":"UTC"},"end":{"dateTime":"2026-12-09T11:00:00","timeZone":"UTC"}}`))
	req.Header.Set("Authorization", "Bearer "+e.token)
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("answer not lost: %d", resp.StatusCode)
	}
	var list map[string]any
	e.do(t, "GET", "/_emulator/users/"+e.user.ID+"/events", "", nil, 200, &list)
	found := 0
	for _, v := range list["value"].([]any) {
		if v.(map[string]any)["subject"] == "lost" {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("the lost-answer create made %d events", found)
	}
}

func TestNotificationsQueueIntoOnePost(t *testing.T) {
	t.Parallel()
	e := start(t)
	var mu sync.Mutex
	var sizes []int
	first := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := r.URL.Query().Get("validationToken"); tok != "" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, tok)
			return
		}
		var b struct {
			Value []any `json:"value"`
		}
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		sizes = append(sizes, len(b.Value))
		n := len(sizes)
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release // hold the first POST while more changes queue up
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	e.do(t, "POST", "/v1.0/subscriptions", e.token, map[string]any{
		"changeType": "created", "notificationUrl": srv.URL, "resource": "users/" + e.user.ID + "/events",
		"expirationDateTime": time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "clientState": "c",
	}, 201, nil)
	mk := func() {
		e.do(t, "POST", "/_emulator/users/"+e.user.Mail+"/events", "", map[string]any{"subject": "x",
			"start": map[string]any{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}}, 201, nil)
	}
	began := time.Now()
	mk()
	<-first
	for i := 0; i < 5; i++ {
		mk()
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		total := 0
		for _, s := range sizes {
			total += s
		}
		got := append([]int(nil), sizes...)
		mu.Unlock()
		if total == 6 {
			if len(got) != 2 || got[1] != 5 {
				t.Fatalf("POST sizes %v, want [1 5]", got)
			}
			// The delivery log tells both POSTs apart: one at a time to
			// the URL, each naming the events it carried.
			var dels []graphemu.DeliveryRecord
			for wait := time.Now().Add(5 * time.Second); len(dels) < 2 && time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
				dels = e.srv.Deliveries(began)
			}
			if len(dels) != 2 {
				t.Fatalf("%d deliveries logged, want 2: %+v", len(dels), dels)
			}
			for i, d := range dels {
				if d.URL != srv.URL || d.Status != http.StatusAccepted || d.Count != got[i] || len(d.EventIDs) != got[i] || d.Answered.Before(d.Sent) {
					t.Errorf("delivery %d: %+v, want %d events answered 202", i, d, got[i])
				}
			}
			if dels[1].Sent.Before(dels[0].Answered) {
				t.Errorf("the second POST was sent at %v, before the first was answered at %v", dels[1].Sent, dels[0].Answered)
			}
			if later := e.srv.Deliveries(time.Now().Add(time.Hour)); len(later) != 0 {
				t.Errorf("%d deliveries after an hour from now", len(later))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("POST sizes %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMailboxFaults(t *testing.T) {
	t.Parallel()
	e := start(t)
	events := "/v1.0/users/" + e.user.ID + "/events"
	fault := func(f map[string]any) {
		f["mailbox"] = e.user.Mail
		e.do(t, "POST", "/_emulator/faults", "", f, 204, nil)
	}
	count := func() int {
		var out struct {
			Value []any `json:"value"`
		}
		e.do(t, "GET", "/_emulator/users/"+e.user.ID+"/events", "", nil, 200, &out)
		return len(out.Value)
	}
	ev := map[string]any{"subject": "s", "start": map[string]any{"dateTime": "2026-12-01T09:00:00", "timeZone": "UTC"},
		"end": map[string]any{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"}}

	fault(map[string]any{"kind": "serverError", "status": 503, "count": 1, "retryAfterSeconds": 2})
	var gerr struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if h := e.do(t, "GET", events, e.token, nil, 503, &gerr); h.Get("Retry-After") != "2" || gerr.Error.Code != "ServiceUnavailable" {
		t.Fatalf("503: Retry-After %q code %q", h.Get("Retry-After"), gerr.Error.Code)
	}
	e.do(t, "GET", events, e.token, nil, 200, nil) // consumed
	fault(map[string]any{"kind": "serverError", "count": 1})
	e.do(t, "POST", events, e.token, ev, 500, nil)
	if n := count(); n != 0 {
		t.Fatalf("a 500 made %d events", n)
	}
	e.do(t, "POST", "/_emulator/faults", "", map[string]any{"kind": "serverError", "mailbox": e.user.Mail, "status": 502}, 400, nil)

	// A cut connection: no answer, nothing made.
	fault(map[string]any{"kind": "dropConnection", "count": 1})
	b, _ := json.Marshal(ev)
	req, _ := http.NewRequest("POST", e.srv.URL+events, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := e.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped connection answered %d", resp.StatusCode)
	}
	if n := count(); n != 0 {
		t.Fatalf("a cut call made %d events", n)
	}

	// A slow answer past the caller's timeout still takes effect.
	fault(map[string]any{"kind": "slow", "count": 1, "ms": 400})
	impatient := *e.client
	impatient.Timeout = 100 * time.Millisecond
	req, _ = http.NewRequest("POST", e.srv.URL+events, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := impatient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("slow call answered within 100 ms")
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow call never took effect")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTimeZonesGraphAccepts: Windows names and exactly the IANA names of
// api-reference/v1.0/resources/datetimetimezone.md are taken; any other
// zone is 400 TimeZoneNotSupportedException, as Exchange answers.
func TestTimeZonesGraphAccepts(t *testing.T) {
	t.Parallel()
	e := start(t)
	create := func(zone string, want int) map[string]any {
		var out map[string]any
		e.do(t, "POST", "/v1.0/users/"+e.user.ID+"/events", e.token, map[string]any{"subject": zone,
			"start": map[string]any{"dateTime": "2027-03-28T01:30:00", "timeZone": zone},
			"end":   map[string]any{"dateTime": "2027-03-28T04:30:00", "timeZone": zone}}, want, &out)
		return out
	}
	// W. Europe: clocks go forward at 02:00 on 2027-03-28, so 01:30–04:30 is two hours.
	for _, zone := range []string{"W. Europe Standard Time", "w. europe standard time", "Europe/Berlin", "Europe/Kyiv", "Etc/GMT+12", "UTC"} {
		ev := create(zone, 201)
		if ev["originalStartTimeZone"] != zone {
			t.Errorf("%s stored as %v", zone, ev["originalStartTimeZone"])
		}
	}
	for _, zone := range []string{"Europe/Rome", "America/Vancouver", "Greenwich Mean Time", "Mars/Olympus_Mons", "Local"} {
		out := create(zone, 400)
		errObj, _ := out["error"].(map[string]any)
		if errObj["code"] != "TimeZoneNotSupportedException" || !strings.Contains(fmt.Sprint(errObj["message"]), "'"+zone+"'") {
			t.Errorf("%s: %v", zone, out)
		}
	}
}

// TestBatchDependsOnAndOrder: a step whose dependency failed is 424
// (concepts/json-batching.md); a dependency on a later or unknown step is
// refused; every step is answered, in any order.
func TestBatchDependsOnAndOrder(t *testing.T) {
	t.Parallel()
	e := start(t)
	base := "/users/" + e.user.ID + "/events"
	var out struct {
		Responses []struct {
			ID     string `json:"id"`
			Status int    `json:"status"`
		} `json:"responses"`
	}
	e.do(t, "POST", "/v1.0/$batch", e.token, map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": base + "/no-such-event"},
		map[string]any{"id": "2", "method": "GET", "url": base, "dependsOn": []string{"1"}},
		map[string]any{"id": "3", "method": "GET", "url": base},
		map[string]any{"id": "4", "method": "GET", "url": base, "dependsOn": []string{"3"}},
	}}, 200, &out)
	got := map[string]int{}
	for _, r := range out.Responses {
		got[r.ID] = r.Status
	}
	if got["1"] != 404 || got["2"] != 424 || got["3"] != 200 || got["4"] != 200 || len(got) != 4 {
		t.Errorf("statuses %v", got)
	}
	e.do(t, "POST", "/v1.0/$batch", e.token, map[string]any{"requests": []any{
		map[string]any{"id": "1", "method": "GET", "url": base, "dependsOn": []string{"2"}},
		map[string]any{"id": "2", "method": "GET", "url": base},
	}}, 400, nil)
}

// TestLifecycleOnGraphsOwnInitiative: Graph sends "missed" when it could
// not deliver change notifications, and "subscriptionRemoved" when the app
// loses its Calendars permission (concepts/change-notifications-lifecycle-events.md).
func TestLifecycleOnGraphsOwnInitiative(t *testing.T) {
	t.Parallel()
	e := start(t)
	h := newHook(t)
	var sub map[string]any
	e.do(t, "POST", "/v1.0/subscriptions", e.token, map[string]any{
		"changeType": "created,updated,deleted", "notificationUrl": h.srv.URL + "/n", "lifecycleNotificationUrl": h.srv.URL + "/l",
		"resource": "/users/" + e.user.ID + "/events", "expirationDateTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		"clientState": "cs-1",
	}, 201, &sub)
	e.do(t, "POST", "/_emulator/faults", "", map[string]any{"kind": "dropNotifications", "count": 1}, 204, nil)
	e.do(t, "POST", "/_emulator/users/"+e.user.Mail+"/events", "", map[string]any{"subject": "lost",
		"start": map[string]any{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
		"end":   map[string]any{"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}}, 201, nil)
	if b := h.next(t); b["value"] == nil || fmt.Sprint(b["value"].([]any)[0].(map[string]any)["lifecycleEvent"]) != "missed" {
		t.Fatalf("after a dropped notification: %v", b)
	}
	e.do(t, "PATCH", "/_emulator/tenants/tid-1/apps/app-1", "", map[string]any{"roles": []string{"User.Read.All"}}, 200, nil)
	b := h.next(t)
	first, _ := b["value"].([]any)
	if len(first) == 0 || first[0].(map[string]any)["lifecycleEvent"] != "subscriptionRemoved" || first[0].(map[string]any)["subscriptionId"] != sub["id"] {
		t.Fatalf("after losing Calendars.ReadWrite: %v", b)
	}
	var live struct{ Value []any }
	e.do(t, "GET", "/_emulator/subscriptions", "", nil, 200, &live)
	if len(live.Value) != 0 {
		t.Errorf("%d subscriptions left", len(live.Value))
	}
}

// TestUnrulyDelivery: with Options.Unruly, notifications come by several
// POSTs and some of them twice.
func TestUnrulyDelivery(t *testing.T) {
	t.Parallel()
	srv, err := graphemu.Start("", graphemu.Options{Unruly: true, RetryBase: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &env{srv: srv, client: srv.Client()}
	var out struct {
		Users []graphemu.UserSpec `json:"users"`
	}
	e.do(t, "POST", "/_emulator/tenants", "", map[string]any{"tenantId": "tid-1", "domain": "fabrikam.onmicrosoft.com",
		"apps":  []any{map[string]any{"clientId": "app-1", "secret": "sec-1", "roles": []string{"Calendars.ReadWrite"}}},
		"users": []any{map[string]any{"mail": "ichiro@fabrikam.onmicrosoft.com", "displayName": "鈴木 一郎"}}}, 201, &out)
	var tok map[string]any
	e.form(t, "/tid-1/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app-1"}, "client_secret": {"sec-1"}, "scope": {"https://graph.microsoft.com/.default"}}, 200, &tok)
	h := newHook(t)
	e.do(t, "POST", "/v1.0/subscriptions", tok["access_token"].(string), map[string]any{
		"changeType": "created", "notificationUrl": h.srv.URL + "/n", "resource": "/users/" + out.Users[0].ID + "/events",
		"expirationDateTime": time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339), "clientState": "cs-1"}, 201, nil)
	const events = 60
	for i := 0; i < events; i++ {
		e.do(t, "POST", "/_emulator/users/"+out.Users[0].Mail+"/events", "", map[string]any{"subject": fmt.Sprint(i),
			"start": map[string]any{"dateTime": "2026-12-01T10:00:00", "timeZone": "UTC"},
			"end":   map[string]any{"dateTime": "2026-12-01T11:00:00", "timeZone": "UTC"}}, 201, nil)
	}
	seen := map[string]int{}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		clear(seen)
		for _, b := range h.bodies {
			for _, v := range b["value"].([]any) {
				seen[fmt.Sprint(v.(map[string]any)["resource"])]++
			}
		}
		posts := len(h.bodies)
		h.mu.Unlock()
		total := 0
		for _, n := range seen {
			total += n
		}
		if len(seen) == events && total > events && posts > 1 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d of %d events notified, %v", len(seen), events, seen)
}
