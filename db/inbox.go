package db

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// SubscriptionState is what checking a notification needs to know of its
// subscription.
type SubscriptionState struct {
	ID          string `bun:"id"`
	LinkID      int64  `bun:"link_id"`
	CompanyID   string `bun:"company_id"`
	ClientState string `bun:"client_state"`
	// TenantID is the Entra tenant of the company's credentials; empty when
	// the company has none (any tenantId is then refused).
	TenantID string `bun:"tenant_id"`
}

// SubscriptionStates returns the clientState, link and tenant of each known
// subscription id among ids (for checking notifications).
func (s *Store) SubscriptionStates(ctx context.Context, ids []string) (map[string]SubscriptionState, error) {
	out := map[string]SubscriptionState{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []SubscriptionState
	if err := s.db.NewSelect().TableExpr("graph_subscriptions AS s").
		Join("LEFT JOIN credentials AS c ON c.company_id = s.company_id").
		ColumnExpr("s.id, s.link_id, s.company_id, s.client_state, coalesce(c.tenant_id, '') AS tenant_id").
		Where("s.id IN (?)", bun.In(ids)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("reading subscription states: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, nil
}

// Enqueue stores accepted notifications in one transaction.
func (s *Store) Enqueue(ctx context.Context, items []InboxItem) error {
	if len(items) == 0 {
		return nil
	}
	if _, err := s.db.NewInsert().Model(&items).Exec(ctx); err != nil {
		return fmt.Errorf("storing %d notifications: %w", len(items), err)
	}
	return nil
}

// ClaimInbox takes up to limit due, unprocessed notifications, oldest
// first, and leases them so other workers skip them; notifications of the
// links in skip are left where they are.
func (s *Store) ClaimInbox(ctx context.Context, now time.Time, lease time.Duration, limit int, skip []int64) ([]InboxItem, error) {
	var out []InboxItem
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewSelect().Model(&out).Where("processed_at IS NULL AND next_attempt_at <= ?", now)
		if len(skip) > 0 {
			q = q.Where("(link_id IS NULL OR link_id <> ALL(?))", pgdialect.Array(skip))
		}
		if err := q.Order("id").Limit(int64(limit)).For("UPDATE SKIP LOCKED").Scan(ctx); err != nil {
			return fmt.Errorf("claiming inbox: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		ids := make([]int64, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		_, err := tx.NewUpdate().Model((*InboxItem)(nil)).Set("next_attempt_at = ?", now.Add(lease)).
			Set("attempts = attempts + 1").Where("id IN (?)", bun.In(ids)).Exec(ctx)
		return err
	})
	return out, err
}

// PruneInbox deletes up to limit notifications processed before `before`,
// oldest first, and says how many went. Processed rows are kept a while
// only to explain what happened; the queue itself needs none of them.
func (s *Store) PruneInbox(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := s.db.NewRaw("DELETE FROM inbox WHERE id IN (SELECT id FROM inbox WHERE processed_at < ? ORDER BY id LIMIT ?)", before, limit).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("pruning inbox: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// FinishInbox marks notifications processed.
func (s *Store) FinishInbox(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.db.NewUpdate().Model((*InboxItem)(nil)).Set("processed_at = ?", at).Set("last_error = NULL").
		Where("id IN (?)", bun.In(ids)).Exec(ctx); err != nil {
		return fmt.Errorf("finishing inbox items: %w", err)
	}
	return nil
}

// RetryInbox schedules notifications for another attempt.
func (s *Store) RetryInbox(ctx context.Context, ids []int64, at time.Time, reason string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.db.NewUpdate().Model((*InboxItem)(nil)).Set("next_attempt_at = ?", at).Set("last_error = ?", reason).
		Where("id IN (?)", bun.In(ids)).Exec(ctx); err != nil {
		return fmt.Errorf("rescheduling inbox items: %w", err)
	}
	return nil
}

// PendingInbox counts unprocessed notifications.
func (s *Store) PendingInbox(ctx context.Context) (int, error) {
	n, err := s.db.NewSelect().Model((*InboxItem)(nil)).Where("processed_at IS NULL").Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("counting inbox: %w", err)
	}
	return int(n), nil
}

// FinishLinkInbox marks every change notification of a link received
// before `before` processed: one delta round after that moment covers them
// all, however many a flood brought.
func (s *Store) FinishLinkInbox(ctx context.Context, linkID int64, before, at time.Time) (int, error) {
	res, err := s.db.NewUpdate().Model((*InboxItem)(nil)).Set("processed_at = ?", at).Set("last_error = NULL").
		Where("link_id = ? AND kind = 'change' AND processed_at IS NULL AND received_at < ?", linkID, before).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("finishing inbox of link %d: %w", linkID, err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// VacuumInbox vacuums the inbox now, unless another vacuum holds it: after
// a burst, the dead versions of the rows just processed would slow every
// claim until autovacuum gets round to it.
func (s *Store) VacuumInbox(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, "VACUUM (SKIP_LOCKED) inbox"); err != nil {
		return fmt.Errorf("vacuuming inbox: %w", err)
	}
	return nil
}

// Now is the database's clock, for comparing with timestamps it assigned.
func (s *Store) Now(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := s.db.NewRaw("SELECT now()").Scan(ctx, &t); err != nil {
		return time.Time{}, fmt.Errorf("reading the database clock: %w", err)
	}
	return t, nil
}

// Known says whether the link already knows every (event, changeKey) pair
// given: each names a live single event (not a series or one of its
// instances) of the link whose last known version is that changeKey. Such notifications (the echo of calsync's
// own write, a redelivery) need no delta round.
func (s *Store) Known(ctx context.Context, linkID int64, eventIDs, changeKeys []string) (bool, error) {
	if len(eventIDs) == 0 || len(eventIDs) != len(changeKeys) {
		return false, nil
	}
	var ok bool
	// Through the link's company and user: event links are indexed by
	// (company, user, Outlook id), and by link id not at all — filtering
	// on link_id alone scanned the whole table (100 ms with 150,000 event
	// links, for every echo).
	err := s.db.NewRaw("SELECT count(DISTINCT e.id) = (SELECT count(DISTINCT (n.id, n.ck)) FROM unnest(?::text[], ?::text[]) AS n(id, ck)) "+
		"FROM calendar_links AS l JOIN event_links AS e ON e.company_id = l.company_id AND e.user_id = l.user_id AND e.link_id = l.id "+
		"JOIN unnest(?::text[], ?::text[]) AS n(id, ck) ON e.outlook_event_id = n.id AND e.known_change_key = n.ck "+
		// Single events only: a series' notification also stands for
		// instances that only a delta round lists.
		"WHERE l.id = ? AND NOT e.deleted AND coalesce(e.last_known->>'type', 'SINGLE_INSTANCE') = 'SINGLE_INSTANCE'",
		pgdialect.Array(eventIDs), pgdialect.Array(changeKeys), pgdialect.Array(eventIDs), pgdialect.Array(changeKeys), linkID).Scan(ctx, &ok)
	if err != nil {
		return false, fmt.Errorf("checking known versions of link %d: %w", linkID, err)
	}
	return ok, nil
}
