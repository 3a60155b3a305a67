package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
)

// TestShutdownOrderUnderABurst stops calsync (as SIGTERM does: the run's
// context ends) while Graph's notifications pour in, and observes the
// order the shutdown promises: the HTTP server drained, then the
// background services stopped, then the database closed. Every
// notification answered 202 was stored; none was answered 500.
func TestShutdownOrderUnderABurst(t *testing.T) {
	t.Parallel()
	a, emu := startWithEmulator(t, nil)
	admin := token(t, "acme", "ua", "user_admin")
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", demoUsers[0].Mail); r.code() != "" {
		t.Fatal(r.Errors)
	}
	resp, err := emu.Client().Get(emu.URL + "/_emulator/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	var subs struct {
		Value []struct{ ID, ClientState string }
	}
	err = json.NewDecoder(resp.Body).Decode(&subs)
	resp.Body.Close()
	if err != nil || len(subs.Value) == 0 {
		t.Fatalf("subscriptions: %v %+v", err, subs)
	}
	sub := subs.Value[0]

	var sent, accepted, refused, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"value":[{"subscriptionId":%q,"clientState":%q,"changeType":"updated","resource":"Users/x/Events/burst-%d-%d"}]}`,
					sub.ID, sub.ClientState, w, i)
				sent.Add(1)
				resp, err := client.Post(a.base+"/webhooks/graph/notifications", "application/json", strings.NewReader(body))
				if err != nil {
					failed.Add(1) // the listener is gone: Graph would retry
					time.Sleep(5 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusAccepted:
					accepted.Add(1)
				case http.StatusServiceUnavailable:
					refused.Add(1)
				default:
					t.Errorf("a notification was answered %d", resp.StatusCode)
				}
			}
		}(w)
	}
	waitFor(t, "a burst under way", 15*time.Second, func() bool { return accepted.Load() >= 200 })
	a.stop(t) // the signal: serve returns once it has shut down
	close(stop)
	wg.Wait()

	logs := a.logs.String()
	last := -1
	for _, step := range []string{"shutting down", "shutdown: http drained", "shutdown: services stopped", "shutdown: database closed"} {
		i := strings.Index(logs, step)
		if i < 0 || i < last {
			t.Fatalf("shutdown step %q missing or out of order:\n%s", step, grepLines(logs, "shut"))
		}
		last = i
	}

	store := db.NewStore(db.Open(a.env["DATABASE_URL"], db.Options{MaxOpenConns: 1}))
	defer store.DB().Close()
	stored, err := store.DB().NewSelect().Table("inbox").Where("resource LIKE 'Users/x/Events/burst-%'").Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if int64(stored) < accepted.Load() || int64(stored) > sent.Load() {
		t.Fatalf("%d notifications stored, %d answered 202 (%d sent, %d refused with 503, %d not answered)",
			stored, accepted.Load(), sent.Load(), refused.Load(), failed.Load())
	}
	t.Logf("%d sent: %d accepted and stored (%d rows), %d refused with 503, %d not answered", sent.Load(), accepted.Load(), stored, refused.Load(), failed.Load())
}
