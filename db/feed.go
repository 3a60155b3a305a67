package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"
)

// ChangesChannel is the Postgres NOTIFY channel announcing new changes; the
// payload is the company id.
const ChangesChannel = "calsync_changes"

// NotifyChanges tells every replica listening that a company's feed grew.
func (s *Store) NotifyChanges(ctx context.Context, companyID string) error {
	if err := pgdriver.Notify(ctx, s.pool, ChangesChannel, companyID); err != nil {
		return fmt.Errorf("notifying changes: %w", err)
	}
	return nil
}

// Listener is a LISTEN connection for ChangesChannel.
type Listener struct {
	ln *pgdriver.Listener
	ch <-chan pgdriver.Notification
}

// ListenChanges opens a LISTEN connection for ChangesChannel.
func (s *Store) ListenChanges(ctx context.Context) (*Listener, error) {
	ln := pgdriver.NewListener(s.pool)
	if err := ln.Listen(ctx, ChangesChannel); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("listening for changes: %w", err)
	}
	return &Listener{ln: ln, ch: ln.Channel()}, nil
}

// ErrListenerClosed is Next's answer once the listener's channel closed.
var ErrListenerClosed = errors.New("listener closed")

// Next waits for the next notification and returns its payload (a company
// id). An error means ctx ended or the listener is done: close it and,
// to go on, make another.
func (l *Listener) Next(ctx context.Context) (string, error) {
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case n, ok := <-l.ch:
		if !ok {
			return "", ErrListenerClosed
		}
		return n.Payload, nil
	}
}

// Close ends the connection.
func (l *Listener) Close() error { return l.ln.Close() }

// LatestCursor is the newest cursor of a company's feed (0 when empty).
func (s *Store) LatestCursor(ctx context.Context, companyID string) (int64, error) {
	var c *int64
	if err := s.db.NewSelect().Model((*Change)(nil)).ColumnExpr("max(cursor)").Where("company_id = ?", companyID).Scan(ctx, &c); err != nil {
		return 0, fmt.Errorf("reading latest cursor: %w", err)
	}
	if c == nil {
		return 0, nil
	}
	return *c, nil
}

// HostWebhookState is where delivery to the host's webhook stands.
type HostWebhookState struct {
	bun.BaseModel `bun:"table:host_webhook_state"`

	ID            int        `bun:"id,pk"`
	LastCursor    int64      `bun:"last_cursor,notnull"`
	Failures      int        `bun:"failures,notnull"`
	NextAttemptAt time.Time  `bun:"next_attempt_at,notnull"`
	LastError     *string    `bun:"last_error"`
	LeaseUntil    *time.Time `bun:"lease_until"`
	LeaseToken    *string    `bun:"lease_token"`
	// LastEventSeq is the last host event (other than changes) delivered.
	LastEventSeq int64 `bun:"last_event_seq,notnull"`
}

