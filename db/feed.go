package db

import (
	"context"
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
	if err := pgdriver.Notify(ctx, s.db, ChangesChannel, companyID); err != nil {
		return fmt.Errorf("notifying changes: %w", err)
	}
	return nil
}

// ListenChanges opens a LISTEN connection for ChangesChannel.
func (s *Store) ListenChanges(ctx context.Context) (*pgdriver.Listener, error) {
	ln := pgdriver.NewListener(s.db)
	if err := ln.Listen(ctx, ChangesChannel); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("listening for changes: %w", err)
	}
	return ln, nil
}

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

	ID            int       `bun:"id,pk"`
	LastCursor    int64     `bun:"last_cursor,notnull"`
	Failures      int       `bun:"failures,notnull"`
	NextAttemptAt time.Time `bun:"next_attempt_at,notnull"`
	LastError     *string   `bun:"last_error"`
}

// WithHostWebhook runs fn holding the delivery state row locked (one
// replica delivers at a time; others skip). New deployments start at the
// current end of the feed. fn returns the new state to store.
func (s *Store) WithHostWebhook(ctx context.Context, fn func(ctx context.Context, st HostWebhookState) (HostWebhookState, error)) (bool, error) {
	if _, err := s.db.NewRaw(`INSERT INTO host_webhook_state (id, last_cursor) SELECT 1, coalesce(max(cursor), 0) FROM changes ON CONFLICT (id) DO NOTHING`).Exec(ctx); err != nil {
		return false, fmt.Errorf("initialising host webhook state: %w", err)
	}
	ran := false
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var st HostWebhookState
		if err := tx.NewSelect().Model(&st).Where("id = 1 AND next_attempt_at <= now()").For("UPDATE SKIP LOCKED").Scan(ctx); err != nil {
			return nil // locked by another replica, or not due
		}
		ran = true
		next, err := fn(ctx, st)
		if err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model(&next).WherePK().Set("updated_at = now()").
			Column("last_cursor", "failures", "next_attempt_at", "last_error").Exec(ctx)
		return err
	})
	return ran, err
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
