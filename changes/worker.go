package changes

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/service"
	"github.com/tehaishokunin/calsync/internal/tracing"
)

// Lifecycle acts on lifecycle notifications.
type Lifecycle interface {
	HandleLifecycle(ctx context.Context, subscriptionID, event string) error
}

// Worker processes the durable inbox: it claims accepted notifications
// (SKIP LOCKED), runs one delta round per link however many notifications
// that link got, hands lifecycle events to the subscription manager, and
// retries failures with backoff. Several replicas may run it.
type Worker struct {
	store       *db.Store
	syncer      *Syncer
	lifecycle   Lifecycle
	log         *slog.Logger
	poll        time.Duration
	lease       time.Duration
	batch       int
	concurrency int
	wake        chan struct{}
	retention   time.Duration
	// feedRetention is how long the change feed keeps changes (0: for ever).
	feedRetention time.Duration

	// processed counts rows finished since the last vacuum (see vacuum).
	processed atomic.Int64
	skipped   atomic.Int64
	heldWakes atomic.Int64
	// pace is the running dispatcher's (nil when none runs).
	pace atomic.Pointer[linkPace]
	// vacuuming is held while a vacuum runs (vacuum, vacuumAside).
	vacuuming  atomic.Bool
	lastVacuum moment
	// lastMirrorLook is when vacuum last asked whether the mirror is due.
	lastMirrorLook moment
	// vacuumHook, when set (tests), runs as a vacuum starts.
	vacuumHook func()

	run service.Runner
}

// NewWorker builds a worker polling every poll (and woken early by Wake).
func NewWorker(store *db.Store, syncer *Syncer, lifecycle Lifecycle, poll time.Duration, log *slog.Logger) *Worker {
	return &Worker{store: store, syncer: syncer, lifecycle: lifecycle, log: log, poll: poll,
		lease: 2 * time.Minute, batch: 500, concurrency: 8, wake: make(chan struct{}, 1), retention: DefaultInboxRetention}
}

// DefaultInboxRetention is how long processed notifications are kept.
const DefaultInboxRetention = 24 * time.Hour

// KeepProcessed sets how long processed notifications stay in the inbox
// before Prune deletes them (set it before Start).
func (w *Worker) KeepProcessed(d time.Duration) { w.retention = d }

// KeepChanges sets how long changes stay in the feed before Prune deletes
// them (set it before Start; 0 keeps them for ever).
func (w *Worker) KeepChanges(d time.Duration) { w.feedRetention = d }

// DefaultFeedRetention is how long the change feed keeps changes
// (CALSYNC_FEED_RETENTION).
const DefaultFeedRetention = 30 * 24 * time.Hour

// pruneEvery is how often the running worker prunes the inbox and the feed.
const pruneEvery = 10 * time.Minute

// Prune deletes the notifications processed longer ago than the retention
// and the changes older than the feed's retention, in batches, and returns
// how many rows went. Replicas may prune at once.
func (w *Worker) Prune(ctx context.Context) (int, error) {
	before := time.Now().Add(-w.retention)
	// Lapsed claims (folded lifecycle events, recreations) go with them.
	if _, err := w.store.PruneClaims(ctx, time.Now().Add(-time.Hour)); err != nil {
		return 0, err
	}
	total := 0
	for ctx.Err() == nil {
		n, err := w.store.PruneInbox(ctx, before, 5000)
		total += n
		if err != nil {
			return total, err
		}
		if n < 5000 {
			break
		}
	}
	if w.feedRetention <= 0 {
		return total, ctx.Err()
	}
	oldest := time.Now().Add(-w.feedRetention)
	for ctx.Err() == nil {
		n, err := w.store.PruneChanges(ctx, oldest, 5000)
		total += n
		if err != nil || n < 5000 {
			return total, err
		}
	}
	return total, ctx.Err()
}

// Wake asks the worker to look at the inbox now, for new notifications
// of links (none: look anyway). When the dispatcher holds every one of
// links back (a round in flight, or resting before the next), looking
// would find nothing to claim: the end of that round, or of the rest,
// wakes the dispatcher, and the claim then takes these notifications too.
// Under a flood on one mailbox this is most POSTs, and each empty claim
// would be a read of the link's pending rows.
func (w *Worker) Wake(links ...int64) {
	if p := w.pace.Load(); p != nil && len(links) > 0 && p.holds(links, time.Now()) {
		w.heldWakes.Add(1)
		return
	}
	w.signal()
}

