package changes

import (
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestLinkPace: a link is skipped while its round is in flight; it may
// start two rounds at once, then one per rest, and the dispatcher is woken
// when the next may start; other links are never held back, and an idle
// link is forgotten.
func TestLinkPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wakes atomic.Int64
		p := &linkPace{rest: 100 * time.Millisecond, burst: 2, wake: func() { wakes.Add(1) }}
		skips := func(want ...int64) {
			t.Helper()
			s := p.skip(time.Now())
			slices.Sort(s)
			if !slices.Equal(s, want) {
				t.Fatalf("skip %v, want %v", s, want)
			}
		}
		skips()
		holds := func(want bool, links ...int64) {
			t.Helper()
			if got := p.holds(links, time.Now()); got != want {
				t.Fatalf("holds(%v) = %v, want %v", links, got, want)
			}
		}
		holds(false, 7)
		p.begin(7)
		time.Sleep(10 * time.Millisecond)
		skips(7) // in flight
		holds(true, 7)
		holds(false, 7, 9) // a wake for 9 too must look
		p.end(7)
		holds(false, 7)
		skips() // an edit just after a round starts its own at once
		p.begin(7)
		p.begin(8)
		time.Sleep(10 * time.Millisecond)
		p.end(7)
		skips(7, 8) // 7: two rounds in 20 ms, the next at 100 ms; 8 in flight
		time.Sleep(79 * time.Millisecond)
		synctest.Wait()
		if wakes.Load() != 0 {
			t.Fatalf("%d wakes before link 7 may start again", wakes.Load())
		}
		skips(7, 8)
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if wakes.Load() != 1 {
			t.Fatalf("%d wakes when link 7 may start again, want 1", wakes.Load())
		}
		skips(8)
		// A flood: from now on one round per rest.
		p.begin(7)
		p.end(7)
		skips(7, 8)
		holds(true, 7, 8) // 7 resting, 8 in flight
		time.Sleep(99 * time.Millisecond)
		skips(7, 8)
		time.Sleep(time.Millisecond)
		skips(8)
		p.end(8)
		time.Sleep(time.Hour)
		synctest.Wait()
		skips()
		if len(p.links) != 0 {
			t.Errorf("%d idle links remembered", len(p.links))
		}
	})
}
