package echoes

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

// clock is a hand-moved clock for the memory's expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newMemory(ttl time.Duration, max int) (*Memory, *clock) {
	c := &clock{t: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}
	m := New(ttl, max)
	m.now = c.now
	return m, c
}

// TestOnlyTheRememberedVersionIsAnEcho: a version is an echo for its own
// link, event and changeKey only, and only until its time is over.
func TestOnlyTheRememberedVersionIsAnEcho(t *testing.T) {
	m, c := newMemory(time.Minute, 100)
	ctx := context.Background()
	m.Remember(7, "AAMk-1", "ck-2")
	if !m.Echo(ctx, 7, "AAMk-1", "ck-2", 0) {
		t.Fatal("the remembered version is not an echo")
	}
	for _, v := range []struct {
		link   int64
		id, ck string
		what   string
	}{{8, "AAMk-1", "ck-2", "another link"}, {7, "AAMk-2", "ck-2", "another event"}, {7, "AAMk-1", "ck-3", "another version"},
		{7, "AAMk-1\x00ck", "2", "the same bytes split otherwise"}, {7, "", "", "no version"}} {
		if m.Echo(ctx, v.link, v.id, v.ck, 0) {
			t.Errorf("%s is taken for an echo", v.what)
		}
	}
	c.add(time.Minute)
	if m.Echo(ctx, 7, "AAMk-1", "ck-2", 0) || m.Len() != 1 {
		t.Fatalf("a version past its time is still an echo (%d remembered)", m.Len())
	}
	m.Remember(7, "AAMk-3", "ck-1") // forgets what is over
	if m.Len() != 1 {
		t.Fatalf("%d versions remembered, want 1", m.Len())
	}
}

// TestMemoryIsBounded: a push storm never grows the memory past its bound;
// the oldest versions go first, and a version remembered again keeps its
// new time.
func TestMemoryIsBounded(t *testing.T) {
	m, c := newMemory(time.Hour, 1000)
	ctx := context.Background()
	m.Remember(1, "first", "ck")
	for i := range 5000 {
		m.Remember(1, "ev-"+strconv.Itoa(i), "ck")
		if i == 10 {
			m.Remember(1, "first", "ck")
		}
	}
	if n := m.Len(); n != 1000 {
		t.Fatalf("%d versions remembered, bound 1000", n)
	}
	if m.Echo(ctx, 1, "ev-0", "ck", 0) || !m.Echo(ctx, 1, "ev-4999", "ck", 0) {
		t.Fatal("the bound did not forget the oldest first")
	}
	if len(m.order)-m.head > 2*1000+1024 {
		t.Fatalf("the queue holds %d entries for 1000 versions", len(m.order)-m.head)
	}
	// Re-remembered early, "first" is among the oldest again: gone too.
	if m.Echo(ctx, 1, "first", "ck", 0) {
		t.Fatal("a version beyond the bound is still known")
	}
	m.Remember(2, "again", "ck")
	c.add(30 * time.Minute)
	m.Remember(2, "again", "ck")
	c.add(40 * time.Minute) // past the first time, within the second
	m.Remember(3, "other", "ck")
	if !m.Echo(ctx, 2, "again", "ck", 0) {
		t.Fatal("forgetting a version's first time forgot its second")
	}
}

// TestEchoWaitsForTheWriteInFlight: Graph may deliver the echo before the
// push has its answer; the lookup waits for the link's writes in flight
// and then knows the version.
func TestEchoWaitsForTheWriteInFlight(t *testing.T) {
	m, _ := newMemory(time.Minute, 100)
	ctx := context.Background()
	w := m.Begin(5)
	other := m.Begin(6) // another link's write is not waited for
	defer other.End()
	waiting := make(chan struct{})
	m.waiting = func() { close(waiting) }
	got := make(chan bool)
	go func() { got <- m.Echo(ctx, 5, "ev", "ck-9", time.Hour) }()
	<-waiting
	m.waiting = nil
	// Echo returns only once the write has ended (the test would time
	// out otherwise): the version it recorded is then known.
	m.Remember(5, "ev", "ck-9")
	w.End()
	w.End() // twice is harmless
	if !<-got {
		t.Fatal("the echo of the write in flight was not recognised")
	}
	if m.Echo(ctx, 6, "x", "y", time.Millisecond) {
		t.Fatal("an unknown version was taken for an echo")
	}
}

// TestEchoOfAFailedWriteIsStored: a write that ends without recording (its
// save failed) leaves the version unknown, at once, and a write that never
// ends holds the lookup only as long as it may wait or its context lasts.
func TestEchoOfAFailedWriteIsStored(t *testing.T) {
	m, _ := newMemory(time.Minute, 100)
	w := m.Begin(5)
	waiting := make(chan struct{})
	m.waiting = func() { close(waiting) }
	got := make(chan bool)
	go func() { got <- m.Echo(context.Background(), 5, "ev", "ck", time.Hour) }()
	<-waiting
	m.waiting = nil
	w.End()
	if <-got {
		t.Fatal("a version nobody recorded was taken for an echo")
	}
	stuck := m.Begin(5)
	defer stuck.End()
	if m.Echo(context.Background(), 5, "ev", "ck", time.Millisecond) {
		t.Fatal("an unknown version behind a stuck write was taken for an echo")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m.Echo(ctx, 5, "ev", "ck", time.Hour) {
		t.Fatal("a cancelled lookup said echo")
	}
	if n := len(m.writes[5]); n != 1 {
		t.Fatalf("%d writes in flight on link 5, want 1", n)
	}
}

// TestNilMemoryKnowsNothing: calsync without the memory (a test core, a
// tool) stores every echo.
func TestNilMemoryKnowsNothing(t *testing.T) {
	var m *Memory
	w := m.Begin(1)
	m.Remember(1, "ev", "ck")
	w.End()
	if m.Echo(context.Background(), 1, "ev", "ck", time.Second) || m.Len() != 0 {
		t.Fatal("a nil memory knew a version")
	}
}
