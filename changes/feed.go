package changes

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/hostid"
	"github.com/tehaishokunin/calsync/internal/service"
)

// Feed serves the change feed three ways that agree because they read the
// same rows: a cursor-paginated pull, live streams (GraphQL subscriptions)
// woken through Postgres LISTEN/NOTIFY so every replica's subscribers hear
// every replica's changes, and the host webhook.
type Feed struct {
	store   *db.Store
	cursors *cursor.Codec
	log     *slog.Logger
	poll    time.Duration

	mu    sync.Mutex
	subs  map[string]map[chan struct{}]struct{}
	hubs  map[string]*hub
	reads atomic.Int64
	// listens counts LISTEN connections made (each wakes every stream).
	listens atomic.Int64

	run service.Runner
}

// NewFeed builds the feed. Streams wake on NOTIFY; every poll, and each
// time the LISTEN connection is (re)made, all of them re-check as well, in
// case a notification was lost while it was down. One timer serves every
// stream, so idle subscribers cost no database reads between those.
func NewFeed(store *db.Store, poll time.Duration, cursors *cursor.Codec, log *slog.Logger) *Feed {
	return &Feed{store: store, cursors: cursors, log: log, poll: poll, subs: map[string]map[chan struct{}]struct{}{}, hubs: map[string]*hub{}}
}

// Publish announces that a company's feed grew (to every replica).
func (f *Feed) Publish(companyID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := f.store.NotifyChanges(ctx, companyID); err != nil {
		f.log.Warn("announcing changes failed; streams catch up by polling", slog.String("error", err.Error()))
		f.wake(companyID) // at least this replica's subscribers
	}
}