func (w *Worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// HeldWakes counts wakes that needed no claim (Wake).
func (w *Worker) HeldWakes() int64 { return w.heldWakes.Load() }

// pruneTimeout bounds one prune; what is left goes next time.
const pruneTimeout = 5 * time.Minute

// Start runs the dispatcher and the pruner until Stop.
func (w *Worker) Start(ctx context.Context) error {
	prune := service.Loop{Every: pruneEvery, Delay: true, Timeout: pruneTimeout, Do: func(ctx context.Context) {
		if n, err := w.Prune(ctx); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "pruning the inbox failed", slog.String("error", err.Error()))
		} else if n > 0 {
			w.log.InfoContext(ctx, "pruned processed notifications", slog.Int("count", n))
		}
	}}
	return w.run.Start(ctx, prune.Run, func(ctx context.Context) {
		t := time.NewTicker(w.poll)
		defer t.Stop()
		w.dispatch(ctx, t.C)
	})
}

// dispatch claims work whenever one of the worker's slots is free, so a
// slow round holds only its own slot: a notification that arrives
// meanwhile starts at once instead of waiting for the slowest job of the
// batch before it (RunOnce, which tests and drains use, waits for its
// whole batch). It returns when ctx ends, after the jobs it claimed finish.
func (w *Worker) dispatch(ctx context.Context, tick <-chan time.Time) {
	slots := make(chan struct{}, w.concurrency)
	finished := make(chan struct{}, 1)
	pace := &linkPace{rest: roundRest, burst: roundBurst, wake: w.signal}
	w.pace.Store(pace)
	defer w.pace.Store(nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		claimed := 0
		if len(slots) < w.concurrency {
			var jobs []func(context.Context)
			jobs, claimed = w.claim(ctx, pace)
			for _, job := range jobs {
				w.spawn(ctx, slots, &wg, job, finished)
			}
		}
		if claimed > 0 {
			w.vacuumAside(ctx, &wg) // after a burst's worth of rows, however long the burst
			continue                // there may be more waiting
		}
		select {
		case <-ctx.Done():
		case <-tick:
		case <-w.wake:
		case <-finished:
		}
	}
}

// spawn runs a claimed job in its own goroutine once one of slots is free
// (claimed rows are always worked, even while the worker stops: they are
// settled, not left to the lease), with the lease's time; finished, when
// not nil, is signalled as it ends.
func (w *Worker) spawn(ctx context.Context, slots chan struct{}, wg *sync.WaitGroup, job func(context.Context), finished chan<- struct{}) {
	slots <- struct{}{}
	wg.Add(1)
	go func() {
		defer func() {
			<-slots
			wg.Done()
			if finished != nil {
				select {
				case finished <- struct{}{}:
				default:
				}
			}
		}()
		jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.lease-10*time.Second)
		defer cancel()
		job(jctx)
	}()
}

// Stop ends the loops, letting the rounds in progress finish.
func (w *Worker) Stop() { w.run.Stop() }

// RunOnce processes one claimed batch, waits for all of it, and returns
// its size.
func (w *Worker) RunOnce(ctx context.Context) int {
	jobs, n := w.claim(ctx, nil)
	slots := make(chan struct{}, w.concurrency)
	var wg sync.WaitGroup
	for _, job := range jobs {
		w.spawn(ctx, slots, &wg, job, nil)
	}
	wg.Wait()
	if n > 0 {
		w.vacuum(ctx)
	}
	return n
}

// roundRest and roundBurst pace a link's rounds (dispatch): a link may
// start roundBurst rounds at once, then one per roundRest. A flood on one
// mailbox then costs a round per roundRest (10 a second, under Outlook's
// 10,000 requests per 10 minutes per app and mailbox), not one per
// notification batch; an edit that follows another by a moment starts at
// once (it waited up to roundRest when every round was followed by a rest:
// with 50 edits a second over 1,000 mailboxes, about one in 200 edits).
const (
	roundRest  = 100 * time.Millisecond
	roundBurst = 2
)

