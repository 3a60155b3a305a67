package db

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/tehaishokunin/calsync/internal/schedule"
)

// The mirror (table mirror_events) is calsync's own copy of when each
// linked user is busy: one row per event link that occupies time, written
// by the statements that write event_links (SaveEventLink keeps it,
// deleting an event link drops it), so it always matches event_links in
// the same transaction. A full delta round rebuilds a link's rows from
// what the round saw; unlinking or relinking to another mailbox drops them.

// mirrorRow is what the mirror keeps of an event link, or ok=false when
// it keeps nothing (deleted, not on a link, a series master, or times that
// do not read).
func mirrorRow(e *EventLink) (start, end time.Time, showAs string, ok bool) {
	if e.Deleted || e.LinkID == nil || len(e.LastKnown) == 0 {
		return time.Time{}, time.Time{}, "", false
	}
	var v schedule.Event
	if json.Unmarshal(e.LastKnown, &v) != nil {
		return time.Time{}, time.Time{}, "", false
	}
	start, end, ok = v.Span()
	return start, end, v.BusyAs(), ok
}

// mirrorLookback is the length up to which an event is found by its start
// alone: a range question reads the events starting from mirrorLookback
// before the range, plus the long ones (longer than this) starting earlier.
const mirrorLookback = 24 * time.Hour

// mirrorRows are mirror rows of one link, column by column, for one
// upsert.
type mirrorRows struct {
	ids          []int64
	starts, ends []time.Time
	shows        []string
	longs        []bool
}

// add appends e's row and reports whether e occupies time at all.
func (r *mirrorRows) add(e *EventLink) bool {
	start, end, showAs, ok := mirrorRow(e)
	if ok {
		r.ids, r.starts, r.ends, r.shows = append(r.ids, e.ID), append(r.starts, start), append(r.ends, end), append(r.shows, showAs)
		r.longs = append(r.longs, end.Sub(start) > mirrorLookback)
	}
	return ok
}

// mirrorConflict ends an upsert of mirror rows: an existing row is
// rewritten only when it changed (a push that edits an event's subject
// leaves its times and showAs, and its row, as they were: no dead row
// version, no index entries, less WAL).
const mirrorConflict = " ON CONFLICT (event_link_id) DO UPDATE SET link_id = EXCLUDED.link_id, starts_at = EXCLUDED.starts_at, " +
	"ends_at = EXCLUDED.ends_at, show_as = EXCLUDED.show_as, long = EXCLUDED.long " +
	"WHERE (mirror_events.link_id, mirror_events.starts_at, mirror_events.ends_at, mirror_events.show_as, mirror_events.long) " +
	"IS DISTINCT FROM (EXCLUDED.link_id, EXCLUDED.starts_at, EXCLUDED.ends_at, EXCLUDED.show_as, EXCLUDED.long)"

// upsert writes the rows for linkID in one statement.
func (r *mirrorRows) upsert(ctx context.Context, q bun.IDB, linkID int64) error {
	if len(r.ids) == 0 {
		return nil
	}
	_, err := q.NewRaw("INSERT INTO mirror_events (event_link_id, link_id, starts_at, ends_at, show_as, long) "+
		"SELECT id, ?, s, e, show_as, long FROM unnest(?::bigint[], ?::timestamptz[], ?::timestamptz[], ?::text[], ?::boolean[]) AS m(id, s, e, show_as, long)"+
		mirrorConflict,
		linkID, pgdialect.Array(r.ids), pgdialect.Array(r.starts), pgdialect.Array(r.ends), pgdialect.Array(r.shows), pgdialect.Array(r.longs)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("writing the mirror of link %d: %w", linkID, err)
	}
	return nil
}

// keepMirror writes e's mirror row, or removes it when e no longer
// occupies time.
func keepMirror(ctx context.Context, q bun.IDB, e *EventLink) error {
	var rows mirrorRows
	if !rows.add(e) {
		if _, err := q.NewDelete().TableExpr("mirror_events").Where("event_link_id = ?", e.ID).Exec(ctx); err != nil {
			return fmt.Errorf("dropping mirror row of event link %d: %w", e.ID, err)
		}
		return nil
	}
	return rows.upsert(ctx, q, *e.LinkID)
}