func (f *Feed) wake(companyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h := f.hubs[companyID]; h != nil {
		h.gen.Add(1)
	}
	for ch := range f.subs[companyID] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// wakeAll has every stream re-check the feed.
func (f *Feed) wakeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hubs {
		h.gen.Add(1)
	}
	for _, subs := range f.subs {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Start listens for NOTIFY until Stop, reconnecting as needed; every poll
// it wakes every stream as well.
func (f *Feed) Start(ctx context.Context) error {
	poll := service.Loop{Every: f.poll, Delay: true, Do: func(context.Context) { f.wakeAll() }}
	return f.run.Start(ctx, poll.Run, f.listen)
}

// listen holds a LISTEN connection until ctx ends, making it again when it
// drops, and wakes the streams its notifications name.
func (f *Feed) listen(ctx context.Context) {
	for ctx.Err() == nil {
		ln, err := f.store.ListenChanges(ctx)
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn("LISTEN failed; retrying", slog.String("error", err.Error()))
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
			continue
		}
		f.listens.Add(1)
		f.wakeAll() // catch up with what was announced while not listening
		for {
			companyID, err := ln.Next(ctx)
			if err != nil {
				break
			}
			f.wake(companyID)
		}
		_ = ln.Close()
	}
}

// Stop ends listening and the poll, and waits for both.
func (f *Feed) Stop() { f.run.Stop() }

// Cursor renders a stored change's feed position for the host, sealed for
// its company.
func (f *Feed) Cursor(c db.Change) string { return f.cursors.Encode("chg", c.CompanyID, c.Cursor) }

// ParseCursor reads a position the company got from Cursor.
func (f *Feed) ParseCursor(companyID, s string) (int64, error) {
	return f.cursors.Decode("chg", companyID, s)
}

// ErrCursorExpired answers a cursor older than the feed keeps: changes
// after it were pruned (CALSYNC_FEED_RETENTION).
var ErrCursorExpired = apperr.New(apperr.CursorExpired,
	"この cursor は保持期間を過ぎたため、変更を取りこぼさずに続きを読めません。",
	"This cursor is older than the change feed keeps; following on from it would miss changes.").WithField("after").
	WithHint("calendarChangesHead で最新の cursor を控え、calendarEvents で予定を読み直してから、その cursor から calendarChanges を読み進めてください。",
		"Take calendarChangesHead, re-read the events with calendarEvents, then follow calendarChanges from that head.")

// Head is the newest position of the company's feed ("" when it is
// empty): a host takes it, reads what it needs, then follows from it and
// misses nothing in between.
func (f *Feed) Head(ctx context.Context, companyID string) (string, error) {
	n, err := f.store.LatestCursor(ctx, companyID)
	if err != nil || n == 0 {
		return "", err
	}
	return f.cursors.Encode("chg", companyID, n), nil
}

// Change is one Outlook-side edit as the feed hands it out: its position
// sealed for the company, the event as the host sees it.
type Change struct {
	Cursor         string
	UserID         string
	ExternalID     *string
	OutlookEventID string
	ChangeType     string
	ChangedFields  []string
	// Event is the event after the change (nil for a deletion).
	Event      *calendar.Event
	OccurredAt time.Time
	// Traceparent is the span that appended the change ("" untraced).
	Traceparent string
}

// change maps a stored change.
func (f *Feed) change(c db.Change) Change {
	out := Change{Cursor: f.Cursor(c), UserID: c.UserID, ExternalID: c.ExternalID, OutlookEventID: c.OutlookEventID,
		ChangeType: c.ChangeType, ChangedFields: c.ChangedFields, OccurredAt: c.OccurredAt, Traceparent: c.Traceparent}
	if len(c.Event) > 0 && string(c.Event) != "null" {
		var e calendar.Event
		if json.Unmarshal(c.Event, &e) == nil {
			out.Event = &e
		}
	}
	return out
}

// Page is one page of the feed.
type Page struct {
	Changes []Change
	HasNext bool
}

// Page reads changes after the cursor, oldest first.
func (f *Feed) Page(ctx context.Context, companyID, after string, first int, userID string) (*Page, error) {
	if first == 0 {
		first = 100
	}
	if userID != "" {
		if err := hostid.Check("userId", userID); err != nil {
			return nil, err
		}
	}
	if first < 1 || first > 500 {
		return nil, apperr.New(apperr.InvalidInput, "first は 1〜500 で指定してください。", "first must be between 1 and 500.").WithField("first")
	}
	var from int64
	if after != "" {
		var err error
		if from, err = f.ParseCursor(companyID, after); err != nil {
			return nil, err
		}
		horizon, err := f.store.FeedHorizon(ctx, companyID)
		if err != nil {
			return nil, err
		}
		if from < horizon {
			return nil, ErrCursorExpired
		}
	}
	cs, more, err := f.store.Changes(ctx, companyID, from, userID, first)
	if err != nil {
		return nil, err
	}
	p := &Page{Changes: make([]Change, len(cs)), HasNext: more}
	for i, c := range cs {
		p.Changes[i] = f.change(c)
	}
	return p, nil
}

// Stream sends the company's changes recorded from now on (for one user
// when userID is set) until ctx ends. A client that reconnects catches up
// with Page from its last cursor. However many streams a company has, a
// wake-up reads its new changes once (the company's hub) and every stream
// takes its share from memory.
func (f *Feed) Stream(ctx context.Context, companyID, userID string) (<-chan Change, error) {
	if userID != "" {
		if err := hostid.Check("userId", userID); err != nil {
			return nil, err
		}
	}
	cursor, err := f.store.LatestCursor(ctx, companyID)
	if err != nil {
		return nil, err
	}
	wake := make(chan struct{}, 1)
	f.mu.Lock()
	if f.subs[companyID] == nil {
		f.subs[companyID] = map[chan struct{}]struct{}{}
	}
	f.subs[companyID][wake] = struct{}{}
	h := f.hubs[companyID]
	if h == nil {
		h = &hub{base: cursor, head: cursor}
		f.hubs[companyID] = h
	}
	f.mu.Unlock()
	out := make(chan Change, 4)
	go func() {
		defer func() {
			f.mu.Lock()
			delete(f.subs[companyID], wake)
			if len(f.subs[companyID]) == 0 {
				delete(f.subs, companyID)
				delete(f.hubs, companyID)
			}
			f.mu.Unlock()
			close(out)
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			cs, err := f.since(ctx, h, companyID, cursor)
			if err != nil {
				if ctx.Err() == nil {
					f.log.Warn("reading changes for a stream failed", slog.String("error", err.Error()))
				}
				continue
			}
			for _, c := range cs {
				if userID != "" && c.UserID != userID {
					cursor = c.Cursor
					continue
				}
				select {
				case out <- f.change(c):
					cursor = c.Cursor
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// hubKeep is how many recent changes a company's hub keeps for its
// streams; a stream further behind reads its own way back.
const hubKeep = 512

// hub is one company's recent changes, shared by its streams on this
// replica: recent holds every change with base < cursor <= head.
type hub struct {
	gen    atomic.Uint64 // wake-ups so far
	mu     sync.Mutex    // held while reading, so one read serves a wake-up
	read   uint64        // the wake-up the last read began after
	base   int64
	head   int64
	recent []db.Change
}

// since returns the company's changes after cursor, reading the database
// only when a wake-up came after the last read began.
func (f *Feed) since(ctx context.Context, h *hub, companyID string, cursor int64) ([]db.Change, error) {
	want := h.gen.Load()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.read < want {
		h.read = want
		f.reads.Add(1)
		for {
			cs, more, err := f.store.Changes(ctx, companyID, h.head, "", 500)
			if err != nil {
				return nil, err
			}
			if len(cs) > 0 {
				h.recent = append(h.recent, cs...)
				h.head = cs[len(cs)-1].Cursor
			}
			if drop := len(h.recent) - hubKeep; drop > 0 {
				h.base = h.recent[drop-1].Cursor
				h.recent = append([]db.Change(nil), h.recent[drop:]...)
			}
			if !more {
				break
			}
		}
	}
	if cursor < h.base {
		// Behind what the hub keeps: this stream reads its own way back.
		f.reads.Add(1)
		cs, _, err := f.store.Changes(ctx, companyID, cursor, "", hubKeep)
		return cs, err
	}
	i := sort.Search(len(h.recent), func(i int) bool { return h.recent[i].Cursor > cursor })
	return h.recent[i:len(h.recent):len(h.recent)], nil
}

// Reads is how many times streams read the feed from the database (tests
// check that a wake-up costs one).
func (f *Feed) Reads() int64 { return f.reads.Load() }

// Listens is how many times the LISTEN connection was made (tests tell a
// catch-up by the poll from one by a reconnect).
func (f *Feed) Listens() int64 { return f.listens.Load() }