// linkPace is what the dispatcher knows of links' rounds: whether one is
// in flight, and when the link may start the next (a token bucket of burst
// rounds refilled one per rest, kept as the generic cell rate algorithm's
// theoretical arrival time: exact in time.Time, no fractions). A link's
// notifications stay unclaimed while its round is in flight or it must
// wait (no lease written for rows that would only wait), and the next claim
// after that takes them all for one round. In one process; replicas claim
// on their own, as before.
type linkPace struct {
	rest  time.Duration
	burst int
	wake  func()
	mu    sync.Mutex
	links map[int64]*pacing
}

// pacing is one link's state.
type pacing struct {
	inFlight bool
	tat      time.Time // a round may start at tat - (burst-1)*rest
}

// next is when the link may start its next round.
func (p *linkPace) next(l *pacing) time.Time {
	return l.tat.Add(-time.Duration(p.burst-1) * p.rest)
}

// waiting says whether the link's notifications must wait now: its round
// is in flight, or its next may not start yet.
func (p *linkPace) waiting(l *pacing, now time.Time) bool {
	return l.inFlight || now.Before(p.next(l))
}

// skip lists the links whose notifications must wait now.
func (p *linkPace) skip(now time.Time) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int64
	for link, l := range p.links {
		switch {
		case p.waiting(l, now):
			out = append(out, link)
		case !now.Before(l.tat):
			delete(p.links, link) // idle, with its whole burst back: nothing to remember
		}
	}
	return out
}

// holds says whether every one of links must wait now: the end of its
// round or rest will wake the dispatcher.
func (p *linkPace) holds(links []int64, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, link := range links {
		l := p.links[link]
		if l == nil || !p.waiting(l, now) {
			return false
		}
	}
	return true
}

// begin records a round of link starting.
func (p *linkPace) begin(link int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.links == nil {
		p.links = map[int64]*pacing{}
	}
	l := p.links[link]
	if l == nil {
		l = &pacing{tat: now}
		p.links[link] = l
	}
	if l.tat.Before(now) {
		l.tat = now
	}
	l.tat = l.tat.Add(p.rest)
	l.inFlight = true
}

// end records the round's end and, when the link must wait for its next,
// wakes the dispatcher once it may start (otherwise the end of the job
// wakes it already).
func (p *linkPace) end(link int64) {
	p.mu.Lock()
	l := p.links[link]
	l.inFlight = false
	wait := time.Until(p.next(l))
	p.mu.Unlock()
	if wait > 0 {
		time.AfterFunc(wait, p.wake)
	}
}

// claimPerLink is the most change notifications of one link a claim
// leases. One delta round covers all of them, and FinishLinkInbox finishes
// the link's others once it has run, so a flood's rows are not leased one
// by one (each lease is a row write). Echoes among them are finished by
// the claim itself; the job checks again (known) for those whose push was
// saved after the claim looked.
const claimPerLink = 32

