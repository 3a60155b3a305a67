package service

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// counter is a Do that counts its runs.
type counter struct{ runs atomic.Int64 }

func (c *counter) do(context.Context) { c.runs.Add(1) }

func TestStopWithoutStartDoesNothing(t *testing.T) {
	var r Runner
	r.Stop()
	r.Stop()
	if r.Running() || r.Done() != nil {
		t.Fatalf("a runner never started reports running=%v done=%v", r.Running(), r.Done())
	}
}

func TestStartStopTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		var c counter
		loop := Loop{Every: time.Minute, Do: c.do}
		for round := 1; round <= 2; round++ {
			if err := r.Start(context.Background(), loop.Run); err != nil {
				t.Fatalf("start %d: %v", round, err)
			}
			synctest.Wait()
			before := c.runs.Load()
			time.Sleep(time.Minute) // fake time: one tick
			synctest.Wait()
			if got := c.runs.Load(); got != before+1 {
				t.Fatalf("start %d: %d runs after one interval, want %d", round, got, before+1)
			}
			r.Stop()
			if r.Running() {
				t.Fatalf("running after stop %d", round)
			}
			select {
			case <-r.Done():
			default:
				t.Fatalf("stop %d returned before the loop did", round)
			}
			after := c.runs.Load()
			time.Sleep(10 * time.Minute)
			synctest.Wait()
			if c.runs.Load() != after {
				t.Fatalf("the loop ran after stop %d", round)
			}
		}
		if got := c.runs.Load(); got != 4 { // at start and after one interval, twice
			t.Fatalf("runs = %d, want 4", got)
		}
	})
}

func TestStartWhileRunningFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		var c counter
		if err := r.Start(context.Background(), Loop{Every: time.Minute, Do: c.do}.Run); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(context.Background(), Loop{Every: time.Minute, Do: c.do}.Run); !errors.Is(err, ErrStarted) {
			t.Fatalf("second start: %v, want ErrStarted", err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := c.runs.Load(); got != 2 { // one loop: at start and one tick
			t.Fatalf("runs = %d, want 2 (the refused start must not have started a loop)", got)
		}
		r.Stop()
	})
}

func TestStopDuringARunCancelsItAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		var ended atomic.Bool
		in := make(chan struct{})
		err := r.Start(context.Background(), Loop{Every: time.Minute, Do: func(ctx context.Context) {
			close(in)
			<-ctx.Done()
			time.Sleep(time.Second) // cleaning up after the cancel
			ended.Store(true)
		}}.Run)
		if err != nil {
			t.Fatal(err)
		}
		<-in
		r.Stop()
		if !ended.Load() {
			t.Fatal("Stop returned while the run was still going")
		}
	})
}

func TestStopWaitsForARunThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		release := make(chan struct{})
		in := make(chan struct{})
		if err := r.Start(context.Background(), func(context.Context) { close(in); <-release }); err != nil {
			t.Fatal(err)
		}
		<-in
		var stopped atomic.Bool
		go func() { r.Stop(); stopped.Store(true) }()
		synctest.Wait()
		if stopped.Load() {
			t.Fatal("Stop returned before the loop did")
		}
		close(release)
		synctest.Wait()
		if !stopped.Load() {
			t.Fatal("Stop did not return once the loop did")
		}
	})
}

func TestEveryLoopOfAServiceIsWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		var ended atomic.Int64
		slow := func(ctx context.Context) {
			<-ctx.Done()
			time.Sleep(time.Duration(ended.Add(0)+1) * time.Second)
			ended.Add(1)
		}
		if err := r.Start(context.Background(), slow, slow, slow); err != nil {
			t.Fatal(err)
		}
		r.Stop()
		if got := ended.Load(); got != 3 {
			t.Fatalf("%d of 3 loops had returned when Stop did", got)
		}
	})
}

func TestLoopTimeoutBoundsEachRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		errs := make(chan error, 10)
		err := r.Start(context.Background(), Loop{Every: time.Minute, Timeout: 5 * time.Second, Do: func(ctx context.Context) {
			<-ctx.Done() // a run that would hang for good
			errs <- ctx.Err()
		}}.Run)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("run ended with %v, want its deadline", err)
			}
		default:
			t.Fatal("a hung run was not cut off by its timeout")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(errs) != 1 {
			t.Fatalf("%d runs ended in the next interval, want 1 (the loop goes on after a timed-out run)", len(errs))
		}
		r.Stop()
	})
}

func TestLoopWakeRunsAtOnceAndDelayWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		var c counter
		wake := make(chan struct{}, 1)
		if err := r.Start(context.Background(), Loop{Every: time.Hour, Wake: wake, Delay: true, Do: c.do}.Run); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := c.runs.Load(); got != 0 {
			t.Fatalf("a delayed loop ran %d times at start", got)
		}
		wake <- struct{}{}
		synctest.Wait()
		if got := c.runs.Load(); got != 1 {
			t.Fatalf("runs after a wake = %d, want 1", got)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := c.runs.Load(); got != 2 {
			t.Fatalf("runs after an interval = %d, want 2", got)
		}
		r.Stop()
	})
}

func TestStartedWithACancelledContextStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Runner
		ctx, cancel := context.WithCancel(context.Background())
		var c counter
		if err := r.Start(ctx, Loop{Every: time.Minute, Do: c.do}.Run); err != nil {
			t.Fatal(err)
		}
		cancel()
		synctest.Wait()
		select {
		case <-r.Done():
		default:
			t.Fatal("the loop did not end with its parent context")
		}
		r.Stop() // still fine afterwards
	})
}
