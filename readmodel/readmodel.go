// Package readmodel answers the host's questions about its users'
// calendars — who is busy when, and every event in a range — from
// calsync's own mirror of them (kept by the delta rounds, see db's
// mirror_events), never by asking Graph: an answer for hundreds of users
// costs a few milliseconds and no Graph request, and a throttled or
// unreachable Graph does not stop it. Each answer says when the mirror
// last matched Outlook (syncedAt) and the link's status, so the host can
// tell a fresh answer from a stale one.
package readmodel

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/hostid"
	"github.com/tehaishokunin/calsync/internal/schedule"
)

// Bounds of one question.
const (
	MaxUsers     = 500
	MaxRange     = 62 * 24 * time.Hour
	DefaultFirst = 50
	MaxFirst     = 200
)

// Service reads the mirror.
type Service struct {
	store   *db.Store
	cursors *cursor.Codec
}

// New builds the read side over store; cursors seal event-page positions.
func New(store *db.Store, cursors *cursor.Codec) *Service {
	return &Service{store: store, cursors: cursors}
}

// Busy is one stretch of busy time of one showAs.
type Busy struct {
	Start, End time.Time
	ShowAs     string
}

// Availability is one user's answer.
type Availability struct {
	UserID   string
	Provider string // db.ProviderNone for a user who is not linked
	Status   *string
	SyncedAt *time.Time
	Busy     []Busy
}

// Availability answers, for each user in the order asked, when they are
// busy in [start, end): their events other than FREE, clipped to the range,
// merged where events of the same showAs overlap or touch, by start. A
// user who is not linked gets no busy time and provider NONE.
func (s *Service) Availability(ctx context.Context, companyID string, userIDs []string, start, end time.Time) ([]Availability, error) {
	if len(userIDs) > MaxUsers {
		return nil, apperr.New(apperr.InvalidInput,
			fmt.Sprintf("userIds は %d 人までにしてください（%d 人が指定されました）。", MaxUsers, len(userIDs)),
			fmt.Sprintf("userIds holds at most %d users (%d given).", MaxUsers, len(userIDs))).WithField("userIds")
	}
	for _, id := range userIDs {
		if err := hostid.Check("userIds", id); err != nil {
			return nil, err
		}
	}
	if err := checkRange(start, end); err != nil {
		return nil, err
	}
	// The links and their busy rows are read at once, on two connections:
	// BusyTimes finds the links itself. Each read sees its own snapshot; a
	// link that changes between them shows either state, as it would a
	// moment earlier or later.
	ids := unique(userIDs)
	type busyRead struct {
		rows []db.Busy
		err  error
	}
	read := make(chan busyRead, 1)
	go func() {
		rows, err := s.store.BusyTimes(ctx, companyID, ids, start, end)
		read <- busyRead{rows, err}
	}()
	links, err := s.store.LinkStates(ctx, companyID, ids)
	got := <-read
	if err != nil {
		return nil, err
	}
	if got.err != nil {
		return nil, got.err
	}
	busy := got.rows
	byUser := make(map[string]*db.LinkState, len(links))
	for i := range links {
		if l := &links[i]; l.Provider != db.ProviderNone {
			byUser[l.UserID] = l
		}
	}
	// Each link's intervals are a run of one backing array, merged in
	// place: appending per link grew a slice per link (a fifth of an
	// answer's garbage).
	slices.SortFunc(busy, func(a, b db.Busy) int { return cmp.Compare(a.LinkID, b.LinkID) })
	all := make([]Busy, len(busy))
	byLink := make(map[int64][]Busy, len(byUser))
	for i := 0; i < len(busy); {
		j := i
		for ; j < len(busy) && busy[j].LinkID == busy[i].LinkID; j++ {
			all[j] = Busy{Start: busy[j].Start, End: busy[j].End, ShowAs: busy[j].ShowAs} // UTC already
		}
		byLink[busy[i].LinkID] = Merge(all[i:j:j])
		i = j
	}
	out := make([]Availability, len(userIDs))
	for i, id := range userIDs {
		out[i] = Availability{UserID: id, Provider: db.ProviderNone, Busy: []Busy{}}
		l := byUser[id]
		if l == nil {
			continue
		}
		st := l.Status
		out[i].Provider, out[i].Status, out[i].SyncedAt = l.Provider, &st, l.LastSyncedAt
		if b := byLink[l.ID]; b != nil {
			out[i].Busy = b
		}
	}
	return out, nil
}

