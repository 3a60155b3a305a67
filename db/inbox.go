package db

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
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

// Enqueue stores accepted notifications in one statement (one
// transaction). It stores what a notification says (kind, subscription,
// link, change, version, trace, and when it is due: now when zero); the
// rows' ids are not read back, and received_at, attempts and processing
// state start fresh. The statement is written by hand: this is the
// webhook's hot path, where bun's reflection and RETURNING cost a
// measurable share of each POST (see BENCHMARKS.md).
func (s *Store) Enqueue(ctx context.Context, items []InboxItem) error {
	if len(items) == 0 {
		return nil
	}
	d := s.db.Dialect()
	// Each appends a comma and one value; "" (str) and nil (ptr) are NULL.
	str := func(b []byte, v string) []byte {
		if v == "" {
			return append(b, ",NULL"...)
		}
		return d.AppendString(append(b, ','), v)
	}
	ptr := func(b []byte, v *string) []byte {
		if v == nil {
			return append(b, ",NULL"...)
		}
		return d.AppendString(append(b, ','), *v)
	}
	b := make([]byte, 0, 160+len(items)*200)
	b = append(b, "INSERT INTO inbox (kind, subscription_id, link_id, change_type, lifecycle_event, resource, next_attempt_at, traceparent, event_id, change_key) VALUES "...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.AppendString(append(b, '('), it.Kind)
		b = d.AppendString(append(b, ','), it.SubscriptionID)
		if it.LinkID == nil {
			b = append(b, ",NULL"...)
		} else {
			b = strconv.AppendInt(append(b, ','), *it.LinkID, 10)
		}
		b = ptr(b, it.ChangeType)
		b = ptr(b, it.LifecycleEvent)
		b = ptr(b, it.Resource)
		if it.NextAttemptAt.IsZero() {
			b = append(b, ",DEFAULT"...)
		} else {
			b = d.AppendTime(append(b, ','), it.NextAttemptAt)
		}
		b = str(b, it.Traceparent)
		b = str(b, it.EventID)
		b = str(b, it.ChangeKey)
		b = append(b, ')')
	}
	// Without arguments (and calsync sets no named ones) bun sends the
	// text as it is: a '?' inside a value is not taken for a placeholder.
	if _, err := s.db.ExecContext(ctx, string(b)); err != nil {
		return fmt.Errorf("storing %d notifications: %w", len(items), err)
	}
	return nil
}

