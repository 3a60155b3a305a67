// Package echoes remembers, for a while, the event versions this replica
// has just written to Outlook and durably recorded, so that the change
// notification Graph sends back for each of them (the write's echo) can be
// answered without being stored, claimed and finished: two commits per
// push that tell calsync nothing it does not know.
//
// It is only a shortcut. A replica that did not make the write does not
// know the version and stores the echo; the worker's claim then finishes
// it without a delta round (db.ClaimInbox), as it always has. Nothing is
// remembered before it is committed, so a notification is only ever
// dropped for a version Postgres already holds.
package echoes

import (
	"context"
	"hash/maphash"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Defaults of New's bounds: Graph's notifications for Outlook resources
// arrive within a few minutes (calendar: under 1 minute on average, 3 at
// most, concepts/change-notifications-overview.md), and a version
// forgotten earlier only costs the stored row it would have saved.
const (
	DefaultTTL = 10 * time.Minute
	DefaultMax = 50_000
)

// Memory is the versions one replica wrote and recorded. The zero value is
// not usable; a nil *Memory remembers nothing and knows no echo.
type Memory struct {
	ttl  time.Duration
	max  int
	now  func() time.Time
	seed [2]maphash.Seed

	mu sync.Mutex
	// known maps a version's key to when it is forgotten (unix ns); order
	// holds the keys in the order remembered, from head, for expiry and
	// the bound.
	known  map[key]int64
	order  []remembered
	head   int
	writes map[int64][]*Write // writes in flight, by link
	// waiting, when set (tests), is called as Echo starts waiting.
	waiting func()
}

type key [2]uint64

type remembered struct {
	k   key
	exp int64
}

// New remembers each version for ttl, at most max of them (the oldest go
// first).
func New(ttl time.Duration, max int) *Memory {
	return &Memory{ttl: ttl, max: max, now: time.Now, seed: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		known: map[key]int64{}, writes: map[int64][]*Write{}}
}

// keyOf hashes a version with two independent seeds (128 bits): keys are
// small, and two versions sharing one by chance are out of reach (the
// seeds are random per process, and only notifications whose clientState
// checked out are ever looked up).
func (m *Memory) keyOf(link int64, eventID, changeKey string) key {
	var k key
	for i := range k {
		var h maphash.Hash
		h.SetSeed(m.seed[i])
		var n [20]byte
		_, _ = h.Write(strconv.AppendInt(n[:0], link, 10))
		_ = h.WriteByte(0)
		_, _ = h.WriteString(eventID)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(changeKey)
		k[i] = h.Sum64()
	}
	return k
}

// Remember records that link's event eventID is at changeKey because this
// replica wrote it, and that the version is committed. Call it after the
// commit, never before.
func (m *Memory) Remember(link int64, eventID, changeKey string) {
	if m == nil || eventID == "" || changeKey == "" {
		return
	}
	k := m.keyOf(link, eventID, changeKey)
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forgetLocked(now)
	exp := now + m.ttl.Nanoseconds()
	m.known[k] = exp
	m.order = append(m.order, remembered{k, exp})
	for len(m.known) > m.max {
		m.popLocked()
	}
}

// forgetLocked drops the versions whose time is over.
func (m *Memory) forgetLocked(now int64) {
	for m.head < len(m.order) && m.order[m.head].exp <= now {
		m.popLocked()
	}
}

// popLocked forgets the oldest remembered version, unless it was
// remembered again since (its newer entry comes later in order).
func (m *Memory) popLocked() {
	r := m.order[m.head]
	m.order[m.head] = remembered{}
	m.head++
	if m.known[r.k] == r.exp {
		delete(m.known, r.k)
	}
	if m.head >= 1024 && m.head*2 >= len(m.order) {
		m.order = append(m.order[:0], m.order[m.head:]...)
		m.head = 0
	}
}

// Len is how many versions are remembered.
func (m *Memory) Len() int {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.known)
}

// Write is one write to a link's mailbox in flight; End it when it is
// over, recorded or not.
type Write struct {
	m    *Memory
	link int64
	done chan struct{}
	once sync.Once
}

// Begin says a write to link's mailbox is about to be made: until it ends,
// Echo waits for it before saying a version of that link is unknown (Graph
// may deliver the echo before calsync has its answer).
func (m *Memory) Begin(link int64) *Write {
	if m == nil {
		return nil
	}
	w := &Write{m: m, link: link, done: make(chan struct{})}
	m.mu.Lock()
	m.writes[link] = append(m.writes[link], w)
	m.mu.Unlock()
	return w
}

// End says the write is over; a second call does nothing.
func (w *Write) End() {
	if w == nil {
		return
	}
	w.once.Do(func() {
		m := w.m
		m.mu.Lock()
		ws := slices.DeleteFunc(m.writes[w.link], func(x *Write) bool { return x == w })
		if len(ws) == 0 {
			delete(m.writes, w.link)
		} else {
			m.writes[w.link] = ws
		}
		m.mu.Unlock()
		close(w.done)
	})
}

// Echo says whether link's event eventID at changeKey is a version this
// replica wrote and recorded. When it is not known and writes to the link
// are in flight, it waits for those (at most wait, and not past ctx) and
// looks again.
func (m *Memory) Echo(ctx context.Context, link int64, eventID, changeKey string, wait time.Duration) bool {
	if m == nil || eventID == "" || changeKey == "" {
		return false
	}
	k := m.keyOf(link, eventID, changeKey)
	known, inFlight := m.lookup(link, k)
	if known || len(inFlight) == 0 || wait <= 0 {
		return known
	}
	if m.waiting != nil {
		m.waiting()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for _, w := range inFlight {
		select {
		case <-w.done:
		case <-t.C:
			known, _ = m.lookup(link, k)
			return known
		case <-ctx.Done():
			return false
		}
	}
	known, _ = m.lookup(link, k)
	return known
}

// lookup says whether k is remembered and, when it is not, which writes to
// link are in flight.
func (m *Memory) lookup(link int64, k key) (bool, []*Write) {
	now := m.now().UnixNano()
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.known[k]; ok && exp > now {
		return true, nil
	}
	return false, slices.Clone(m.writes[link])
}