// ClaimHostWebhook takes the delivery lease for lease when delivery is due
// and no other replica holds an unexpired one, in one short statement (no
// transaction stays open while the host is called). It returns the state
// and the lease's token, or nil when not due or held elsewhere. New
// deployments start at the current end of the feed.
func (s *Store) ClaimHostWebhook(ctx context.Context, lease time.Duration) (*HostWebhookState, string, error) {
	if _, err := s.db.NewRaw(`INSERT INTO host_webhook_state (id, last_cursor) SELECT 1, coalesce(max(cursor), 0) FROM changes ON CONFLICT (id) DO NOTHING`).Exec(ctx); err != nil {
		return nil, "", fmt.Errorf("initialising host webhook state: %w", err)
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	var st []HostWebhookState
	if err := s.db.NewRaw(`UPDATE host_webhook_state SET lease_until = now() + ? * interval '1 millisecond', lease_token = ?
		WHERE id = 1 AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
		RETURNING id, last_cursor, failures, next_attempt_at, last_error, lease_until, lease_token, last_event_seq`,
		lease.Milliseconds(), token).Scan(ctx, &st); err != nil {
		return nil, "", fmt.Errorf("claiming host webhook delivery: %w", err)
	}
	if len(st) == 0 {
		return nil, "", nil // not due, or another replica delivers
	}
	return &st[0], token, nil
}

// RecordHostWebhook stores delivery progress under the lease token: the
// lease is extended by lease, or given up when lease is 0. It returns false
// when the lease is no longer this token's (it expired and another replica
// took over): the caller stops.
func (s *Store) RecordHostWebhook(ctx context.Context, token string, st HostWebhookState, lease time.Duration) (bool, error) {
	q := s.db.NewUpdate().Model(&st).WherePK().Where("lease_token = ?", token).
		Column("last_cursor", "last_event_seq", "failures", "next_attempt_at", "last_error").Set("updated_at = now()")
	if lease > 0 {
		q = q.Set("lease_until = now() + ? * interval '1 millisecond'", lease.Milliseconds())
	} else {
		q = q.Set("lease_until = NULL").Set("lease_token = NULL")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("recording host webhook delivery: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ChangesAfter reads up to limit changes of every company after cursor.
func (s *Store) ChangesAfter(ctx context.Context, after int64, limit int) ([]Change, error) {
	var out []Change
	if err := s.db.NewSelect().Model(&out).Where("cursor > ?", after).Order("cursor").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	return out, nil
}

// PruneChanges deletes up to limit changes recorded before before, oldest
// first, and moves each company's horizon to the newest cursor it lost; it
// returns how many went. Replicas may prune at once.
func (s *Store) PruneChanges(ctx context.Context, before time.Time, limit int) (int, error) {
	n := 0
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var gone []struct {
			CompanyID string `bun:"company_id"`
			Cursor    int64  `bun:"cursor"`
		}
		if err := tx.NewRaw(`DELETE FROM changes WHERE cursor IN (
			SELECT cursor FROM changes WHERE occurred_at < ? ORDER BY cursor LIMIT ? FOR UPDATE SKIP LOCKED)
			RETURNING company_id, cursor`, before, limit).Scan(ctx, &gone); err != nil {
			return fmt.Errorf("pruning changes: %w", err)
		}
		n = len(gone)
		newest := map[string]int64{}
		for _, g := range gone {
			newest[g.CompanyID] = max(newest[g.CompanyID], g.Cursor)
		}
		for company, cursor := range newest {
			if _, err := tx.NewRaw(`INSERT INTO feed_horizon (company_id, pruned_through) VALUES (?, ?)
				ON CONFLICT (company_id) DO UPDATE SET pruned_through = greatest(feed_horizon.pruned_through, excluded.pruned_through)`,
				company, cursor).Exec(ctx); err != nil {
				return fmt.Errorf("moving the feed horizon: %w", err)
			}
		}
		return nil
	})
	return n, err
}

// FeedHorizon is the newest cursor of the company's feed that was pruned
// (0 when none was): following the feed from before it would miss changes.
func (s *Store) FeedHorizon(ctx context.Context, companyID string) (int64, error) {
	var h []int64
	if err := s.db.NewRaw(`SELECT pruned_through FROM feed_horizon WHERE company_id = ?`, companyID).Scan(ctx, &h); err != nil {
		return 0, fmt.Errorf("reading the feed horizon: %w", err)
	}
	if len(h) == 0 {
		return 0, nil
	}
	return h[0], nil
}

// HostEvent is an event for the host webhook other than a feed change.
type HostEvent struct {
	bun.BaseModel `bun:"table:host_events"`

	Seq        int64           `bun:"seq,pk,autoincrement"`
	Type       string          `bun:"type,notnull"`
	CompanyID  string          `bun:"company_id,notnull"`
	Data       json.RawMessage `bun:"data,type:jsonb,notnull"`
	OccurredAt time.Time       `bun:"occurred_at,notnull,default:current_timestamp"`
}

// HostEventsAfter reads up to limit host events after seq, in order.
func (s *Store) HostEventsAfter(ctx context.Context, after int64, limit int) ([]HostEvent, error) {
	var out []HostEvent
	if err := s.db.NewSelect().Model(&out).Where("seq > ?", after).Order("seq").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("reading host events: %w", err)
	}
	return out, nil
}

// WarnSecretExpiry records that a company's secret, expiring at expiresAt,
// has come within each of thresholds days, and queues the host event ev
// for the nearest one (emit) — unless that warning was recorded before:
// the insert decides, so each warning goes out once however many replicas
// ask. It reports whether the event was queued.
func (s *Store) WarnSecretExpiry(ctx context.Context, companyID string, expiresAt time.Time, thresholds []int, emit int, ev *HostEvent) (bool, error) {
	queued := false
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, days := range thresholds {
			res, err := tx.NewRaw(`INSERT INTO secret_expiry_warnings (company_id, expires_at, threshold_days) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, companyID, expiresAt, days).Exec(ctx)
			if err != nil {
				return fmt.Errorf("recording expiry warning: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 && days == emit {
				queued = true
			}
		}
		if !queued {
			return nil
		}
		if _, err := tx.NewInsert().Model(ev).Exec(ctx); err != nil {
			return fmt.Errorf("queueing host event: %w", err)
		}
		return nil
	})
	return queued, err
}