// claim takes a batch of due notifications and turns it into jobs: one
// delta round per link however many notifications it got, one job per
// lifecycle event. With pace, links with a round in flight or resting are
// left out and the rounds it starts are recorded there. It returns the
// jobs and how many rows it claimed.
func (w *Worker) claim(ctx context.Context, pace *linkPace) ([]func(context.Context), int) {
	var skip []int64
	if pace != nil {
		skip = pace.skip(time.Now())
	}
	items, echoes, err := w.store.ClaimInbox(ctx, time.Now(), w.lease, w.batch, claimPerLink, skip)
	if err != nil {
		if ctx.Err() == nil {
			w.log.WarnContext(ctx, "claiming inbox failed", slog.String("error", err.Error()))
		}
		return nil, 0
	}
	if echoes > 0 {
		// Finished by the claim itself: versions the links already know.
		w.skipped.Add(int64(echoes))
		w.processed.Add(int64(echoes))
	}
	if len(items) == 0 {
		if echoes > 0 {
			return nil, echoes // there may be more waiting
		}
		w.vacuum(ctx) // a burst just ended: clear up before the next one
		return nil, 0
	}
	byLink := map[int64][]db.InboxItem{}
	var jobs []func(context.Context)
	for _, it := range items {
		it := it
		if it.Kind == "lifecycle" {
			jobs = append(jobs, func(ctx context.Context) {
				ctx, span := startProcessing(ctx, []db.InboxItem{it}, 0)
				defer span.End()
				err := w.lifecycle.HandleLifecycle(ctx, it.SubscriptionID, deref(it.LifecycleEvent))
				endProcessing(span, err)
				w.settle(ctx, []db.InboxItem{it}, err)
			})
			continue
		}
		var link int64
		if it.LinkID != nil {
			link = *it.LinkID
		}
		byLink[link] = append(byLink[link], it)
	}
	for link, group := range byLink {
		link, group := link, group
		if pace != nil && link != 0 {
			pace.begin(link)
		}
		jobs = append(jobs, func(ctx context.Context) {
			if pace != nil && link != 0 {
				defer pace.end(link)
			}
			ctx, span := startProcessing(ctx, group, link)
			defer span.End()
			var err error
			if link != 0 && w.known(ctx, link, group) {
				// Every notification names a version the link already
				// knows (the echo of calsync's own write, a redelivery):
				// no delta round.
				w.settle(ctx, group, nil)
				w.skipped.Add(int64(len(group)))
				return
			}
			// The database's clock, as received_at is stamped by it.
			began, clockErr := w.store.Now(ctx)
			if link != 0 {
				_, err = w.syncer.Sync(ctx, link, false)
			}
			endProcessing(span, err)
			retry := w.settle(ctx, group, err)
			switch {
			case clockErr != nil || link == 0:
			case err == nil:
				// The round also covered the link's notifications not claimed
				// in this batch: finish them too instead of re-syncing.
				n, e := w.store.FinishLinkInbox(ctx, link, began, time.Now())
				if e != nil {
					w.log.WarnContext(ctx, "finishing a link's inbox failed", slog.String("error", e.Error()))
				}
				w.processed.Add(int64(n))
			default:
				// The link's others wait as long as the claimed ones: a
				// failing mailbox gets one round per backoff, not one per
				// claimPerLink of its flood.
				if e := w.store.DeferLinkInbox(ctx, link, began, retry); e != nil {
					w.log.WarnContext(ctx, "deferring a link's inbox failed", slog.String("error", e.Error()))
				}
			}
		})
	}
	return jobs, len(items) + echoes
}

// known says whether every notification of a link's group names an
// event and changeKey the link already knows (created/updated with
// resourceData's @odata.etag). A deletion, a notification naming no
// version, or any doubt (a failed read) means the round runs.
func (w *Worker) known(ctx context.Context, link int64, group []db.InboxItem) bool {
	ids := make([]string, 0, len(group))
	keys := make([]string, 0, len(group))
	for _, it := range group {
		if it.EventID == "" || it.ChangeKey == "" {
			return false
		}
		ids, keys = append(ids, it.EventID), append(keys, it.ChangeKey)
	}
	ok, err := w.store.Known(ctx, link, ids, keys)
	return err == nil && ok
}

// Skipped counts notifications finished without a delta round because
// their version was already known.
func (w *Worker) Skipped() int64 { return w.skipped.Load() }

// startProcessing starts the span of one job: a child of the POST that
// stored its first traced notification, linked to the others' (one round
// serves every notification its link got).
func startProcessing(ctx context.Context, items []db.InboxItem, link int64) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return tracing.Start(ctx, "")
	}
	parents := make([]string, len(items))
	for i, it := range items {
		parents[i] = it.Traceparent
	}
	return tracing.Continue(ctx, "inbox.process", parents, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("calsync.kind", items[0].Kind),
			attribute.Int("calsync.notifications", len(items)), attribute.Int64("calsync.link_id", link)))
}

func endProcessing(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
}

// vacuumAfter is how many processed rows make the worker vacuum the inbox
// itself (at most every vacuumEvery; ~130 ms for 200k rows here): a burst leaves as many dead row
// versions in the index of pending rows, and until they are gone every
// claim reads them all (measured: after 200k notifications, sync-back p50
// went from 17 ms to 717 ms until a vacuum).
const (
	vacuumAfter = 20_000
	vacuumEvery = 10 * time.Second
	// mirrorVacuumAfter is the fewest mirror rows written that make the
	// worker vacuum the mirror (db.Store.VacuumMirror: also a tenth of
	// the table), at most every vacuumEvery.
	mirrorVacuumAfter = 1_000
)