// ClaimInbox leases due, unprocessed notifications, oldest first, so other
// workers skip them: of the oldest scan due rows it takes every lifecycle
// notification and at most perLink change notifications of each link
// (one delta round covers all of a link's, and the worker finishes the
// rest with FinishLinkInbox after the round: a flood on one mailbox is
// written once more when processed, not leased row by row first).
// Notifications of the links in skip are left where they are.
//
// A taken change notification naming a version its link already knows
// (Known: the echo of calsync's own write, a redelivery) is finished in
// the same statement instead of leased; echoes says how many were, and
// only the others are returned.
func (s *Store) ClaimInbox(ctx context.Context, now time.Time, lease time.Duration, scan, perLink int, skip []int64) (items []InboxItem, echoes int, err error) {
	skipped := ""
	// In the order of the statement's placeholders: the lease's end, the
	// finishing time, the due time, (the links to skip), the scan, the cap
	// per link, the due time.
	args := []any{now.Add(lease), now, now}
	if len(skip) > 0 {
		skipped = "AND (link_id IS NULL OR link_id <> ALL(?))"
		args = append(args, pgdialect.Array(skip))
	}
	args = append(args, scan, perLink, now)
	var out []InboxItem
	// The innermost select reads the oldest due rows' ids through the
	// pending index; the ranked pick is locked with SKIP LOCKED (another
	// replica's claim in flight keeps its rows), checked against the
	// event links as Known does, and leased or finished in the same
	// statement: one round trip, no transaction of its own.
	q := `UPDATE inbox AS i SET attempts = i.attempts + 1,
	next_attempt_at = CASE WHEN p.known THEN i.next_attempt_at ELSE ? END,
	processed_at = CASE WHEN p.known THEN ?::timestamptz END
FROM (
	SELECT c.id, (c.kind = 'change' AND c.event_id IS NOT NULL AND c.change_key IS NOT NULL AND EXISTS (
		SELECT 1 ` + knownEventLinks + `
		WHERE l.id = c.link_id AND e.outlook_event_id = c.event_id AND e.known_change_key = c.change_key AND ` + liveSingleEvent + `)) AS known
	FROM inbox AS c WHERE c.id IN (
		SELECT id FROM (
			SELECT id, kind, row_number() OVER (PARTITION BY link_id, kind ORDER BY id) AS n
			FROM (SELECT id, link_id, kind FROM inbox
				WHERE processed_at IS NULL AND next_attempt_at <= ? ` + skipped + `
				ORDER BY id LIMIT ?) AS due
		) AS ranked WHERE kind <> 'change' OR n <= ?)
	AND c.processed_at IS NULL AND c.next_attempt_at <= ?
	ORDER BY c.id FOR UPDATE OF c SKIP LOCKED
) AS p
WHERE i.id = p.id
RETURNING i.*`
	if err := s.db.NewRaw(q, args...).Scan(ctx, &out); err != nil {
		return nil, 0, fmt.Errorf("claiming inbox: %w", err)
	}
	items = out[:0]
	for _, it := range out {
		if it.ProcessedAt != nil {
			echoes++
			continue
		}
		items = append(items, it)
	}
	slices.SortFunc(items, func(a, b InboxItem) int { return cmp.Compare(a.ID, b.ID) })
	return items, echoes, nil
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

// DeferLinkInbox moves the due change notifications of a link received
// before `before` to until at the earliest: its round failed, and the
// notifications it did not claim would otherwise start one failing round
// after another.
func (s *Store) DeferLinkInbox(ctx context.Context, linkID int64, before, until time.Time) error {
	if _, err := s.db.NewUpdate().Model((*InboxItem)(nil)).Set("next_attempt_at = ?", until).
		Where("link_id = ? AND kind = 'change' AND processed_at IS NULL AND received_at < ? AND next_attempt_at < ?", linkID, before, until).
		Exec(ctx); err != nil {
		return fmt.Errorf("deferring inbox of link %d: %w", linkID, err)
	}
	return nil
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

// knownEventLinks and liveSingleEvent are what Known and ClaimInbox's
// echo check both ask of a notification's event: a link's event links (l,
// e), through the link's company and user — event links are indexed by
// (company, user, Outlook id), and by link id not at all: filtering on
// link_id alone scanned the whole table (100 ms with 150,000 event links,
// for every echo) — that are live single events. A series' notification
// also stands for instances that only a delta round lists.
const (
	knownEventLinks = "FROM calendar_links AS l JOIN event_links AS e ON e.company_id = l.company_id AND e.user_id = l.user_id AND e.link_id = l.id"
	liveSingleEvent = "NOT e.deleted AND coalesce(e.last_known->>'type', 'SINGLE_INSTANCE') = 'SINGLE_INSTANCE'"
)

// Known says whether the link already knows every (event, changeKey) pair
// given: each names a live single event (not a series or one of its
// instances) of the link whose last known version is that changeKey. Such notifications (the echo of calsync's
// own write, a redelivery) need no delta round.
func (s *Store) Known(ctx context.Context, linkID int64, eventIDs, changeKeys []string) (bool, error) {
	if len(eventIDs) == 0 || len(eventIDs) != len(changeKeys) {
		return false, nil
	}
	var ok bool
	err := s.db.NewRaw("SELECT count(DISTINCT e.id) = (SELECT count(DISTINCT (n.id, n.ck)) FROM unnest(?::text[], ?::text[]) AS n(id, ck)) "+
		knownEventLinks+" JOIN unnest(?::text[], ?::text[]) AS n(id, ck) ON e.outlook_event_id = n.id AND e.known_change_key = n.ck "+
		"WHERE l.id = ? AND "+liveSingleEvent,
		pgdialect.Array(eventIDs), pgdialect.Array(changeKeys), pgdialect.Array(eventIDs), pgdialect.Array(changeKeys), linkID).Scan(ctx, &ok)
	if err != nil {
		return false, fmt.Errorf("checking known versions of link %d: %w", linkID, err)
	}
	return ok, nil
}
