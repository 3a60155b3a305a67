package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// EventLinkByOutlookID finds the event link of an Outlook event in a user's
// calendar, or nil.
func (s *Store) EventLinkByOutlookID(ctx context.Context, companyID, userID, outlookID string) (*EventLink, error) {
	e := new(EventLink)
	err := s.db.NewSelect().Model(e).Where("company_id = ? AND user_id = ? AND outlook_event_id = ?", companyID, userID, outlookID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading event link: %w", err)
	}
	return e, nil
}

// EventLinkByExternalID finds the event link of a host schedule entry, or
// nil.
func (s *Store) EventLinkByExternalID(ctx context.Context, companyID, externalID string) (*EventLink, error) {
	e := new(EventLink)
	err := s.db.NewSelect().Model(e).Where("company_id = ? AND external_id = ?", companyID, externalID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading event link %s: %w", externalID, err)
	}
	return e, nil
}

// SaveEventLink inserts or updates an event link by id (0 inserts). The
// push and sync-back may both record a new event at once (its notification
// can beat the create's answer), so an insert that meets an existing row
// for the same Outlook event merges into it (bun aliases the table as
// event_link): an externalId and calsync's
// written changeKey are never lost to the other side's insert. The
// event's mirror row changes with it: in the caller's transaction, or in
// one of its own.
func (s *Store) SaveEventLink(ctx context.Context, e *EventLink) error {
	if e.ID != 0 {
		s.mirrorWrites.Add(1)
		return updateEventLink(ctx, s.db, e) // one statement: atomic as it is
	}
	if !s.inTx {
		return s.InTx(ctx, func(ctx context.Context, tx *Store) error { return tx.SaveEventLink(ctx, e) })
	}
	if err := s.SaveEventLinkForRebuild(ctx, e); err != nil {
		return err
	}
	s.mirrorWrites.Add(1)
	return keepMirror(ctx, s.db, e)
}

// updateEventLink updates a stored event link and its mirror row in one
// statement (a data-modifying WITH): one round trip, atomic without a
// transaction of its own.
func updateEventLink(ctx context.Context, q bun.IDB, e *EventLink) error {
	upd := q.NewUpdate().Model(e).WherePK().ExcludeColumn("created_at", "updated_at").Set("updated_at = now()").Returning("id")
	var err error
	if start, end, showAs, ok := mirrorRow(e); ok {
		_, err = q.NewRaw("WITH saved_link AS (?) INSERT INTO mirror_events (event_link_id, link_id, starts_at, ends_at, show_as, long) "+
			"SELECT id, ?, ?, ?, ?, ? FROM saved_link"+mirrorConflict,
			upd, *e.LinkID, start, end, showAs, end.Sub(start) > mirrorLookback).Exec(ctx)
	} else {
		_, err = q.NewRaw("WITH saved_link AS (?) DELETE FROM mirror_events WHERE event_link_id IN (SELECT id FROM saved_link)", upd).Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("saving event link of %s: %w", e.OutlookEventID, err)
	}
	return nil
}

// SaveEventLinkForRebuild is SaveEventLink without the mirror row, for a
// full round that calls RebuildMirror for the link before it commits.
func (s *Store) SaveEventLinkForRebuild(ctx context.Context, e *EventLink) error {
	var err error
	if e.ID == 0 {
		_, err = s.db.NewInsert().Model(e).
			On("CONFLICT (company_id, user_id, outlook_event_id) DO UPDATE").
			Set("external_id = COALESCE(EXCLUDED.external_id, event_link.external_id)").
			Set("link_id = EXCLUDED.link_id").
			Set("ical_uid = COALESCE(EXCLUDED.ical_uid, event_link.ical_uid)").
			Set("written_change_key = COALESCE(EXCLUDED.written_change_key, event_link.written_change_key)").
			Set("known_change_key = EXCLUDED.known_change_key").
			Set("last_known = CASE WHEN EXCLUDED.external_id IS NULL AND event_link.external_id IS NOT NULL THEN event_link.last_known ELSE EXCLUDED.last_known END").
			Set("deleted = EXCLUDED.deleted").
			Set("updated_at = now()").
			Returning("*").Exec(ctx)
	} else {
		_, err = s.db.NewUpdate().Model(e).WherePK().ExcludeColumn("created_at", "updated_at").Set("updated_at = now()").Exec(ctx)
	}
	if err != nil {
		return fmt.Errorf("saving event link of %s: %w", e.OutlookEventID, err)
	}
	return nil
}

// DeleteEventLink removes an event link (the host's entry was deleted).
func (s *Store) DeleteEventLink(ctx context.Context, id int64) error {
	if _, err := s.db.NewDelete().Model((*EventLink)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("deleting event link %d: %w", id, err)
	}
	return nil
}

// LiveEventLinks lists a user's event links not known to be deleted.
func (s *Store) LiveEventLinks(ctx context.Context, companyID, userID string) ([]EventLink, error) {
	var out []EventLink
	if err := s.db.NewSelect().Model(&out).Where("company_id = ? AND user_id = ? AND NOT deleted", companyID, userID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("listing event links: %w", err)
	}
	return out, nil
}

// InsertChange appends to the change feed.
func (s *Store) InsertChange(ctx context.Context, c *Change) error {
	return s.InsertChanges(ctx, []*Change{c})
}

// InsertChanges appends cs to the feed in one statement, in order (each
// gets its cursor and time).
func (s *Store) InsertChanges(ctx context.Context, cs []*Change) error {
	if len(cs) == 0 {
		return nil
	}
	if _, err := s.db.NewInsert().Model(&cs).Returning("cursor, occurred_at").Exec(ctx); err != nil {
		return fmt.Errorf("appending %d changes: %w", len(cs), err)
	}
	return nil
}

// Changes reads the company's feed after cursor, optionally for one user.
func (s *Store) Changes(ctx context.Context, companyID string, after int64, userID string, limit int) ([]Change, bool, error) {
	var out []Change
	q := s.db.NewSelect().Model(&out).Where("company_id = ? AND cursor > ?", companyID, after)
	if userID != "" {
		q = q.Where("user_id = ?", userID)
	}
	if err := q.Order("cursor").Limit(int64(limit + 1)).Scan(ctx); err != nil {
		return nil, false, fmt.Errorf("reading changes: %w", err)
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// errNoTx is a transaction lock asked for outside a transaction (it would
// be released at once).
var errNoTx = errors.New("a transaction lock needs a transaction (Store.InTx)")

// LockLink serialises work on one link across replicas for the rest of the
// transaction.
func (s *Store) LockLink(ctx context.Context, linkID int64) error {
	if !s.inTx {
		return errNoTx
	}
	if _, err := s.db.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7411, ?::int)", linkID); err != nil {
		return fmt.Errorf("locking link %d: %w", linkID, err)
	}
	return nil
}

// LockFeed makes appends to the change feed commit in cursor order: a
// transaction takes it before its first append and holds it to commit.
// Without it, a later cursor could commit first and a reader that moved
// past it would never see the earlier one.
func (s *Store) LockFeed(ctx context.Context) error {
	if !s.inTx {
		return errNoTx
	}
	if _, err := s.db.ExecContext(ctx, "SELECT pg_advisory_xact_lock(7412, 0)"); err != nil {
		return fmt.Errorf("locking the change feed: %w", err)
	}
	return nil
}
