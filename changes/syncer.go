// Package changes turns Outlook-side edits into the change feed the host
// reads: it runs a link's calendarView delta rounds, drops calsync's own
// writes (echoes, by changeKey) and replays, and appends one row per real
// change, then tells listeners the feed grew.
package changes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/tracing"
	"github.com/tehaishokunin/calsync/outlook"
)

// Change types in the feed.
const (
	Created = "CREATED"
	Updated = "UPDATED"
	Deleted = "DELETED"
)

// Syncer runs delta rounds for links.
type Syncer struct {
	store    *db.Store
	sessions *credentials.Sessions
	log      *slog.Logger
	now      func() time.Time
	notify   func(companyID string)
	// Window is how far back and ahead of now a link's calendar view
	// reaches; it slides forward daily (a full round once it is a day
	// old), and events that only aged out of it are not reported.
	Past, Future time.Duration
	PageSize     int
	// ResyncInterval is the longest a link goes without a round: each
	// round schedules the next poll that far ahead (Poller runs it unless
	// a notification brings one sooner).
	ResyncInterval time.Duration
}

// NewSyncer builds a syncer; notify (may be nil) is called after changes
// are committed.
func NewSyncer(store *db.Store, sessions *credentials.Sessions, notify func(companyID string), log *slog.Logger) *Syncer {
	return &Syncer{store: store, sessions: sessions, log: log, now: time.Now, notify: notify,
		Past: 30 * 24 * time.Hour, Future: 365 * 24 * time.Hour, PageSize: 100, ResyncInterval: DefaultResyncInterval}
}

// Initial runs a link's first round: every event in the window is reported
// (as CREATED) so the host sees the user's busy time from the start.
func (s *Syncer) Initial(ctx context.Context, linkID int64) error { return s.run(ctx, linkID, true) }

// Resync runs a round from the saved delta link (a full round when there is
// none or Graph says the token is stale).
func (s *Syncer) Resync(ctx context.Context, linkID int64) error { return s.run(ctx, linkID, false) }

// Result counts what a round did.
type Result struct {
	Changes int
	Echoes  int
	Full    bool
}

func (s *Syncer) run(ctx context.Context, linkID int64, fresh bool) error {
	_, err := s.Sync(ctx, linkID, fresh)
	return err
}

