// Package opsmetrics exposes the state an operator's alerts watch
// (deploy/prometheus/calsync.rules.yml): links by status, the inbox backlog,
// failing renewals and host-webhook deliveries. Everything is read from
// Postgres at scrape time, so all replicas report the same shared state.
package opsmetrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/db"
)

var (
	linksDesc = prometheus.NewDesc("calsync_links",
		"Calendar links by status (ACTIVE, PENDING, POLLING, ERROR).", []string{"status"}, nil)
	pendingDesc = prometheus.NewDesc("calsync_inbox_pending",
		"Graph notifications stored and not yet processed.", nil, nil)
	oldestDesc = prometheus.NewDesc("calsync_inbox_oldest_pending_seconds",
		"Age of the oldest unprocessed notification (0 when none).", nil, nil)
	renewalDesc = prometheus.NewDesc("calsync_subscriptions_renewal_failing",
		"Graph subscriptions whose renewal failed at least twice in a row.", nil, nil)
	hostDesc = prometheus.NewDesc("calsync_host_webhook_consecutive_failures",
		"Deliveries to the host webhook that failed in a row (0 once one succeeds).", nil, nil)
)

// linkStatuses are always exported, at 0 when no link has them, so an alert
// on ERROR has a series to compare before the first error.
var linkStatuses = []string{db.LinkActive, db.LinkPending, db.LinkPolling, db.LinkError}

// Register adds the collector to reg.
func Register(reg prometheus.Registerer, store *db.Store) {
	reg.MustRegister(&collector{store: store})
}

type collector struct{ store *db.Store }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{linksDesc, pendingDesc, oldestDesc, renewalDesc, hostDesc} {
		ch <- d
	}
}

// Collect reports nothing when Postgres cannot be read: calsync_ready says
// so, and a gap is truer than a zero.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.store.ReadOpsState(ctx)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, s := range linkStatuses {
		seen[s] = true
		ch <- prometheus.MustNewConstMetric(linksDesc, prometheus.GaugeValue, float64(st.LinksByStatus[s]), s)
	}
	for s, n := range st.LinksByStatus {
		if !seen[s] {
			ch <- prometheus.MustNewConstMetric(linksDesc, prometheus.GaugeValue, float64(n), s)
		}
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.InboxPending))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, st.OldestPending.Seconds())
	ch <- prometheus.MustNewConstMetric(renewalDesc, prometheus.GaugeValue, float64(st.RenewalFailing))
	ch <- prometheus.MustNewConstMetric(hostDesc, prometheus.GaugeValue, float64(st.HostWebhookFailures))
}
