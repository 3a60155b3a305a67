package heapfloor

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		live, floor uint64
		want        int
	}{
		{8 * mib, 64 * mib, 700},   // goal 8 + 56 = 64 MiB
		{32 * mib, 64 * mib, 100},  // 2 × live reaches the floor: Go's own goal
		{100 * mib, 64 * mib, 100}, // a large heap is collected as without a floor
		{0, 64 * mib, 100},         // no cycle yet: nothing to go by
		{48 * mib, 64 * mib, 100},  // 33 % would collect sooner than Go would
	}
	for _, c := range cases {
		if got := Percent(c.live, c.floor); got != c.want {
			t.Errorf("Percent(%d MiB live, %d MiB floor) = %d, want %d", c.live/mib, c.floor/mib, got, c.want)
		}
	}
}

func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// waitGOGC runs collections until GOGC satisfies ok (the floor adjusts in
// a finalizer, after the cycle) or gives up.
func waitGOGC(ok func(uint64) bool) uint64 {
	for range 200 {
		if g := gogc(); ok(g) {
			return g
		}
		runtime.GC()
		runtime.Gosched()
	}
	return gogc()
}

// TestFloorFollowsCollections runs the floor against the real collector:
// a small live heap gets a GOGC that reaches the floor; a live heap of more
// than half the floor gets the base back after its next cycle, and a small
// one the raise again; Stop gives back the base for good.
func TestFloorFollowsCollections(t *testing.T) {
	const floor = 64 << 20
	f := Start(floor)
	defer f.Stop()
	if g := waitGOGC(func(g uint64) bool { return g > 100 }); g <= 100 {
		t.Fatalf("GOGC %d with a test binary's small heap under a 64 MiB floor", g)
	}
	live := make([]byte, 48<<20)
	for i := range live {
		live[i] = byte(i)
	}
	if g := waitGOGC(func(g uint64) bool { return g == 100 }); g != 100 {
		t.Fatalf("GOGC %d with 48 MiB live under a 64 MiB floor, want 100", g)
	}
	runtime.KeepAlive(live)
	if g := waitGOGC(func(g uint64) bool { return g > 100 }); g <= 100 {
		t.Fatalf("GOGC %d once the 48 MiB were garbage", g)
	}
	f.Stop()
	if g := gogc(); g != 100 {
		t.Errorf("GOGC %d after Stop, want 100", g)
	}
	runtime.GC()
	runtime.GC()
	if g := gogc(); g != 100 {
		t.Errorf("GOGC %d after Stop and more cycles: the finalizer kept adjusting", g)
	}
}