// Sync runs one round for a link under a per-link lock (safe across
// replicas) and returns what it did.
func (s *Syncer) Sync(ctx context.Context, linkID int64, fresh bool) (res Result, err error) {
	ctx, span := tracing.Start(ctx, "delta.round", trace.WithAttributes(attribute.Int64("calsync.link_id", linkID)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.SetAttributes(attribute.Int("calsync.changes", res.Changes), attribute.Bool("calsync.full", res.Full))
		span.End()
	}()
	var companyID string
	err = s.store.InTx(ctx, func(ctx context.Context, tx *db.Store) error {
		if err := tx.LockLink(ctx, linkID); err != nil {
			return err
		}
		link, err := tx.LinkByID(ctx, linkID)
		if err != nil || link == nil || link.Provider == db.ProviderNone {
			return err
		}
		companyID = link.CompanyID
		res, err = s.round(ctx, tx, link, fresh)
		return err
	})
	if err != nil {
		return res, err
	}
	if res.Changes > 0 && s.notify != nil {
		s.notify(companyID)
	}
	return res, nil
}

func (s *Syncer) round(ctx context.Context, tx *db.Store, link *db.CalendarLink, fresh bool) (Result, error) {
	mb, err := s.sessions.Mailbox(ctx, link)
	if err != nil {
		return Result{}, err
	}
	sess, mailbox := mb.Session, mb.ID
	now := s.now().UTC()
	state, err := tx.Delta(ctx, link.ID)
	if err != nil {
		return Result{}, err
	}
	full := fresh || state == nil || state.DeltaLink == nil || now.Sub(state.WindowStart.Add(s.Past)) >= slideEvery
	if full {
		state = &db.DeltaState{LinkID: link.ID, WindowStart: now.Add(-s.Past), WindowEnd: now.Add(s.Future)}
	}
	changed, removed, deltaLink, err := s.fetch(ctx, sess, mailbox, state, full)
	if outlook.KindOf(err) == outlook.KindSyncReset && !full {
		s.log.InfoContext(ctx, "delta token stale; full resync", slog.Int64("link", link.ID))
		full = true
		state = &db.DeltaState{LinkID: link.ID, WindowStart: now.Add(-s.Past), WindowEnd: now.Add(s.Future)}
		changed, removed, deltaLink, err = s.fetch(ctx, sess, mailbox, state, true)
	}
	if err != nil {
		if s.sessions.ReportRejected(ctx, link.CompanyID, err) {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("reading delta of link %d: %w", link.ID, err)
	}
	seen := map[string]bool{}
	for _, ev := range changed {
		seen[ev.ID] = true
	}
	if full && !fresh {
		// Events known before but absent from a full round were deleted
		// or moved out of the window while the token was stale (or the
		// window slid); those that merely aged out are not candidates.
		live, err := tx.LiveEventLinks(ctx, link.CompanyID, link.UserID)
		if err != nil {
			return Result{}, err
		}
		for _, el := range live {
			if !seen[el.OutlookEventID] && inWindow(el, state) {
				removed = append(removed, el.OutlookEventID)
			}
		}
	}
	sc := &seriesCache{sess: sess, mailbox: mailbox, link: link, byID: map[string]*series{}}
	moved, gone, err := s.resolveRemoved(ctx, tx, sess, mailbox, link, removed, sc)
	if err != nil {
		return Result{}, fmt.Errorf("checking removed events of link %d: %w", link.ID, err)
	}
	changed = append(changed, moved...)
	res := Result{Full: full}
	save := tx.SaveEventLink
	if full {
		save = tx.SaveEventLinkForRebuild // the mirror is rebuilt below, once
	}
	var feed feedAppends
	for _, ev := range changed {
		n, echo, err := s.applyChanged(ctx, tx, link, ev, sc, save, &feed)
		if err != nil {
			return res, err
		}
		res.Changes += n
		if echo {
			res.Echoes++
		}
	}
	if err := sc.saveMasters(ctx, tx); err != nil {
		return res, err
	}
	for _, id := range gone {
		n, err := s.applyRemoved(ctx, tx, link, id, save, &feed)
		if err != nil {
			return res, err
		}
		res.Changes += n
	}
	if full {
		// A full round saw every event in the window: the link's mirror
		// becomes exactly those (healing anything it missed).
		ids := make([]string, len(changed))
		for i, ev := range changed {
			ids[i] = ev.ID
		}
		if err := tx.RebuildMirror(ctx, link, ids); err != nil {
			return res, err
		}
	}
	state.DeltaLink = &deltaLink
	if err := tx.SaveDelta(ctx, state); err != nil {
		return res, err
	}
	if err := tx.MarkSynced(ctx, link.ID, now, now.Add(s.ResyncInterval)); err != nil {
		return res, err
	}
	// Last, so the feed's lock is held for one INSERT and the commit.
	return res, feed.append(ctx, tx)
}

// saveFunc records an event link in the round's transaction: with its
// mirror row (Store.SaveEventLink), or without when the round rebuilds the
// mirror (Store.SaveEventLinkForRebuild).
type saveFunc func(ctx context.Context, e *db.EventLink) error

// slideEvery is how old a link's window may get before a full round
// re-bases it on today.
const slideEvery = 24 * time.Hour

// resolveRemoved tells the events delta said @removed apart: calendarView
// delta also says so for an event that still exists but moved outside the
// window (api-reference/v1.0/api/event-delta.md), so each one calsync
// knows is looked up: still there is a move (reported as an update with its
// new times), not found is a deletion. Ids calsync never reported need no
// look-up.
func (s *Syncer) resolveRemoved(ctx context.Context, tx *db.Store, sess *outlook.Session, mailbox string, link *db.CalendarLink, ids []string, sc *seriesCache) (moved []outlook.Event, gone []string, err error) {
	done := map[string]bool{}
	for _, id := range ids {
		if done[id] {
			continue
		}
		done[id] = true
		el, err := tx.EventLinkByOutlookID(ctx, link.CompanyID, link.UserID, id)
		if err != nil {
			return nil, nil, err
		}
		if el == nil || el.Deleted {
			continue
		}
		if removed, err := seriesRemovedByHost(ctx, tx, link, el); err != nil {
			return nil, nil, err
		} else if removed {
			gone = append(gone, id) // no look-up: the host removed the whole series
			continue
		}
		// An instance of a series deleted in Outlook: the round's one
		// look-up of the master settles every instance of it, not one GET
		// each.
		var v calendar.Event
		if json.Unmarshal(el.LastKnown, &v) == nil && v.IsInstance() && v.SeriesID != "" {
			ser, err := sc.get(ctx, tx, v.SeriesID)
			if err != nil {
				return nil, nil, err
			}
			if ser.gone {
				gone = append(gone, id)
				continue
			}
		}
		ev, err := sess.GetEvent(ctx, mailbox, id, "")
		switch {
		case err == nil:
			moved = append(moved, ev)
		case outlook.KindOf(err) == outlook.KindNotFound:
			gone = append(gone, id)
		default:
			return nil, nil, err
		}
	}
	return moved, gone, nil
}

// fetch follows a round's pages to its delta link.
func (s *Syncer) fetch(ctx context.Context, sess *outlook.Session, mailbox string, st *db.DeltaState, full bool) (changed []outlook.Event, removed []string, deltaLink string, err error) {
	link := ""
	if !full {
		link = *st.DeltaLink
	}
	for pages := 0; pages < 10_000; pages++ {
		p, err := sess.Delta(ctx, mailbox, link, st.WindowStart, st.WindowEnd, s.PageSize)
		if err != nil {
			return nil, nil, "", err
		}
		changed = append(changed, p.Changed...)
		removed = append(removed, p.Removed...)
		if p.DeltaLink != "" {
			return changed, removed, p.DeltaLink, nil
		}
		if p.NextLink == "" {
			return nil, nil, "", errors.New("delta page without nextLink or deltaLink")
		}
		link = p.NextLink
	}
	return nil, nil, "", errors.New("delta round did not finish")
}

func inWindow(el db.EventLink, st *db.DeltaState) bool {
	var v calendar.Event
	if json.Unmarshal(el.LastKnown, &v) != nil || v.Type == calendar.SeriesMaster {
		return false // a series master is never in a calendar view: its instances are
	}
	start, err1 := time.Parse(time.RFC3339, v.Start)
	if err1 != nil {
		if d, err := time.Parse("2006-01-02", v.Start); err == nil {
			start = d
		} else {
			return false
		}
	}
	return !start.Before(st.WindowStart) && start.Before(st.WindowEnd)
}

// applyChanged records one changed event unless it is calsync's own write
// or a replay; it returns how many change rows it appended. An instance of
// a recurring series is reported with its series (seriesId, the series'
// rule, and the externalId of a series the host pushed); an occurrence of
// a host-pushed series that shows just what the series says is no news.
func (s *Syncer) applyChanged(ctx context.Context, tx *db.Store, link *db.CalendarLink, ev outlook.Event, sc *seriesCache, save saveFunc, feed *feedAppends) (int, bool, error) {
	el, err := tx.EventLinkByOutlookID(ctx, link.CompanyID, link.UserID, ev.ID)
	if err != nil {
		return 0, false, err
	}
	if el != nil && ((el.WrittenChangeKey != nil && *el.WrittenChangeKey == ev.ChangeKey) || (el.KnownChangeKey != nil && *el.KnownChangeKey == ev.ChangeKey)) && !el.Deleted {
		return 0, el.WrittenChangeKey != nil && *el.WrittenChangeKey == ev.ChangeKey, nil // echo or replay
	}
	if el == nil && strings.HasPrefix(ev.TransactionID, calendar.TransactionPrefix) {
		// calsync's own create, seen before the push recorded it: remember
		// it, report nothing (the push attaches its externalId).
		view := calendar.FromOutlook(ev, nil)
		raw, _ := json.Marshal(view)
		el = &db.EventLink{CompanyID: link.CompanyID, UserID: link.UserID, LinkID: &link.ID, OutlookEventID: ev.ID,
			KnownChangeKey: &ev.ChangeKey, WrittenChangeKey: &ev.ChangeKey, LastKnown: raw}
		return 0, true, save(ctx, el)
	}
	var ext *string
	if el != nil {
		ext = el.ExternalID
	}
	var ser *series
	if ev.SeriesMasterID != "" {
		if ser, err = sc.get(ctx, tx, ev.SeriesMasterID); err != nil {
			return 0, false, err
		}
		if ser.gone {
			return 0, false, nil // the series went meanwhile: the next round reports its instances removed
		}
		ext = ser.externalID
	}
	view := calendar.FromOutlook(ev, ext)
	if ser != nil {
		view.RecurrenceRule = ser.rule
	}
	raw, _ := json.Marshal(view)
	changeType, fields := Created, calendar.ChangedFields(calendar.Event{}, view)
	if el != nil && !el.Deleted {
		var before calendar.Event
		_ = json.Unmarshal(el.LastKnown, &before)
		changeType, fields = Updated, calendar.ChangedFields(before, view)
	}
	if el == nil {
		el = &db.EventLink{CompanyID: link.CompanyID, UserID: link.UserID, OutlookEventID: ev.ID}
	}
	el.LinkID, el.KnownChangeKey, el.LastKnown, el.Deleted = &link.ID, &ev.ChangeKey, raw, false
	if ev.ICalUID != "" {
		el.ICalUID = &ev.ICalUID
	}
	if err := save(ctx, el); err != nil {
		return 0, false, err
	}
	if changeType == Updated && len(fields) == 0 {
		return 0, false, nil // a changeKey bump with nothing the host sees
	}
	if ser != nil && ser.hostView != nil && ev.Type == outlook.TypeOccurrence && calendar.SameAsSeries(*ser.hostView, view) {
		return 0, true, nil // the host's own series, as the host wrote it
	}
	c := &db.Change{CompanyID: link.CompanyID, UserID: link.UserID, LinkID: &link.ID, ExternalID: ext,
		OutlookEventID: ev.ID, ChangeType: changeType, ChangedFields: fields, Event: raw}
	*feed = append(*feed, c)
	return 1, false, nil
}

// series is what a round knows of one recurring series its instances
// belong to: looked up once per round (one GET of the master).
type series struct {
	gone       bool
	rule       string
	externalID *string         // of a series the host pushed
	hostView   *calendar.Event // the series as calsync last wrote or knew it
	master     *db.EventLink
	changeKey  string
}

// seriesCache looks up series masters for one round.
type seriesCache struct {
	sess    *outlook.Session
	mailbox string
	link    *db.CalendarLink
	byID    map[string]*series
}

func (c *seriesCache) get(ctx context.Context, tx *db.Store, masterID string) (*series, error) {
	if s := c.byID[masterID]; s != nil {
		return s, nil
	}
	s := &series{}
	m, err := c.sess.GetEvent(ctx, c.mailbox, masterID, "")
	switch {
	case outlook.KindOf(err) == outlook.KindNotFound:
		s.gone = true
	case err != nil:
		return nil, fmt.Errorf("reading series %s: %w", masterID, err)
	default:
		s.rule, s.changeKey = calendar.FromOutlook(m, nil).RecurrenceRule, m.ChangeKey
	}
	el, err := tx.EventLinkByOutlookID(ctx, c.link.CompanyID, c.link.UserID, masterID)
	if err != nil {
		return nil, err
	}
	if el != nil && !el.Deleted && el.ExternalID != nil {
		var v calendar.Event
		_ = json.Unmarshal(el.LastKnown, &v)
		s.externalID, s.hostView, s.master = el.ExternalID, &v, el
	}
	c.byID[masterID] = s
	return s, nil
}

// saveMasters records, for each series the host pushed, the master's
// changeKey when Outlook changed it (an instance edited, cancelled, or the
// series edited there): the host's next push of it is then checked against
// that version, as for any Outlook-side edit.
func (c *seriesCache) saveMasters(ctx context.Context, tx *db.Store) error {
	for _, s := range c.byID {
		el := s.master
		if el == nil || s.gone || s.changeKey == "" || deref(el.KnownChangeKey) == s.changeKey {
			continue
		}
		ck := s.changeKey
		el.KnownChangeKey = &ck
		s.hostView.Version = ck
		el.LastKnown, _ = json.Marshal(s.hostView)
		if err := tx.SaveEventLink(ctx, el); err != nil {
			return err
		}
	}
	return nil
}

// seriesRemovedByHost says whether el is an instance of a series the host
// pushed and then deleted or replaced: its removal is the host's own doing.
func seriesRemovedByHost(ctx context.Context, tx *db.Store, link *db.CalendarLink, el *db.EventLink) (bool, error) {
	var v calendar.Event
	if json.Unmarshal(el.LastKnown, &v) != nil || !v.IsInstance() || v.ExternalID == nil {
		return false, nil
	}
	master, err := tx.EventLinkByOutlookID(ctx, link.CompanyID, link.UserID, v.SeriesID)
	if err != nil {
		return false, err
	}
	return master == nil || master.Deleted, nil
}

func (s *Syncer) applyRemoved(ctx context.Context, tx *db.Store, link *db.CalendarLink, id string, save saveFunc, feed *feedAppends) (int, error) {
	el, err := tx.EventLinkByOutlookID(ctx, link.CompanyID, link.UserID, id)
	if err != nil || el == nil || el.Deleted {
		return 0, err // never seen, or already reported
	}
	el.Deleted = true
	if err := save(ctx, el); err != nil {
		return 0, err
	}
	ext := el.ExternalID
	var v calendar.Event
	if json.Unmarshal(el.LastKnown, &v) == nil && v.IsInstance() {
		// One instance of a series: reported with the series' externalId,
		// unless the host removed or replaced the whole series itself.
		if byHost, err := seriesRemovedByHost(ctx, tx, link, el); err != nil || byHost {
			return 0, err
		}
		ext = v.ExternalID
	}
	c := &db.Change{CompanyID: link.CompanyID, UserID: link.UserID, LinkID: &link.ID, ExternalID: ext,
		OutlookEventID: id, ChangeType: Deleted, ChangedFields: []string{"deleted"}}
	*feed = append(*feed, c)
	return 1, nil
}

// feedAppends are the changes a round reports, appended to the feed as
// its last write (append).
type feedAppends []*db.Change

// append adds the round's changes to the feed in one INSERT, under the
// feed's lock (db.Store.LockFeed), which every round reporting a change
// takes and holds to its commit. Taken last, the lock covers that INSERT
// and the commit only: taken before the round's other writes (event links,
// the mirror, series lookups through Graph, the delta state), it queued
// every other mailbox's round behind them, and a slow commit or lookup
// stalled them all (edits 100-400 ms late in the sync-back bench, with
// the worker's slots full of rounds waiting for the lock).
//
// Traced, the append is a span of the round, and its context is stored
// with each change: the websocket send and the host webhook POST that
// deliver it continue the same trace.
func (f feedAppends) append(ctx context.Context, tx *db.Store) error {
	if len(f) == 0 {
		return nil
	}
	if err := tx.LockFeed(ctx); err != nil {
		return err
	}
	if !tracing.Enabled() {
		return tx.InsertChanges(ctx, f)
	}
	ctx, span := tracing.Start(ctx, "feed.append", trace.WithAttributes(
		attribute.String("calsync.change_type", f[0].ChangeType), attribute.Int("calsync.changes", len(f))))
	defer span.End()
	tp := tracing.Traceparent(ctx)
	for _, c := range f {
		c.Traceparent = tp
	}
	err := tx.InsertChanges(ctx, f)
	if err != nil {
		span.SetStatus(codes.Error, "not appended")
	} else {
		span.SetAttributes(attribute.Int64("calsync.cursor", f[len(f)-1].Cursor))
	}
	return err
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
