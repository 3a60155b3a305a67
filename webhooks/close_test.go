package webhooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
)

// countingStore stores nothing and counts what it was given.
type countingStore struct{ stored atomic.Int64 }

func (c *countingStore) SubscriptionStates(context.Context, []string) (map[string]db.SubscriptionState, error) {
	return nil, nil
}

func (c *countingStore) Enqueue(_ context.Context, items []db.InboxItem) error {
	time.Sleep(time.Millisecond) // a commit takes a while
	c.stored.Add(int64(len(items)))
	return nil
}

// TestCloseWhileHandlersEnqueue: handlers still enqueueing when the server
// is closed (Shutdown timed out) never panic on a closed channel; each gets
// stored (nil) or errClosed, every nil answer was really stored, Close
// returns, a second Close is harmless, and enqueue after Close refuses at once.
func TestCloseWhileHandlersEnqueue(t *testing.T) {
	t.Parallel()
	store := &countingStore{}
	h := New(store, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	start := make(chan struct{})
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for j := 0; j < 20; j++ {
				switch err := h.enqueue(context.Background(), []db.InboxItem{{}}); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, errClosed):
					refused.Add(1)
				default:
					t.Errorf("enqueue: %v", err)
				}
			}
		}()
	}
	close(start)
	time.Sleep(5 * time.Millisecond) // some enqueues in flight
	closed := make(chan struct{})
	go func() { h.Close(); h.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	if got := store.stored.Load(); got != ok.Load() {
		t.Fatalf("%d answered stored, %d stored", ok.Load(), got)
	}
	if ok.Load()+refused.Load() != 4000 {
		t.Fatalf("%d stored + %d refused of 4000", ok.Load(), refused.Load())
	}
	if err := h.enqueue(context.Background(), []db.InboxItem{{}}); !errors.Is(err, errClosed) {
		t.Fatalf("enqueue after Close: %v", err)
	}
}
