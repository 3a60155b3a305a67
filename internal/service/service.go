// Package service is the one lifecycle every background service of calsync
// shares (the credentials checker, the subscription renewer, the inbox
// worker and resync poller, the change feed, the host webhook and the
// notification committers): Start launches its goroutines, Stop cancels them
// and returns only once every one has returned, so nothing a service runs
// outlives its Stop (and touches a database that is about to be closed).
//
// The shape follows riverqueue/river's rivershared/startstop (a base that a
// service embeds) and internal/maintenance (a loop with an interval, a wake
// channel and a bound on each run).
package service

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrStarted is returned by Start on a service that is already running.
var ErrStarted = errors.New("service already started")

// Runner owns a service's goroutines. The zero value is ready; a service
// embeds one (or keeps one as a field) and starts its loops through it.
// Start and Stop may be called from any goroutine, in any order: Stop
// without Start does nothing, Start after Stop starts again.
type Runner struct {
	mu       sync.Mutex
	cancel   context.CancelFunc
	stopping <-chan struct{}
	done     chan struct{}
}

// Start runs each loop in its own goroutine with a context that Stop
// cancels. It fails with ErrStarted while an earlier Start is not stopped.
// A loop should return once its context ends.
func (r *Runner) Start(ctx context.Context, loops ...func(ctx context.Context)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(len(loops))
	for _, loop := range loops {
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	r.cancel, r.stopping, r.done = cancel, ctx.Done(), done
	return nil
}

// Stop cancels the loops and waits until all of them have returned, a run
// in progress included (a run that ignores its context is waited for).
func (r *Runner) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
}

// Done is closed once the loops of the current (or last) Start have all
// returned; nil before the first Start.
func (r *Runner) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done
}

// Stopping is closed once Stop of the current (or last) Start is called,
// or its parent context ends; nil before the first Start. Work handed to
// the loops after that may find nobody to take it.
func (r *Runner) Stopping() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// Running reports whether the service is started and not stopped.
func (r *Runner) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancel != nil
}

// Loop is a periodic job: Do runs at once (or after one interval with
// Delay), then every Every and whenever Wake fires, never two runs at once,
// until the context ends. Each run gets at most Timeout (0: no bound) so a
// hung call to Graph or Postgres cannot stall the service for good; a run
// logs its own failures and the loop goes on.
type Loop struct {
	Every   time.Duration
	Wake    <-chan struct{}
	Timeout time.Duration
	Delay   bool
	Do      func(ctx context.Context)
}

// Run is the loop itself, for Runner.Start.
func (l Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.Every)
	defer t.Stop()
	if !l.Delay {
		l.once(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-l.Wake: // nil: never
		}
		if ctx.Err() != nil {
			return
		}
		l.once(ctx)
	}
}

func (l Loop) once(ctx context.Context) {
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	l.Do(ctx)
}
