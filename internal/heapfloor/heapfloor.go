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
// is resident memory: up to floor bytes of garbage between collections.
// This is the minimum-heap tuning of Go's GC guide (go.dev/doc/gc-guide),
// done with debug.SetGCPercent after every cycle instead of a ballast
// allocation. calsync starts it only when GOGC and GOMEMLIMIT are unset, so
// the percent it gives back is Go's default.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// base is Go's default GOGC: what a live heap of more than half the floor
// gets, and what Stop gives back.
const base = 100

// Percent is the GOGC that makes the goal of a heap of live bytes at least
// floor bytes, and never less than Go's default.
func Percent(live, floor uint64) int {
	if live == 0 || floor <= live {
		return base
	}
	p := int((floor - live) * 100 / live)
	return max(p, base)
}

// Floor adjusts GOGC after each collection while it runs.
type Floor struct {
	floor   uint64
	mu      sync.Mutex // serialises adjust and Stop
	stopped bool
	samples []metrics.Sample
}

// Start keeps the heap goal at least floor bytes until Stop.
func Start(floor uint64) *Floor {
	f := &Floor{floor: floor, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	if f.adjust() {
		f.arm()
	}
	return f
}

// sentinel is garbage from birth: its finalizer runs once the cycle that
// found it unreachable is over, and arms the next one.
type sentinel struct{ f *Floor }

func (f *Floor) arm() {
	runtime.SetFinalizer(&sentinel{f: f}, func(s *sentinel) {
		if s.f.adjust() {
			s.f.arm()
		}
	})
}

// adjust sets GOGC from the live heap; it says false once stopped.
func (f *Floor) adjust() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	metrics.Read(f.samples)
	if f.samples[0].Value.Kind() == metrics.KindUint64 {
		debug.SetGCPercent(Percent(f.samples[0].Value.Uint64(), f.floor))
	}
	return true
}

// Stop gives the collector back Go's default GOGC.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.stopped {
		f.stopped = true
		debug.SetGCPercent(base)
	}
}
