package calendar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/echoes"
	"github.com/tehaishokunin/calsync/internal/hostid"
	"github.com/tehaishokunin/calsync/outlook"
)

// ExternalIDProperty is the single-value extended property that tags every
// event calsync creates with the host's id, so a lost event link can be
// re-found in Outlook.
const ExternalIDProperty = "String {7e2b4f35-2c1d-4a8e-9b61-3f0c5d9e8a17} Name calsyncExternalId"

// Service pushes the host's schedule entries into Outlook.
type Service struct {
	store    *db.Store
	sessions *credentials.Sessions
	log      *slog.Logger
	now      func() time.Time
	// steps times each step of a single upsert (nil: not observed).
	steps *prometheus.HistogramVec
	// echoes is told of each write in flight and each version recorded
	// (nil: nobody listens).
	echoes *echoes.Memory
}

// RememberWrites tells m of each write to a mailbox while it is in flight,
// and of each single event's version once it is recorded, so the receiver
// sharing m knows the echoes of this replica's pushes (see package
// echoes). Call it before the first push.
func (s *Service) RememberWrites(m *echoes.Memory) { s.echoes = m }

// The steps of a single upsert that ObserveSteps times.
const (
	stepLockRead = "lock_read" // the entry's lock and the read of link, credentials and event link
	stepPlan     = "plan"      // deciding what to send (a Graph search when calsync lost the event link)
	stepGraph    = "graph"     // the create, update or delete calls to Graph
	stepSave     = "save"      // storing the event link and its mirror row (a durable commit)
)

// ObserveSteps exposes calsync_push_step_seconds on reg: the time each
// step of a single upsert takes, so an operator (and the benchmark) can
// see where a push's time goes.
func (s *Service) ObserveSteps(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	s.steps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "calsync_push_step_seconds",
		Help:    "Time of each step of a single upsert: lock_read, plan, graph, save.",
		Buckets: []float64{.00025, .0005, .001, .002, .004, .008, .016, .032, .064, .128, .256, .512, 1, 2.5, 5},
	}, []string{"step"})
	reg.MustRegister(s.steps)
}

// observe records a step that began at since; it returns now, for the
// next. A zero since is a push not timed (a bulk one): nothing is recorded
// and zero is returned.
func (s *Service) observe(step string, since time.Time) time.Time {
	if since.IsZero() {
		return since
	}
	now := time.Now()
	if s.steps != nil {
		s.steps.WithLabelValues(step).Observe(now.Sub(since).Seconds())
	}
	return now
}

// NewService builds the service.
func NewService(store *db.Store, sessions *credentials.Sessions, log *slog.Logger) *Service {
	return &Service{store: store, sessions: sessions, log: log, now: time.Now}
}

// Pushed is an entry as it stands in Outlook after a push.
type Pushed struct {
	Event        Event
	WebLink      string
	LastSyncedAt *time.Time
}

// Errors of pushing.
var (
	ErrNotLinked = apperr.New(apperr.NotLinked,
		"このユーザーはカレンダー連携されていません。ユーザー管理でカレンダー連携を設定してください。",
		"This user's calendar is not linked; set カレンダー連携 in user management first.").WithField("userId")
	ErrNotFound = apperr.New(apperr.NotFound, "予定が見つかりません。", "No such calendar entry.").WithField("externalId")
)

// lock serialises work on the company's entries, in this process and
// across replicas (db.LockKeys). The returned function releases them.
func (s *Service) lock(ctx context.Context, companyID string, externalIDs ...string) (func(), error) {
	return s.store.LockKeys(ctx, entryKeys(companyID, externalIDs...)...)
}

// entryKeys are the lock keys of the company's entries.
func entryKeys(companyID string, externalIDs ...string) []string {
	keys := make([]string, len(externalIDs))
	for i, id := range externalIDs {
		keys[i] = "entry\x00" + companyID + "\x00" + id
	}
	return keys
}

// checkIDs refuses unusable ids before they reach a lock or the database.
func checkIDs(userID string, externalID ...string) error {
	if err := hostid.Check("userId", userID); err != nil {
		return err
	}
	for _, id := range externalID {
		if err := hostid.Check("externalId", id); err != nil {
			return err
		}
	}
	return nil
}

// target is a linked user's mailbox and Graph session.
type target struct {
	link    *db.CalendarLink
	sess    *outlook.Session
	mailbox string
	// entry is the pushed entry's event link as read with the target
	// (prepare), for the first plan to use instead of reading it again.
	entry     *db.EventLink
	entryRead bool
}

