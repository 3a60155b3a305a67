package changes

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
)

// Feed serves the change feed three ways that agree because they read the
// same rows: a cursor-paginated pull, live streams (GraphQL subscriptions)
// woken through Postgres LISTEN/NOTIFY so every replica's subscribers hear
// every replica's changes, and the host webhook.
type Feed struct {
	store *db.Store
	log   *slog.Logger
	poll  time.Duration

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// NewFeed builds the feed. Streams wake on NOTIFY; every poll, and each
// time the LISTEN connection is (re)made, all of them re-check as well, in
// case a notification was lost while it was down. One timer serves every
// stream, so idle subscribers cost no database reads between those.
func NewFeed(store *db.Store, poll time.Duration, log *slog.Logger) *Feed {
	return &Feed{store: store, log: log, poll: poll, subs: map[string]map[chan struct{}]struct{}{}}
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
	for _, subs := range f.subs {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// Start listens for NOTIFY until Stop, reconnecting as needed.
func (f *Feed) Start(ctx context.Context) error {
	ctx, f.cancel = context.WithCancel(ctx)
	f.done = make(chan struct{})
	go every(ctx, f.poll, f.wakeAll)
	go func() {
		defer close(f.done)
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
			ch := ln.Channel()
			f.wakeAll() // catch up with what was announced while not listening
		loop:
			for {
				select {
				case <-ctx.Done():
					break loop
				case n, ok := <-ch:
					if !ok {
						break loop
					}
					f.wake(n.Payload)
				}
			}
			_ = ln.Close()
		}
	}()
	return nil
}

// Stop ends listening.
func (f *Feed) Stop() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
}

// Cursor renders a feed position for the host.
func Cursor(c int64) string { return cursor.Encode("chg", c) }

// ParseCursor reads a position the host got from Cursor.
func ParseCursor(s string) (int64, error) { return cursor.Decode("chg", s) }

// Page is one page of the feed.
type Page struct {
	Changes []db.Change
	HasNext bool
}

// Page reads changes after the cursor, oldest first.
func (f *Feed) Page(ctx context.Context, companyID, after string, first int, userID string) (*Page, error) {
	if first == 0 {
		first = 100
	}
	if first < 1 || first > 500 {
		return nil, apperr.New(apperr.InvalidInput, "first は 1〜500 で指定してください。", "first must be between 1 and 500.").WithField("first")
	}
	var from int64
	if after != "" {
		var err error
		if from, err = ParseCursor(after); err != nil {
			return nil, err
		}
	}
	cs, more, err := f.store.Changes(ctx, companyID, from, userID, first)
	if err != nil {
		return nil, err
	}
	return &Page{Changes: cs, HasNext: more}, nil
}

// Stream sends the company's changes recorded from now on (for one user
// when userID is set) until ctx ends. A client that reconnects catches up
// with Page from its last cursor.
func (f *Feed) Stream(ctx context.Context, companyID, userID string) (<-chan db.Change, error) {
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
	f.mu.Unlock()
	out := make(chan db.Change, 4)
	go func() {
		defer func() {
			f.mu.Lock()
			delete(f.subs[companyID], wake)
			if len(f.subs[companyID]) == 0 {
				delete(f.subs, companyID)
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
			for {
				cs, more, err := f.store.Changes(ctx, companyID, cursor, userID, 100)
				if err != nil {
					if ctx.Err() == nil {
						f.log.Warn("reading changes for a stream failed", slog.String("error", err.Error()))
					}
					break
				}
				for _, c := range cs {
					select {
					case out <- c:
						cursor = c.Cursor
					case <-ctx.Done():
						return
					}
				}
				if !more {
					break
				}
			}
		}
	}()
	return out, nil
}

// every calls fn every d until ctx ends.
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
