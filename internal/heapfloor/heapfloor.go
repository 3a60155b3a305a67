// Package heapfloor keeps the garbage collector from running more often
// than a heap of a minimum size would need it to.
//
// The collector starts a cycle when the heap reaches twice what survived
// the last one (GOGC=100). calsync's live heap is small (5–10 MB with 500
// linked users), so one 500-user calendarAvailability answer, a few MB of
// short-lived buffers, set off about one cycle per request: 60 cycles a
// second under load, each with its stop-the-world pauses and its mark work
// on the request's CPUs, and the scavenger handing the same pages back to
// the OS between them (bench/profiles.md). With a floor, the goal is
// max(floor, 2 × live): a small heap is collected when floor bytes have
// been allocated, and a large one exactly as without the floor. The price
// is resident memory: up to floor bytes of garbage between collections. This is the
// minimum-heap tuning of Go's GC guide (go.dev/doc/gc-guide), done with
// debug.SetGCPercent after every cycle instead of a ballast allocation.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Percent is the GOGC that makes the goal of a heap of live bytes at least
// floor bytes, and never less than base.
func Percent(live, floor uint64, base int) int {
	if live == 0 || floor <= live {
		return base
	}
	p := int((floor - live) * 100 / live)
	return max(p, base)
}

// Floor adjusts GOGC after each collection while it runs.
type Floor struct {
	floor   uint64
	base    int
	stopped atomic.Bool
	mu      sync.Mutex // serialises adjust and Stop
	samples []metrics.Sample
}

// Start keeps the heap goal at least floor bytes until Stop. base is the
// GOGC to use when the live heap is large enough (100, Go's default).
func Start(floor uint64, base int) *Floor {
	f := &Floor{floor: floor, base: base, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	f.adjust()
	f.arm()
	return f
}

// sentinel is garbage from birth: its finalizer runs once the cycle that
// found it unreachable is over, and arms the next one.
type sentinel struct{ f *Floor }

func (f *Floor) arm() {
	s := &sentinel{f: f}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.f.stopped.Load() {
			return
		}
		s.f.adjust()
		s.f.arm()
	})
}

func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Load() {
		return
	}
	metrics.Read(f.samples)
	if f.samples[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	debug.SetGCPercent(Percent(f.samples[0].Value.Uint64(), f.floor, f.base))
}

// Stop gives the collector back its base GOGC.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(f.base)
}
