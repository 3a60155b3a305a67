package changes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

func appendChanges(t *testing.T, e *testenv.Env, n int) {
	t.Helper()
	for i := range n {
		c := &db.Change{CompanyID: testenv.Company, UserID: "u1", OutlookEventID: "ev" + string(rune('a'+i)), ChangeType: changes.Created, ChangedFields: []string{"subject"}}
		if err := e.Store.InsertChange(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
}

func lastCursor(t *testing.T, e *testenv.Env) int64 {
	t.Helper()
	var c int64
	if err := e.Store.DB().NewRaw("SELECT last_cursor FROM host_webhook_state WHERE id = 1").Scan(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// startAtFeedEnd makes the delivery state as a new deployment does (at
// the feed's current end) and lets its momentary lease lapse.
func startAtFeedEnd(t *testing.T, e *testenv.Env) {
	t.Helper()
	if _, _, err := e.Store.ClaimHostWebhook(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
}

// deliverer posts to url, signing with "secret".
func deliverer(e *testenv.Env, url string) *changes.HostWebhook {
	return changes.NewHostWebhook(e.Store, url, []byte("secret"), cursor.NewCodec([]byte("k")), e.Log)
}

// TestHostWebhookHoldsNoLockWhileTheHostIsSlow: while the host takes its
// time to answer, the delivery state row is not locked and no transaction
// is open for it — another replica's claim is refused by the lease, not
// blocked behind a lock — and the delivery is recorded when the host answers.
func TestHostWebhookHoldsNoLockWhileTheHostIsSlow(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	var during atomic.Value
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Another connection may lock the row at once (NOWAIT fails if
		// anyone holds it), and another replica's claim finds the lease.
		err := e.Store.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			_, err := tx.ExecContext(ctx, "SELECT 1 FROM host_webhook_state WHERE id = 1 FOR UPDATE NOWAIT")
			return err
		})
		st, _, cerr := e.Store.ClaimHostWebhook(ctx, time.Minute)
		if err == nil && cerr == nil && st == nil {
			during.Store("ok")
		} else {
			during.Store("locked or claimed twice")
		}
		time.Sleep(300 * time.Millisecond) // a slow host
		w.WriteHeader(http.StatusNoContent)
	}))
	defer host.Close()
	h := deliverer(e, host.URL)
	startAtFeedEnd(t, e)
	appendChanges(t, e, 2)
	if n := h.RunOnce(ctx); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
	if during.Load() != "ok" {
		t.Fatalf("during the POST: %v", during.Load())
	}
	var leased *time.Time
	if err := e.Store.DB().NewRaw("SELECT lease_until FROM host_webhook_state WHERE id = 1").Scan(ctx, &leased); err != nil || leased != nil {
		t.Fatalf("lease after the round: %v %v", leased, err)
	}
}

// TestHostWebhookLeaseOutlivesAReplica: a replica that took the lease and
// died stops delivery only until the lease runs out; another then delivers
// from the last recorded change, and the dead one's late record is refused.
func TestHostWebhookLeaseOutlivesAReplica(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	var got atomic.Int64
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer host.Close()
	startAtFeedEnd(t, e)
	appendChanges(t, e, 3)
	dead, token, err := e.Store.ClaimHostWebhook(ctx, 400*time.Millisecond) // and never records
	if err != nil || dead == nil {
		t.Fatalf("claim: %v %v", dead, err)
	}
	h := deliverer(e, host.URL)
	h.SetLeaseForTest(400 * time.Millisecond)
	if n := h.RunOnce(ctx); n != 0 || got.Load() != 0 {
		t.Fatalf("delivered %d (%d POSTs) under another replica's lease", n, got.Load())
	}
	time.Sleep(500 * time.Millisecond)
	if n := h.RunOnce(ctx); n != 3 || got.Load() != 3 {
		t.Fatalf("after the lease ran out: delivered %d (%d POSTs), want 3", n, got.Load())
	}
	before := lastCursor(t, e)
	if ok, err := e.Store.RecordHostWebhook(ctx, token, *dead, 0); ok || err != nil {
		t.Fatalf("the dead replica's late record: %v %v", ok, err)
	}
	if after := lastCursor(t, e); after != before {
		t.Fatalf("a stale record moved the cursor from %d to %d", before, after)
	}
}

// TestHostWebhookDeliversOtherEvents: events other than changes (a
// credentials.expiring warning) follow the feed's changes, signed, each
// with its own stable webhook-id, and are not sent again.
func TestHostWebhookDeliversOtherEvents(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		if r.Header.Get("webhook-signature") != "v1,"+changes.Sign([]byte("secret"), id, ts, body) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var p changes.Payload
		_ = json.Unmarshal(body, &p)
		mu.Lock()
		got = append(got, id+" "+p.Type+" "+fmt.Sprint(p.Data["threshold"]))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer host.Close()
	startAtFeedEnd(t, e)
	appendChanges(t, e, 1)
	ev := &db.HostEvent{Type: "credentials.expiring", CompanyID: testenv.Company, Data: json.RawMessage(`{"threshold": 14}`)}
	if ok, err := e.Store.WarnSecretExpiry(ctx, testenv.Company, time.Now().Add(10*24*time.Hour), []int{30, 14}, 14, ev); !ok || err != nil {
		t.Fatalf("queueing: %v %v", ok, err)
	}
	h := deliverer(e, host.URL)
	if n := h.RunOnce(ctx); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
	if n := h.RunOnce(ctx); n != 0 {
		t.Fatalf("delivered %d more on the next round", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !strings.HasSuffix(got[0], " calendar.changed <nil>") || got[1] != "evt_"+fmt.Sprint(ev.Seq)+" credentials.expiring 14" {
		t.Fatalf("host got %q", got)
	}
}