func (w *Worker) vacuum(ctx context.Context) {
	if !w.vacuuming.CompareAndSwap(false, true) {
		return // the dispatcher's is running
	}
	defer w.vacuuming.Store(false)
	w.vacuumDue(ctx)
}

// vacuumAside is the dispatcher's vacuum: in a goroutine of its own (wg
// waits for it), so that no claim waits for it. A VACUUM of the inbox
// after a flood, or of the mirror with its ANALYZE, takes 100 ms or more
// here, and while the dispatcher ran it every new notification of every
// mailbox waited: the slowest edits of the sync-back bench, all at once.
// One runs at a time; a look while one runs is skipped (the next claim
// looks again).
func (w *Worker) vacuumAside(ctx context.Context, wg *sync.WaitGroup) {
	if !w.vacuumMayBeDue() || !w.vacuuming.CompareAndSwap(false, true) {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer w.vacuuming.Store(false)
		w.vacuumDue(ctx)
	}()
}

// vacuumMayBeDue says, without a query, whether vacuumDue might do
// anything now.
func (w *Worker) vacuumMayBeDue() bool { return w.mirrorLookDue() || w.inboxVacuumDue() }

// mirrorLookDue says whether vacuumDue asks if the mirror needs a vacuum.
func (w *Worker) mirrorLookDue() bool { return time.Since(w.lastMirrorLook.Load()) >= vacuumEvery }

// inboxVacuumDue says whether vacuumDue vacuums the inbox.
func (w *Worker) inboxVacuumDue() bool {
	return w.processed.Load() >= vacuumAfter && time.Since(w.lastVacuum.Load()) >= vacuumEvery
}

// vacuumDue vacuums what is due; the caller holds the vacuuming flag.
func (w *Worker) vacuumDue(ctx context.Context) {
	if w.vacuumHook != nil {
		w.vacuumHook()
	}
	if w.mirrorLookDue() {
		// One look per interval, whatever it finds: a look below the
		// threshold costs a query, and this runs on every empty claim.
		w.lastMirrorLook.Store(time.Now())
		if _, err := w.store.VacuumMirror(ctx, mirrorVacuumAfter); err != nil && ctx.Err() == nil {
			w.log.WarnContext(ctx, "vacuuming the mirror failed", slog.String("error", err.Error()))
		}
	}
	if !w.inboxVacuumDue() {
		return
	}
	w.processed.Store(0)
	w.lastVacuum.Store(time.Now())
	if err := w.store.VacuumInbox(ctx); err != nil && ctx.Err() == nil {
		w.log.WarnContext(ctx, "vacuuming the inbox failed", slog.String("error", err.Error()))
	}
}

// settle finishes items, or after err schedules them for another attempt
// and returns when.
func (w *Worker) settle(ctx context.Context, items []db.InboxItem, err error) time.Time {
	ids := make([]int64, len(items))
	attempts := 0
	for i, it := range items {
		ids[i] = it.ID
		attempts = max(attempts, it.Attempts+1)
	}
	if err == nil {
		if e := w.store.FinishInbox(ctx, ids, time.Now()); e != nil {
			w.log.WarnContext(ctx, "finishing inbox items failed", slog.String("error", e.Error()))
		}
		w.processed.Add(int64(len(ids)))
		return time.Time{}
	}
	delay := min(time.Second<<min(attempts, 12), 30*time.Minute)
	w.log.WarnContext(ctx, "processing notifications failed; will retry", slog.Int("count", len(ids)),
		slog.Duration("in", delay), slog.String("error", err.Error()))
	at := time.Now().Add(delay)
	if e := w.store.RetryInbox(ctx, ids, at, err.Error()); e != nil {
		w.log.WarnContext(ctx, "rescheduling inbox items failed", slog.String("error", e.Error()))
	}
	return at
}

// moment is a time that goroutines read and write (wall clock, to the
// nanosecond, for times between 1678 and 2262; the zero moment is 1970).
type moment struct{ ns atomic.Int64 }

func (m *moment) Load() time.Time   { return time.Unix(0, m.ns.Load()) }
func (m *moment) Store(t time.Time) { m.ns.Store(t.UnixNano()) }