// RebuildMirror replaces a link's mirror with its live event links among
// outlookIDs (the events a full round saw): events calsync knew that the
// round did not see leave it, and events it had not kept (the mirror of a
// link made before the mirror existed, or dropped at an unlink) join it.
func (s *Store) RebuildMirror(ctx context.Context, link *CalendarLink, outlookIDs []string) error {
	if err := deleteMirror(ctx, s.db, link.ID); err != nil || len(outlookIDs) == 0 {
		return err
	}
	var els []EventLink
	if err := s.db.NewSelect().Model(&els).Column("id", "link_id", "last_known", "deleted").
		Where("company_id = ? AND user_id = ? AND NOT deleted AND outlook_event_id = ANY(?)", link.CompanyID, link.UserID, pgdialect.Array(outlookIDs)).
		Scan(ctx); err != nil {
		return fmt.Errorf("reading event links of link %d: %w", link.ID, err)
	}
	var rows mirrorRows
	for i := range els {
		els[i].LinkID = &link.ID
		rows.add(&els[i])
	}
	s.mirrorWrites.Add(int64(len(els)))
	return rows.upsert(ctx, s.db, link.ID)
}

// VacuumMirror vacuums and analyzes mirror_events once the mirror rows
// written through this Store since it last did reach min and a tenth of
// the table (autovacuum's own proportion, so a large mirror is not
// rescanned for a few writes): a full round rewrites a link's rows,
// linking hundreds of users writes a table's worth, and until a vacuum
// sets the visibility map the availability query reads the heap for every
// row (measured: 10 ms instead of 4.5 for 500 users × 7 days) — and
// Postgres may run without autovacuum, or reach the table late. It says
// whether it vacuumed; SKIP_LOCKED never waits for a lock.
func (s *Store) VacuumMirror(ctx context.Context, min int64) (bool, error) {
	n := s.mirrorWrites.Load()
	if n < min {
		return false, nil
	}
	var rows float64 // -1: never counted
	if err := s.pool.NewRaw("SELECT reltuples FROM pg_class WHERE oid = 'mirror_events'::regclass").Scan(ctx, &rows); err != nil {
		return false, fmt.Errorf("sizing mirror_events: %w", err)
	}
	if float64(n) < rows/10 || !s.mirrorWrites.CompareAndSwap(n, 0) {
		return false, nil
	}
	if _, err := s.pool.ExecContext(ctx, "VACUUM (SKIP_LOCKED, ANALYZE) mirror_events"); err != nil {
		s.mirrorWrites.Add(n) // not done: the rows still count
		return false, fmt.Errorf("vacuuming mirror_events: %w", err)
	}
	return true, nil
}

// DeleteMirror drops a link's mirror (unlinked, or linked to another
// mailbox).
func (s *Store) DeleteMirror(ctx context.Context, linkID int64) error {
	return deleteMirror(ctx, s.db, linkID)
}

func deleteMirror(ctx context.Context, q bun.IDB, linkID int64) error {
	if _, err := q.NewDelete().TableExpr("mirror_events").Where("link_id = ?", linkID).Exec(ctx); err != nil {
		return fmt.Errorf("dropping mirror of link %d: %w", linkID, err)
	}
	return nil
}

// Busy is one stretch of a link's busy time of one showAs, in UTC.
type Busy struct {
	LinkID     int64
	ShowAs     string
	Start, End time.Time
}

