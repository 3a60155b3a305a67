package changes_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/testenv"
	"github.com/tehaishokunin/calsync/subscriptions"
)

// service is the start/stop shape every background service has.
type service interface {
	Start(context.Context) error
	Stop()
}

// TestServicesStartAndStopCleanly: for each background service serve runs,
// Stop without Start is a no-op, a second Start while running is refused
// (it would leak the first run's loops), Stop twice is a no-op, and a
// stopped service starts again.
func TestServicesStartAndStopCleanly(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u-taro", e.Mailbox) // something for the renewer and the poller to look at
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(host.Close)
	codec := cursor.NewCodec([]byte("k"))
	for name, s := range map[string]service{
		"feed":         changes.NewFeed(e.Store, 50*time.Millisecond, codec, log),
		"worker":       changes.NewWorker(e.Store, e.Syncer, e.Subs, 50*time.Millisecond, log),
		"poller":       changes.NewPoller(e.Store, e.Syncer, time.Minute, log),
		"host webhook": changes.NewHostWebhook(e.Store, host.URL, []byte("secret"), codec, log),
		"renewer":      subscriptions.NewRenewer(e.Subs, 50*time.Millisecond, log),
		"checker":      credentials.NewChecker(e.Creds, 50*time.Millisecond, 24*time.Hour, log),
	} {
		t.Run(name, func(t *testing.T) {
			s.Stop() // never started
			ctx := context.Background()
			for round := 1; round <= 2; round++ {
				if err := s.Start(ctx); err != nil {
					t.Fatalf("start %d: %v", round, err)
				}
				if err := s.Start(ctx); err == nil {
					t.Fatalf("a second Start while running was accepted (round %d)", round)
				}
				time.Sleep(120 * time.Millisecond) // let a few poll ticks run
				stopped := make(chan struct{})
				go func() { s.Stop(); s.Stop(); close(stopped) }()
				select {
				case <-stopped:
				case <-time.After(20 * time.Second):
					t.Fatalf("Stop did not return (round %d)", round)
				}
			}
		})
	}
}

// TestStopDuringARoundFinishesIt stops the worker while a delta round is
// waiting on a slow Graph: Stop returns only once the round is done, and
// the notifications it claimed are settled, not left for the lease to
// hand to another replica minutes later.
func TestStopDuringARoundFinishesIt(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u-taro", e.Mailbox)
	ctx := context.Background()
	e.Control(t, "POST", "/_emulator/faults", graphemu.Fault{Kind: "slow", Mailbox: e.Mailbox, Method: "GET", MS: 1500, Count: 1}, nil)
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events", map[string]any{"subject": "立会い",
		"start": map[string]string{"dateTime": "2026-12-10T09:00:00", "timeZone": "Tokyo Standard Time"},
		"end":   map[string]string{"dateTime": "2026-12-10T10:00:00", "timeZone": "Tokyo Standard Time"}}, nil)
	waitUntil(t, "the notification stored", func() bool { n, _ := e.Store.PendingInbox(ctx); return n > 0 })

	if err := e.Worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var claimed []int64
	waitUntil(t, "the worker claiming it", func() bool {
		claimed = nil
		_ = e.Store.DB().NewRaw("SELECT id FROM inbox WHERE attempts > 0 AND processed_at IS NULL").Scan(ctx, &claimed)
		return len(claimed) > 0
	})
	e.Worker.Stop() // the round is waiting on the slow GET

	var open int
	if err := e.Store.DB().NewRaw("SELECT count(*) FROM inbox WHERE id IN (?) AND processed_at IS NULL", bun.In(claimed)).Scan(ctx, &open); err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Fatalf("%d of the %d notifications claimed before Stop are still unprocessed after it", open, len(claimed))
	}
	cs, _, err := e.Store.Changes(ctx, testenv.Company, 0, "u-taro", 10)
	if err != nil || len(cs) == 0 {
		t.Fatalf("the round in progress at Stop recorded no change (%v)", err)
	}
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
