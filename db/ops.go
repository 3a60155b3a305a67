package db

import (
	"context"
	"fmt"
	"time"
)

// OpsState is what an operator's alerts watch, read in one statement at
// each scrape of /metrics: the state lives in Postgres, so every replica
// reports the same numbers and none is lost with a process.
type OpsState struct {
	// LinksByStatus counts calendar links by status (ACTIVE, PENDING, ERROR, POLLING).
	LinksByStatus map[string]int
	// InboxPending counts notifications not yet processed; OldestPending is
	// the age of the oldest (0 when none).
	InboxPending  int
	OldestPending time.Duration
	// RenewalFailing counts subscriptions whose renewal failed at least
	// twice in a row.
	RenewalFailing int
	// HostWebhookFailures is how many deliveries to the host failed in a
	// row (0 when the last one succeeded or none was tried).
	HostWebhookFailures int
}

// ReadOpsState reads OpsState.
func (s *Store) ReadOpsState(ctx context.Context) (OpsState, error) {
	var row struct {
		Links          map[string]int `bun:"links,type:jsonb"`
		InboxPending   int            `bun:"inbox_pending"`
		OldestSeconds  float64        `bun:"oldest_seconds"`
		RenewalFailing int            `bun:"renewal_failing"`
		HostFailures   int            `bun:"host_failures"`
	}
	// The pending inbox is read once for its count and its oldest row.
	err := s.db.NewRaw(`WITH pending AS (
  SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(received_at)), 0) AS oldest
  FROM inbox WHERE processed_at IS NULL)
SELECT
  (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM (SELECT status, count(*) AS n FROM calendar_links GROUP BY status) l) AS links,
  pending.n AS inbox_pending,
  pending.oldest AS oldest_seconds,
  (SELECT count(*) FROM graph_subscriptions WHERE renewal_failures >= 2) AS renewal_failing,
  (SELECT coalesce(max(failures), 0) FROM host_webhook_state) AS host_failures
FROM pending`).Scan(ctx, &row)
	if err != nil {
		return OpsState{}, fmt.Errorf("reading operational state: %w", err)
	}
	return OpsState{LinksByStatus: row.Links, InboxPending: row.InboxPending,
		OldestPending:  time.Duration(row.OldestSeconds * float64(time.Second)),
		RenewalFailing: row.RenewalFailing, HostWebhookFailures: row.HostFailures}, nil
}