// Merge joins the intervals of the same showAs that overlap or touch and
// sorts the result by start (then showAs). It reuses in's storage.
func Merge(in []Busy) []Busy {
	slices.SortFunc(in, func(a, b Busy) int {
		if a.ShowAs != b.ShowAs {
			return strings.Compare(a.ShowAs, b.ShowAs)
		}
		return a.Start.Compare(b.Start)
	})
	out := in[:0]
	for _, b := range in {
		if n := len(out); n > 0 && out[n-1].ShowAs == b.ShowAs && !b.Start.After(out[n-1].End) {
			if b.End.After(out[n-1].End) {
				out[n-1].End = b.End
			}
			continue
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b Busy) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ShowAs, b.ShowAs)
	})
	return out
}

// Page is one page of a user's events.
type Page struct {
	Events    []schedule.Event
	Cursors   []string
	HasNext   bool
	EndCursor string
}

// Events lists the user's events overlapping [start, end), in start order
// (an event of no length: those happening in it), first at a time after
// the cursor after. A user who is not linked has none.
func (s *Service) Events(ctx context.Context, companyID, userID string, start, end time.Time, first int, after string) (*Page, error) {
	if err := hostid.Check("userId", userID); err != nil {
		return nil, err
	}
	if err := checkRange(start, end); err != nil {
		return nil, err
	}
	if first == 0 {
		first = DefaultFirst
	}
	if first < 1 || first > MaxFirst {
		return nil, apperr.New(apperr.InvalidInput, fmt.Sprintf("first は 1〜%d で指定してください。", MaxFirst),
			fmt.Sprintf("first must be between 1 and %d.", MaxFirst)).WithField("first")
	}
	var pos *db.MirrorPos
	if after != "" {
		p, err := s.decodePos(companyID, after)
		if err != nil {
			return nil, err
		}
		pos = &p
	}
	out := &Page{Events: []schedule.Event{}}
	l, err := s.store.Link(ctx, companyID, userID)
	if err != nil || l == nil || l.Provider == db.ProviderNone {
		return out, err
	}
	evs, more, err := s.store.MirrorEvents(ctx, l.ID, start, end, pos, first)
	if err != nil {
		return nil, err
	}
	out.HasNext = more
	for _, e := range evs {
		var v schedule.Event
		if err := json.Unmarshal(e.View, &v); err != nil {
			return nil, fmt.Errorf("reading mirrored event %d: %w", e.EventLinkID, err)
		}
		out.Events = append(out.Events, v)
		out.Cursors = append(out.Cursors, s.encodePos(companyID, db.MirrorPos{Start: e.Start, EventLinkID: e.EventLinkID}))
	}
	if n := len(out.Cursors); n > 0 {
		out.EndCursor = out.Cursors[n-1]
	}
	return out, nil
}

// checkRange bounds [start, end): not empty, at most MaxRange.
func checkRange(start, end time.Time) error {
	if !end.After(start) {
		return apperr.New(apperr.InvalidInput, "end は start より後にしてください。", "end must be after start.").WithField("end")
	}
	if end.Sub(start) > MaxRange {
		return apperr.New(apperr.InvalidInput,
			fmt.Sprintf("start から end までは %d 日以内にしてください。", int(MaxRange/(24*time.Hour))),
			fmt.Sprintf("end may be at most %d days after start.", int(MaxRange/(24*time.Hour)))).WithField("end")
	}
	return nil
}

// A position is sealed as two cursors of the company (the start in
// microseconds, then the event link), joined by a dot.
func (s *Service) encodePos(companyID string, p db.MirrorPos) string {
	return s.cursors.Encode("evs", companyID, p.Start.UnixMicro()) + "." + s.cursors.Encode("evi", companyID, p.EventLinkID)
}

func (s *Service) decodePos(companyID, c string) (db.MirrorPos, error) {
	a, b, ok := strings.Cut(c, ".")
	if !ok || len(c) > 128 {
		return db.MirrorPos{}, apperr.New(apperr.InvalidInput, "after のカーソルが正しくありません。", "after is not a cursor calsync issued.").WithField("after")
	}
	startMicros, err := s.cursors.Decode("evs", companyID, a)
	if err != nil {
		return db.MirrorPos{}, err
	}
	id, err := s.cursors.Decode("evi", companyID, b)
	if err != nil {
		return db.MirrorPos{}, err
	}
	return db.MirrorPos{Start: time.UnixMicro(startMicros).UTC(), EventLinkID: id}, nil
}

func unique(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
