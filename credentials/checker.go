package credentials

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Checker re-verifies every company's credentials about once a day, so an
// expired secret or withdrawn consent shows in calendarAuthSettings before
// users notice missing events, and on every run warns the host of secrets
// about to expire (WarnExpiring). Safe with several replicas: each run claims
// its companies with SKIP LOCKED.
type Checker struct {
	svc        *Service
	every      time.Duration // how often to look for due checks
	maxAge     time.Duration // how old a check may get
	batch      int
	log        *slog.Logger
	stop       context.CancelFunc
	done       chan struct{}
	startMu    sync.Mutex
	runTimeout time.Duration
}

// NewChecker builds a checker looking every `every` for credentials last
// checked more than maxAge ago.
func NewChecker(svc *Service, every, maxAge time.Duration, log *slog.Logger) *Checker {
	return &Checker{svc: svc, every: every, maxAge: maxAge, batch: 50, log: log, runTimeout: 2 * time.Minute}
}

// Start runs the loop until Stop or ctx ends.
func (c *Checker) Start(ctx context.Context) error {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	ctx, c.stop = context.WithCancel(ctx)
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(c.every)
		defer t.Stop()
		for {
			c.RunOnce(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Stop ends the loop and waits for it.
func (c *Checker) Stop() {
	c.startMu.Lock()
	defer c.startMu.Unlock()
	if c.stop == nil {
		return
	}
	c.stop()
	<-c.done
	c.stop = nil
}

// RunOnce checks every due company once and returns how many it checked.
func (c *Checker) RunOnce(ctx context.Context) int {
	ctx, cancel := context.WithTimeout(ctx, c.runTimeout)
	defer cancel()
	checked := 0
	// One cutoff per run: rows claimed now are stamped with start, which is
	// not before the cutoff, so a run never claims the same row twice.
	start := c.svc.now().UTC()
	if _, err := c.svc.WarnExpiring(ctx, start); err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "warning of expiring secrets failed", slog.String("error", err.Error()))
	}
	for ctx.Err() == nil {
		due, err := c.svc.store.ClaimCredentialChecks(ctx, start.Add(-c.maxAge), start, c.batch)
		if err != nil {
			c.log.WarnContext(ctx, "claiming credential checks failed", slog.String("error", err.Error()))
			return checked
		}
		if len(due) == 0 {
			return checked
		}
		for i := range due {
			if err := c.svc.check(ctx, &due[i]); err != nil {
				c.log.WarnContext(ctx, "credential check failed", slog.String("company", due[i].CompanyID), slog.String("error", err.Error()))
			}
			checked++
		}
	}
	return checked
}
