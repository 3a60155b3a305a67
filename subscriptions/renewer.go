package subscriptions

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/service"
)

// Renewer is the renewal timer: every tick it claims the subscriptions due
// for renewal (SELECT ... FOR UPDATE SKIP LOCKED plus a lease) and renews
// them with bounded concurrency. Several replicas may run it on one
// database; each subscription is renewed once.
type Renewer struct {
	m           *Manager
	every       time.Duration
	lease       time.Duration
	batch       int
	concurrency int
	log         *slog.Logger
	run         service.Runner
}

// NewRenewer builds a renewer ticking every `every`.
func NewRenewer(m *Manager, every time.Duration, log *slog.Logger) *Renewer {
	return &Renewer{m: m, every: every, lease: 10 * time.Minute, batch: 200, concurrency: 8, log: log}
}

// Start reconciles links, then runs the loop until Stop: a run at once,
// then one every `every`, each bounded by the lease (past it another
// replica may claim the same subscriptions).
func (r *Renewer) Start(ctx context.Context) error {
	loop := service.Loop{Every: r.every, Timeout: r.lease, Do: func(ctx context.Context) { r.RunOnce(ctx) }}
	return r.run.Start(ctx, func(ctx context.Context) {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		if err := r.m.Reconcile(rctx); err != nil && ctx.Err() == nil {
			r.log.WarnContext(ctx, "start-up reconciliation incomplete", slog.String("error", err.Error()))
		}
		cancel()
		loop.Run(ctx)
	})
}

// Stop ends the loop and waits for it.
func (r *Renewer) Stop() { r.run.Stop() }

// RunOnce activates the pending links that are due (mailboxes that were not
// ready), renews every subscription due now, and returns how many it
// attempted.
func (r *Renewer) RunOnce(ctx context.Context) int {
	attempted := r.m.ActivatePending(ctx, r.m.cfg.Now())
	for ctx.Err() == nil {
		due, err := r.m.store.ClaimDueSubscriptions(ctx, r.m.cfg.Now(), r.lease, r.batch)
		if err != nil {
			r.log.WarnContext(ctx, "claiming due subscriptions failed", slog.String("error", err.Error()))
			return attempted
		}
		if len(due) == 0 {
			return attempted
		}
		sem := make(chan struct{}, r.concurrency)
		var wg sync.WaitGroup
		for _, s := range due {
			sem <- struct{}{}
			wg.Add(1)
			go func(s db.GraphSubscription) {
				defer func() { <-sem; wg.Done() }()
				cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				defer cancel()
				if err := r.m.Renew(cctx, s); err != nil {
					r.log.WarnContext(ctx, "renewal failed", slog.String("subscription", s.ID), slog.String("error", err.Error()))
				}
			}(s)
		}
		wg.Wait()
		attempted += len(due)
	}
	return attempted
}

// Metrics are the subscription counters and gauges on /metrics.
type Metrics struct {
	renewals *prometheus.CounterVec
	folds    *prometheus.CounterVec
}

// NewMetrics registers the subscription metrics; the gauges read the
// database at scrape time.
func NewMetrics(reg prometheus.Registerer, store *db.Store) *Metrics {
	m := &Metrics{renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calsync_subscription_renewals_total",
		Help: "Graph subscription renewals by result (ok, failed, recreated).",
	}, []string{"result"}), folds: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calsync_lifecycle_folded_total",
		Help: "Lifecycle notifications not acted on because the same event for the same subscription was acted on moments before (duplicates, replays).",
	}, []string{"event"})}
	if reg != nil {
		reg.MustRegister(m.renewals, m.folds, &stateCollector{store: store})
	}
	return m
}

func (m *Metrics) folded(event string) {
	if m != nil {
		switch event {
		case EventMissed, EventReauthorizationRequired, EventSubscriptionRemoved:
		default:
			event = "other"
		}
		m.folds.WithLabelValues(event).Inc()
	}
}

func (m *Metrics) renewal(result string) {
	if m != nil {
		m.renewals.WithLabelValues(result).Inc()
	}
}

var (
	subsDesc   = prometheus.NewDesc("calsync_subscriptions", "Graph subscriptions by status.", []string{"status"}, nil)
	expiryDesc = prometheus.NewDesc("calsync_subscription_next_expiry_seconds", "Seconds until the earliest active subscription expires.", nil, nil)
)

type stateCollector struct{ store *db.Store }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- subsDesc
	ch <- expiryDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if counts, err := c.store.SubscriptionCounts(ctx); err == nil {
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(subsDesc, prometheus.GaugeValue, float64(n), status)
		}
	}
	if t, err := c.store.NextExpiry(ctx); err == nil && t != nil {
		ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, time.Until(*t).Seconds())
	}
}