func (s *Service) target(ctx context.Context, companyID, userID string) (*target, error) {
	l, err := s.store.Link(ctx, companyID, userID)
	if err != nil {
		return nil, err
	}
	if l == nil || l.Provider != db.ProviderOutlook {
		return nil, ErrNotLinked
	}
	mb, err := s.sessions.Mailbox(ctx, l)
	if err != nil {
		return nil, err
	}
	return &target{link: l, sess: mb.Session, mailbox: mb.ID}, nil
}

// prepare locks the entry (see lock) and reads what pushing it needs —
// the link, the credentials and the entry's event link — in one round trip
// for all of it, then opens the session. release frees the lock; it is nil
// when prepare fails.
func (s *Service) prepare(ctx context.Context, companyID, userID, externalID string) (t *target, release func(), err error) {
	st, release, err := s.store.LockPushState(ctx, entryKeys(companyID, externalID), companyID, userID, externalID)
	if err != nil {
		return nil, nil, err
	}
	if t, err = s.targetOf(st); err != nil {
		release()
		return nil, nil, err
	}
	return t, release, nil
}

// targetOf opens the session of a push state read with the lock; the
// target carries the entry's event link for the first plan.
func (s *Service) targetOf(st db.PushState) (*target, error) {
	if st.Link == nil || st.Link.Provider != db.ProviderOutlook {
		return nil, ErrNotLinked
	}
	mb, err := s.sessions.MailboxWith(st.Credential, st.Link)
	if err != nil {
		return nil, err
	}
	return &target{link: st.Link, sess: mb.Session, mailbox: mb.ID, entry: st.Event, entryRead: true}, nil
}

// TransactionPrefix starts the transactionId of every event calsync creates,
// so sync-back can tell calsync's own creations from the user's.
const TransactionPrefix = "calsync-"

// transactionID is stable per (company, externalId) so a create retried
// after a lost response returns the first event instead of a second one.
func transactionID(companyID, externalID string, generation int) string {
	h := sha256.Sum256([]byte(companyID + "\x00" + externalID + "\x00" + strconv.Itoa(generation)))
	return TransactionPrefix + hex.EncodeToString(h[:16])
}

func outlookEvent(e Entry, txn string) outlook.Event {
	return outlook.Event{
		Subject: e.Subject, Body: e.Body, Location: e.Location, Start: e.Start, End: e.End, TimeZone: windowsName(e.Zone),
		IsAllDay: e.IsAllDay, ShowAs: e.ShowAs, Sensitivity: e.Sensitivity, Categories: e.Categories, ReminderMinutes: e.ReminderMinutes,
		ExtendedProperties: map[string]string{ExternalIDProperty: e.ExternalID}, TransactionID: txn, Recurrence: e.Recurrence,
	}
}

// windowsName is the Windows zone of an entry's zone (Validate refused
// zones without one).
func windowsName(loc *time.Location) string {
	w, _ := WindowsZone(loc.String())
	return w
}

