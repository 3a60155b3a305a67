package changes

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/service"
)

// DefaultResyncInterval is how long a link may go without a delta round
// when no notification brings one (CALSYNC_RESYNC_INTERVAL).
const DefaultResyncInterval = 30 * time.Minute

// Poller is the safety net under change notifications, which Graph does
// not promise to deliver (they get lost or arrive a day late, and "missed"
// comes only when Graph knows it failed): every linked calendar gets a
// delta round at least every interval. Rounds are due per link
// (next_poll_at, pushed an interval ahead by every round, so a link that
// synced recently anyway is skipped), spread evenly over the interval,
// claimed with SKIP LOCKED so replicas share them, and run through the
// same Graph sessions — and per-mailbox limits — as every other call.
// Links without a subscription (POLLING) live on these rounds.
type Poller struct {
	store       *db.Store
	syncer      *Syncer
	log         *slog.Logger
	interval    time.Duration
	lease       time.Duration
	batch       int
	concurrency int
	run         service.Runner
}

// NewPoller builds a poller giving every link a round at least every
// interval.
func NewPoller(store *db.Store, syncer *Syncer, interval time.Duration, log *slog.Logger) *Poller {
	if interval <= 0 {
		interval = DefaultResyncInterval
	}
	// The claim moves a link's next poll a whole interval ahead: a round
	// that fails (a mailbox gone, Graph down) is tried again then, not
	// every few minutes; one that succeeds moves it from its own end.
	return &Poller{store: store, syncer: syncer, log: log, interval: interval, lease: interval, batch: 100, concurrency: 4}
}

// tick is how often the poller looks for due links: often enough that a
// round is never much later than due, spreading the interval's rounds.
func (p *Poller) tick() time.Duration { return min(max(p.interval/120, time.Second), 30*time.Second) }

// Start runs the loop until Stop: a run at once, then one every tick,
// each bounded by the lease the claim takes.
func (p *Poller) Start(ctx context.Context) error {
	return p.run.Start(ctx, service.Loop{Every: p.tick(), Timeout: p.lease, Do: func(ctx context.Context) { p.RunOnce(ctx, time.Now()) }}.Run)
}

// Stop ends the loop, letting the rounds in progress finish.
func (p *Poller) Stop() { p.run.Stop() }

// RunOnce runs the rounds due at now and returns how many it ran.
func (p *Poller) RunOnce(ctx context.Context, now time.Time) int {
	if err := p.store.SpreadPolls(ctx, now, p.interval); err != nil {
		p.log.WarnContext(ctx, "scheduling resync rounds failed", slog.String("error", err.Error()))
		return 0
	}
	ran := 0
	seen := map[int64]bool{} // each link once per call, whatever the clocks say
	for ctx.Err() == nil {
		due, err := p.store.ClaimDuePolls(ctx, now, p.lease, p.batch)
		if err != nil {
			if ctx.Err() == nil {
				p.log.WarnContext(ctx, "claiming resync rounds failed", slog.String("error", err.Error()))
			}
			return ran
		}
		fresh := due[:0]
		for _, l := range due {
			if !seen[l.ID] {
				seen[l.ID] = true
				fresh = append(fresh, l)
			}
		}
		if len(fresh) == 0 {
			return ran
		}
		sem := make(chan struct{}, p.concurrency)
		var wg sync.WaitGroup
		for _, l := range fresh {
			sem <- struct{}{}
			wg.Add(1)
			go func(id int64) {
				defer func() { <-sem; wg.Done() }()
				rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				if _, err := p.syncer.Sync(rctx, id, false); err != nil {
					// Its next poll stays an interval ahead: tried again then.
					p.log.WarnContext(ctx, "resync round failed", slog.Int64("link", id), slog.String("error", err.Error()))
				}
			}(l.ID)
		}
		wg.Wait()
		ran += len(fresh)
	}
	return ran
}
