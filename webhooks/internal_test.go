package webhooks

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
)

// blockingStore holds every subscription read until released, as a flood
// of unknown ids would keep the lookup slots taken.
type blockingStore struct {
	states  map[string]db.SubscriptionState
	release chan struct{}
	stored  chan []db.InboxItem
}

func (b *blockingStore) SubscriptionStates(ctx context.Context, ids []string) (map[string]db.SubscriptionState, error) {
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := map[string]db.SubscriptionState{}
	for _, id := range ids {
		if s, ok := b.states[id]; ok {
			out[id] = s
		}
	}
	return out, nil
}

func (b *blockingStore) Enqueue(_ context.Context, items []db.InboxItem) error {
	b.stored <- items
	return nil
}

func TestBusyLookupsFallBackToRecentlyKnownStates(t *testing.T) {
	store := &blockingStore{states: map[string]db.SubscriptionState{"sub-1": {ID: "sub-1", LinkID: 7, ClientState: "cs"}},
		release: make(chan struct{}), stored: make(chan []db.InboxItem, 10)}
	h := New(store, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer h.Close()
	// sub-1 was known, but its cache entry has run out.
	h.cache.put([]string{"sub-1"}, store.states, time.Now().Add(-time.Hour))
	// Every lookup slot is taken.
	for i := 0; i < concurrentLookups; i++ {
		h.lookups <- struct{}{}
	}
	post := func(body string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.Notifications().ServeHTTP(rec, req)
		return rec.Code
	}
	if code := post(`{"value":[{"subscriptionId":"sub-1","clientState":"cs","changeType":"updated","resource":"r"}]}`); code != http.StatusAccepted {
		t.Fatalf("recently known subscription while lookups are busy: %d", code)
	}
	if items := <-store.stored; len(items) != 1 || *items[0].LinkID != 7 {
		t.Fatalf("stored %+v", items)
	}
	// A wrong clientState is still refused, and an id never seen waits for
	// a slot and gets 503 so Graph retries.
	if code := post(`{"value":[{"subscriptionId":"sub-1","clientState":"forged","changeType":"updated","resource":"r"}]}`); code != http.StatusAccepted || len(store.stored) != 0 {
		t.Fatalf("forged clientState: %d, %d stored", code, len(store.stored))
	}
	if code := post(`{"value":[{"subscriptionId":"sub-new","clientState":"cs","changeType":"updated","resource":"r"}]}`); code != http.StatusServiceUnavailable {
		t.Fatalf("unknown id while lookups are busy: %d", code)
	}
}

func TestForgedIdsDoNotEvictKnownSubscriptions(t *testing.T) {
	var c stateCache
	now := time.Now()
	known := map[string]db.SubscriptionState{"sub-1": {ID: "sub-1", ClientState: "cs"}}
	c.put([]string{"sub-1"}, known, now)
	// More forged ids than the cache holds.
	for i := 0; i < cacheMax+10; i += 1000 {
		ids := make([]string, 1000)
		for j := range ids {
			ids[j] = fmt.Sprint("forged-", i+j)
		}
		c.put(ids, nil, now)
	}
	hit, _, miss := c.get([]string{"sub-1", "forged-5"}, now)
	if _, ok := hit["sub-1"]; !ok || len(miss) != 1 {
		t.Fatalf("after a flood of forged ids: hit %v miss %v", hit, miss)
	}
}