// graphFields maps the host's changed fields to Graph's PATCH fields. A
// series' range starts on the date of its start, so moving a series sends
// its recurrence again.
func graphFields(changed []string, series bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(g string) {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	for _, c := range changed {
		switch c {
		case "start", "end", "timeZone", "isAllDay":
			add("start")
			if series {
				add("recurrence")
			}
		case "recurrenceRule":
			add("recurrence")
		default:
			add(c)
		}
	}
	return out
}

// plan is what one upsert needs to do.
type plan struct {
	entry   Entry
	el      *db.EventLink
	create  bool
	fields  []string // for an update
	ifMatch string
	noop    bool
	gen     int
	// merged: the update was merged with an Outlook-side edit calsync had
	// not seen (knownBefore is the version it had).
	merged      bool
	knownBefore *string
	// recreate: a series becomes a single event, which Graph's PATCH
	// cannot say (clearing recurrence needs a null the SDK does not
	// send): the series is deleted and the entry created again.
	recreate bool
}

// Upsert creates or updates one entry in the user's Outlook calendar.
func (s *Service) Upsert(ctx context.Context, companyID, userID string, in Input) (*Pushed, error) {
	if err := checkIDs(userID); err != nil {
		return nil, err
	}
	e, err := Validate(in, "input.")
	if err != nil {
		return nil, err
	}
	began := time.Now()
	t, release, err := s.prepare(ctx, companyID, userID, e.ExternalID)
	if err != nil {
		return nil, err
	}
	defer release()
	began = s.observe(stepLockRead, began)
	p, err := s.plan(ctx, companyID, t, e, true)
	if err != nil {
		return nil, err
	}
	began = s.observe(stepPlan, began)
	if p.noop {
		return s.pushed(t, p.el)
	}
	return s.execute(ctx, companyID, t, p, began)
}

// execute carries out a plan that is not a no-op, one Graph call at a time;
// began is when its Graph step starts (for ObserveSteps; zero: not timed).
func (s *Service) execute(ctx context.Context, companyID string, t *target, p *plan, began time.Time) (*Pushed, error) {
	defer s.echoes.Begin(t.link.ID).End()
	var ev outlook.Event
	var err error
	e := p.entry
	switch {
	case p.recreate:
		if err = t.sess.DeleteEvent(ctx, t.mailbox, p.el.OutlookEventID); err != nil && outlook.KindOf(err) != outlook.KindNotFound {
			return nil, s.pushError(ctx, companyID, t, p, err)
		}
		p.create, p.gen = true, int(p.el.UpdatedAt.UnixMilli()%1_000_000_000)+1
		ev, err = s.createWithRetry(ctx, t, p)
	case p.create:
		ev, err = s.createWithRetry(ctx, t, p)
	default:
		ev, err = t.sess.UpdateEvent(ctx, t.mailbox, p.el.OutlookEventID, outlookEvent(e, ""), p.fields, p.ifMatch)
		if outlook.KindOf(err) == outlook.KindConflict && !e.Force {
			ev, err = s.merge(ctx, t, p)
		}
		if outlook.KindOf(err) == outlook.KindNotFound {
			// Deleted in Outlook meanwhile: the host's entry wins, make it again.
			p.create, p.gen = true, p.gen+1
			ev, err = s.createWithRetry(ctx, t, p)
		}
	}
	if err != nil {
		return nil, s.pushError(ctx, companyID, t, p, err)
	}
	began = s.observe(stepGraph, began)
	el, err := s.record(ctx, t, p, ev)
	if err != nil {
		return nil, err
	}
	s.observe(stepSave, began)
	return s.pushed(t, el)
}

func (s *Service) createWithRetry(ctx context.Context, t *target, p *plan) (outlook.Event, error) {
	txn := transactionID(t.link.CompanyID, p.entry.ExternalID, p.gen)
	ev, err := t.sess.CreateEvent(ctx, t.mailbox, outlookEvent(p.entry, txn))
	for attempt := 0; attempt < 2 && err != nil && (outlook.KindOf(err) == outlook.KindUnreachable || outlook.KindOf(err) == outlook.KindUnavailable || outlook.KindOf(err) == outlook.KindUnknown); attempt++ {
		// The response may be lost after Graph made the event; the same
		// transactionId returns that event instead of a duplicate.
		s.log.InfoContext(ctx, "retrying event create with the same transactionId", slog.String("error", err.Error()))
		ev, err = t.sess.CreateEvent(ctx, t.mailbox, outlookEvent(p.entry, txn))
	}
	if outlook.KindOf(err) == outlook.KindDuplicateTransaction {
		return s.recoverDuplicate(ctx, t, p)
	}
	return ev, err
}

// recoverDuplicate handles a create whose transactionId Exchange already
// used for an event with another body (a create whose answer was lost,
// then the entry changed): the plan is made again with adoption, which
// finds that event by its externalId property, and the update it plans
// brings it to the entry as it is now, so Outlook never keeps the stale
// version and no duplicate is made. p becomes the new plan.
func (s *Service) recoverDuplicate(ctx context.Context, t *target, p *plan) (outlook.Event, error) {
	np, err := s.plan(ctx, t.link.CompanyID, t, p.entry, true)
	if err != nil {
		return outlook.Event{}, err
	}
	if np.create {
		return outlook.Event{}, fmt.Errorf("transactionId already used but no event carries externalId %q", p.entry.ExternalID)
	}
	*p = *np
	s.log.InfoContext(ctx, "create answered ErrorDuplicateTransactionId; updating the event it made", slog.String("event", p.el.OutlookEventID))
	return t.sess.UpdateEvent(ctx, t.mailbox, p.el.OutlookEventID, outlookEvent(p.entry, ""), p.fields, p.ifMatch)
}

// plan decides between create, update and nothing, adopting a tagged event
// when calsync's own record of it was lost.
func (s *Service) plan(ctx context.Context, companyID string, t *target, e Entry, adopt bool) (*plan, error) {
	p := &plan{entry: e}
	el := t.entry
	if !t.entryRead {
		var err error
		if el, err = s.store.EventLinkByExternalID(ctx, companyID, e.ExternalID); err != nil {
			return nil, err
		}
	}
	// Read once: a second plan (after a failed create) reads afresh.
	t.entry, t.entryRead = nil, false
	if el != nil && el.UserID != t.link.UserID {
		// Reassigned to another user: remove it from the previous calendar.
		if err := s.deleteOutlook(ctx, companyID, el); err != nil {
			return nil, err
		}
		if err := s.store.DeleteEventLink(ctx, el.ID); err != nil {
			return nil, err
		}
		el = nil
	}
	if el == nil && adopt {
		found, err := t.sess.FindEventsByProperty(ctx, t.mailbox, ExternalIDProperty, e.ExternalID)
		if err != nil {
			return nil, s.graphError(ctx, companyID, err)
		}
		if len(found) > 0 {
			adopted := FromOutlook(found[0], &e.ExternalID)
			raw, _ := json.Marshal(adopted)
			// Sync-back may already know the event (without its externalId).
			el, err = s.store.EventLinkByOutlookID(ctx, companyID, t.link.UserID, found[0].ID)
			if err != nil {
				return nil, err
			}
			if el == nil {
				el = &db.EventLink{CompanyID: companyID, UserID: t.link.UserID, OutlookEventID: found[0].ID}
			}
			el.LinkID, el.ExternalID, el.Deleted = &t.link.ID, &e.ExternalID, false
			el.KnownChangeKey, el.WrittenChangeKey, el.LastKnown = &found[0].ChangeKey, &found[0].ChangeKey, raw
			if found[0].ICalUID != "" {
				el.ICalUID = &found[0].ICalUID
			}
			if err := s.store.SaveEventLink(ctx, el); err != nil {
				return nil, err
			}
			s.log.InfoContext(ctx, "adopted existing Outlook event", slog.String("company", companyID), slog.Int64("event_link", el.ID))
		}
	}
	p.el = el
	if el == nil || el.Deleted {
		p.create = true
		if el != nil {
			p.gen = int(el.UpdatedAt.Unix()) // a new transactionId for a re-creation
		}
		return p, nil
	}
	// Three-way: base is what calsync last wrote or reported (LastKnown),
	// ours the host's input; only the host's fields it changed are sent,
	// with If-Match on the base version. Outlook-side edits since then
	// surface as a 412, and merge decides (see merge).
	var before Event
	_ = json.Unmarshal(el.LastKnown, &before)
	want := e.View()
	changed := ChangedFields(before, want)
	if len(changed) == 0 {
		p.noop = true
		return p, nil
	}
	if before.RecurrenceRule != "" && want.RecurrenceRule == "" {
		p.recreate = true
		return p, nil
	}
	p.fields = graphFields(changed, e.Recurrence != nil)
	if !e.Force {
		p.ifMatch = deref(el.KnownChangeKey)
	}
	return p, nil
}

func conflict(outlookVersion Event, version string, fields []string) error {
	return apperr.New(apperr.Conflict,
		"Outlook 側で同じ項目（"+strings.Join(fields, ", ")+"）が変更されています。最新の内容を確認してから baseVersion を指定して再送するか、force: true で上書きしてください。",
		"The same fields ("+strings.Join(fields, ", ")+") were changed in Outlook. Review the current version and resend with baseVersion, or overwrite with force: true.").
		WithField("input.baseVersion").WithExtra("outlookVersion", version).WithExtra("outlookEvent", outlookVersion).
		WithExtra("conflictingFields", fields)
}

// fieldGroups are the host's fields as Outlook changes them together: a
// start, end, zone or all-day change is one change of the event's time
// (Graph takes start and end together).
var fieldGroups = [][]string{{"start", "end", "timeZone", "isAllDay"}, {"subject"}, {"body"}, {"location"},
	{"showAs"}, {"sensitivity"}, {"categories"}, {"recurrenceRule"}}

// Conflicting lists the host's changed fields (base -> ours) whose group
// Outlook also changed (base -> theirs) to something else than ours.
func Conflicting(base, ours, theirs Event) []string {
	host, outl, differ := ChangedFields(base, ours), ChangedFields(base, theirs), ChangedFields(theirs, ours)
	var out []string
	for _, g := range fieldGroups {
		in := func(list []string) bool {
			return slices.ContainsFunc(g, func(f string) bool { return slices.Contains(list, f) })
		}
		if in(host) && in(outl) && in(differ) {
			for _, f := range g {
				if slices.Contains(host, f) {
					out = append(out, f)
				}
			}
		}
	}
	return out
}

// merge handles an update Graph refused with 412: Outlook changed the event
// since the version calsync last wrote or reported. It reads Outlook's
// version (theirs) and decides per field, three-way: CONFLICT only when a
// field the host is changing was also changed in Outlook to something else
// (unless the host's baseVersion is that version); otherwise it PATCHes
// only the host's changed fields that Outlook does not already hold, and
// Outlook keeps its own edits.
func (s *Service) merge(ctx context.Context, t *target, p *plan) (outlook.Event, error) {
	var base Event
	_ = json.Unmarshal(p.el.LastKnown, &base)
	ours := p.entry.View()
	p.merged, p.knownBefore = true, p.el.KnownChangeKey
	for attempt := 0; ; attempt++ {
		cur, err := t.sess.GetEvent(ctx, t.mailbox, p.el.OutlookEventID, "")
		if err != nil {
			return outlook.Event{}, err
		}
		theirs := FromOutlook(cur, p.el.ExternalID)
		b := base
		if p.entry.BaseVersion == cur.ChangeKey {
			b = theirs // the host has seen this version: its input wins
		}
		if fields := Conflicting(b, ours, theirs); len(fields) > 0 {
			return outlook.Event{}, conflict(theirs, cur.ChangeKey, fields)
		}
		var send []string
		outlookDiffers := ChangedFields(theirs, ours)
		for _, f := range ChangedFields(b, ours) {
			if slices.Contains(outlookDiffers, f) {
				send = append(send, f)
			}
		}
		if len(send) == 0 {
			return cur, nil // Outlook already holds the host's fields
		}
		p.fields, p.ifMatch = graphFields(send, p.entry.Recurrence != nil), cur.ChangeKey
		ev, err := t.sess.UpdateEvent(ctx, t.mailbox, p.el.OutlookEventID, outlookEvent(p.entry, ""), p.fields, p.ifMatch)
		if outlook.KindOf(err) != outlook.KindConflict || attempt == 2 {
			return ev, err
		}
	}
}

// record stores what calsync wrote: the desired view and the changeKey
// Graph returned, so the echo of this write is recognised.
func (s *Service) record(ctx context.Context, t *target, p *plan, ev outlook.Event) (*db.EventLink, error) {
	view := p.entry.View()
	view.ReminderMinutes = ev.ReminderMinutes // the user's own after creation: as Outlook has it
	view.ExternalID, view.OutlookEventID, view.ICalUID, view.Version = &p.entry.ExternalID, ev.ID, ev.ICalUID, ev.ChangeKey
	if !ev.LastModified.IsZero() {
		lm := ev.LastModified
		view.LastModifiedAt = &lm
	}
	raw, _ := json.Marshal(view)
	el := p.el
	if el == nil {
		// Sync-back may have recorded the new event already (its
		// notification can beat this answer).
		existing, err := s.store.EventLinkByOutlookID(ctx, t.link.CompanyID, t.link.UserID, ev.ID)
		if err != nil {
			return nil, err
		}
		el = existing
	}
	if el == nil {
		el = &db.EventLink{CompanyID: t.link.CompanyID, UserID: t.link.UserID}
	}
	el.ExternalID = &p.entry.ExternalID
	el.LinkID, el.OutlookEventID, el.Deleted = &t.link.ID, ev.ID, false
	el.WrittenChangeKey, el.KnownChangeKey, el.LastKnown = &ev.ChangeKey, &ev.ChangeKey, raw
	if p.merged {
		// Outlook now holds the host's fields over an Outlook-side edit
		// calsync has not reported yet. The stored view is the host's;
		// neither changeKey is Outlook's, so sync-back compares Outlook's
		// version with it and reports the user's edit, and the next push
		// merges again.
		el.WrittenChangeKey, el.KnownChangeKey = nil, p.knownBefore
	}
	if ev.ICalUID != "" {
		el.ICalUID = &ev.ICalUID
	}
	if err := s.store.SaveEventLink(ctx, el); err != nil {
		return nil, err
	}
	if !p.merged && view.Type == SingleInstance {
		// Committed: Graph's notification of this version tells calsync
		// nothing. A merged write's is not remembered (sync-back reports
		// the Outlook edit under it), nor a series' (a round lists its
		// instances), as the claim's echo check (db.ClaimInbox) does.
		s.echoes.Remember(t.link.ID, ev.ID, ev.ChangeKey)
	}
	return el, nil
}

func (s *Service) pushed(t *target, el *db.EventLink) (*Pushed, error) {
	var v Event
	if err := json.Unmarshal(el.LastKnown, &v); err != nil {
		return nil, fmt.Errorf("reading stored event: %w", err)
	}
	v.ExternalID, v.OutlookEventID, v.Version = el.ExternalID, el.OutlookEventID, deref(el.KnownChangeKey)
	if el.ICalUID != nil {
		v.ICalUID = *el.ICalUID
	}
	return &Pushed{Event: v, WebLink: webLink(el.OutlookEventID), LastSyncedAt: t.link.LastSyncedAt}, nil
}

// webLink opens the event in Outlook on the web.
func webLink(id string) string {
	return "https://outlook.office365.com/owa/?itemid=" + id + "&exvsurl=1&path=/calendar/item"
}

// pushError maps a failed write; a 412 fetches Outlook's version for the
// CONFLICT answer.
func (s *Service) pushError(ctx context.Context, companyID string, t *target, p *plan, err error) error {
	if outlook.KindOf(err) == outlook.KindConflict && p.el != nil {
		// Still changing under three merge attempts.
		cur, gerr := t.sess.GetEvent(ctx, t.mailbox, p.el.OutlookEventID, "")
		if gerr == nil {
			return conflict(FromOutlook(cur, p.el.ExternalID), cur.ChangeKey, p.fields)
		}
	}
	return s.graphError(ctx, companyID, err)
}

// graphError is what the host is told of a failed Graph call (one mapping
// for every service: credentials.Sessions.UserError).
func (s *Service) graphError(ctx context.Context, companyID string, err error) error {
	return s.sessions.UserError(ctx, companyID, err, "")
}

// Get returns a pushed entry as calsync last knows it.
func (s *Service) Get(ctx context.Context, companyID, userID, externalID string) (*Pushed, error) {
	if err := checkIDs(userID, externalID); err != nil {
		return nil, err
	}
	el, err := s.store.EventLinkByExternalID(ctx, companyID, externalID)
	if err != nil {
		return nil, err
	}
	if el == nil || el.UserID != userID || el.Deleted {
		return nil, nil
	}
	l, err := s.store.Link(ctx, companyID, userID)
	if err != nil {
		return nil, err
	}
	t := &target{link: l}
	if l == nil {
		t.link = &db.CalendarLink{}
	}
	return s.pushed(t, el)
}

// Delete removes a pushed entry from Outlook; already gone counts as done,
// and events calsync did not create are never touched.
func (s *Service) Delete(ctx context.Context, companyID, userID, externalID string) (bool, error) {
	if err := checkIDs(userID, externalID); err != nil {
		return false, err
	}
	st, release, err := s.store.LockPushState(ctx, entryKeys(companyID, externalID), companyID, userID, externalID)
	if err != nil {
		return false, err
	}
	defer release()
	el := st.Event
	if el == nil || el.UserID != userID {
		return true, nil
	}
	if !el.Deleted {
		t, err := s.targetOf(st)
		if err == nil {
			err = s.deleteIn(ctx, companyID, t, el)
		}
		if err != nil && !errors.Is(err, ErrNotLinked) { // unlinked since: no longer ours to change
			return false, err
		}
	}
	return true, s.store.DeleteEventLink(ctx, el.ID)
}

func (s *Service) deleteOutlook(ctx context.Context, companyID string, el *db.EventLink) error {
	if el.Deleted {
		return nil
	}
	t, err := s.target(ctx, companyID, el.UserID)
	if errors.Is(err, ErrNotLinked) {
		return nil // unlinked since: the calendar is no longer ours to change
	}
	if err != nil {
		return err
	}
	return s.deleteIn(ctx, companyID, t, el)
}

// deleteIn deletes an entry's event from the target's calendar; already
// gone counts as done.
func (s *Service) deleteIn(ctx context.Context, companyID string, t *target, el *db.EventLink) error {
	err := t.sess.DeleteEvent(ctx, t.mailbox, el.OutlookEventID)
	switch outlook.KindOf(err) {
	case outlook.KindNotFound, outlook.KindSyncReset:
		return nil
	}
	if err != nil {
		return s.graphError(ctx, companyID, err)
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
