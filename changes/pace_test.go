package changes

import (
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestLinkPace: a link is skipped while its round is in flight and for
// the rest after it, the dispatcher is woken when the rest is over, and
// then the link is claimable again; other links are never held back.
func TestLinkPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wakes atomic.Int64
		p := &linkPace{rest: 100 * time.Millisecond, wake: func() { wakes.Add(1) }}
		if s := p.skip(time.Now()); len(s) != 0 {
			t.Fatalf("skip %v before any round", s)
		}
		p.begin(7)
		time.Sleep(time.Hour) // however long the round takes
		if s := p.skip(time.Now()); !slices.Equal(s, []int64{7}) {
			t.Fatalf("skip %v while link 7's round is in flight", s)
		}
		p.end(7)
		p.begin(8)
		if s := p.skip(time.Now()); len(s) != 2 {
			t.Fatalf("skip %v: link 7 resting, link 8 in flight", s)
		}
		time.Sleep(99 * time.Millisecond)
		synctest.Wait()
		if s := p.skip(time.Now()); !slices.Contains(s, 7) || wakes.Load() != 0 {
			t.Fatalf("skip %v, %d wakes before link 7's rest is over", s, wakes.Load())
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if wakes.Load() != 1 {
			t.Fatalf("%d wakes when the rest ended, want 1", wakes.Load())
		}
		if s := p.skip(time.Now()); !slices.Equal(s, []int64{8}) {
			t.Fatalf("skip %v after link 7's rest, want only link 8 (in flight)", s)
		}
	})
}