// BusyTimes reads, for the links of the company's users given, their
// events other than FREE that occupy time within [start, end), clipped to
// it, in no particular order (the caller merges them: merging in SQL with
// range_agg measured three times slower than reading the rows). Events of
// no length are never busy. It finds the links itself, so that a caller can
// read them (LinkStates) at the same time.
func (s *Store) BusyTimes(ctx context.Context, companyID string, userIDs []string, start, end time.Time) ([]Busy, error) {
	var out []Busy
	if len(userIDs) == 0 {
		return out, nil
	}
	// Instants travel as microseconds since the epoch, stored beside them
	// (starts_us, ends_us): pgdriver reads text, and an integer parses
	// several times faster than a timestamptz. They are clipped here.
	const cols = "SELECT link_id, show_as, starts_us, ends_us FROM mirror_events "
	const busy = " AND ends_us > ?4 AND ends_us > starts_us AND show_as <> 'FREE'"
	// Thousands of rows: scanned by hand (bun's reflection over a model
	// measured as much as the query itself).
	from, to := start.UnixMicro(), end.UnixMicro()
	// The links as an array (an InitPlan per branch): each is then one
	// descent of the index, the long-event branch included. Joining a CTE
	// of them instead left that branch scanning every long event.
	const links = "link_id = ANY(ARRAY(SELECT id FROM calendar_links WHERE company_id = ?5 AND user_id = ANY(?2::text[])))"
	rows, err := s.db.QueryContext(ctx, s.db.NewRaw(cols+"WHERE "+links+" AND starts_at >= ?3 AND starts_at < ?1"+busy+
		" UNION ALL "+cols+"WHERE long AND "+links+" AND starts_at < ?3"+busy,
		start, end, pgdialect.Array(userIDs), start.Add(-mirrorLookback), from, companyID).String())
	if err != nil {
		return nil, fmt.Errorf("reading busy times: %w", err)
	}
	defer rows.Close()
	// Scan targets declared once: declared per row, each escaped to the
	// heap (about 2,400 rows per 500-user week).
	var (
		b      Busy
		lo, hi int64
	)
	for rows.Next() {
		if err := rows.Scan(&b.LinkID, &b.ShowAs, &lo, &hi); err != nil {
			return nil, fmt.Errorf("reading busy times: %w", err)
		}
		b.Start, b.End = time.UnixMicro(max(lo, from)).UTC(), time.UnixMicro(min(hi, to)).UTC()
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading busy times: %w", err)
	}
	return out, nil
}

// MirrorPos is a position in a link's events in start order.
type MirrorPos struct {
	Start       time.Time
	EventLinkID int64
}

// MirrorEvent is one event of a link's mirror with its position.
type MirrorEvent struct {
	EventLinkID int64           `bun:"event_link_id"`
	Start       time.Time       `bun:"start_at"`
	View        json.RawMessage `bun:"last_known"`
}

// MirrorEvents lists a link's events overlapping [start, end) (an event of
// no length: happening in it) in start order, after a position, up to
// limit; more says whether there are others.
func (s *Store) MirrorEvents(ctx context.Context, linkID int64, start, end time.Time, after *MirrorPos, limit int) (evs []MirrorEvent, more bool, err error) {
	q := s.db.NewSelect().TableExpr("mirror_events AS m").Join("JOIN event_links AS e ON e.id = m.event_link_id").
		ColumnExpr("m.event_link_id, m.starts_at AS start_at, e.last_known").
		Where("m.link_id = ? AND m.starts_at < ?", linkID, end).
		Where("(m.starts_at >= ? OR m.long)", start.Add(-mirrorLookback)).
		Where("(m.ends_at > ? OR (m.ends_at = m.starts_at AND m.starts_at >= ?))", start, start)
	if after != nil {
		q = q.Where("(m.starts_at, m.event_link_id) > (?, ?)", after.Start, after.EventLinkID)
	}
	if err := q.OrderExpr("m.starts_at, m.event_link_id").Limit(int64(limit)+1).Scan(ctx, &evs); err != nil {
		return nil, false, fmt.Errorf("listing mirrored events of link %d: %w", linkID, err)
	}
	if len(evs) > limit {
		return evs[:limit], true, nil
	}
	return evs, false, nil
}

// MirrorTimer is a query hook that reports how long each statement
// writing the mirror took (the read model's upkeep, measured apart from
// the rest of a round).
func MirrorTimer(observe func(time.Duration)) bun.QueryHook { return mirrorTimer{observe} }

type mirrorTimer struct{ observe func(time.Duration) }

func (mirrorTimer) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (m mirrorTimer) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	// Raw statements report no operation of their own: read the text's
	// start (a prefix, not a search of every statement on the pool).
	// An event link's update writes its mirror row in the same statement
	// (WITH saved_link ...): counted whole, so the figure errs high.
	if strings.HasPrefix(ev.Query, "INSERT INTO mirror_events") || strings.HasPrefix(ev.Query, "DELETE FROM mirror_events") ||
		strings.HasPrefix(ev.Query, "WITH saved_link AS") {
		m.observe(time.Since(ev.StartTime))
	}
}
