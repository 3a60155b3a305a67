package credentials

import (
	"context"
	"log/slog"
	"time"

	"github.com/tehaishokunin/calsync/internal/service"
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
	runTimeout time.Duration
	run        service.Runner
}

// NewChecker builds a checker looking every `every` for credentials last
// checked more than maxAge ago.
func NewChecker(svc *Service, every, maxAge time.Duration, log *slog.Logger) *Checker {
	return &Checker{svc: svc, every: every, maxAge: maxAge, batch: 50, log: log, runTimeout: 2 * time.Minute}
}

// Start runs the loop until Stop: a run at once, then every `every`, each
// bounded by runTimeout.
func (c *Checker) Start(ctx context.Context) error {
	return c.run.Start(ctx, service.Loop{Every: c.every, Timeout: c.runTimeout, Do: func(ctx context.Context) { c.RunOnce(ctx) }}.Run)
}

// Stop ends the loop and waits for it.
func (c *Checker) Stop() { c.run.Stop() }

// RunOnce checks every due company once and returns how many it checked.
func (c *Checker) RunOnce(ctx context.Context) int {
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
