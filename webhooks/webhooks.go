// Package webhooks receives Microsoft Graph's change and lifecycle
// notifications. It answers the validation handshake, checks every
// notification's clientState in constant time against the stored one, makes
// the accepted ones durable in the inbox in one transaction, and only then
// answers 202 — fast, because Graph allows 3 seconds. Processing happens
// later, in the inbox workers.
package webhooks

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/echoes"
	"github.com/tehaishokunin/calsync/internal/graphnotify"
	"github.com/tehaishokunin/calsync/internal/service"
	"github.com/tehaishokunin/calsync/internal/tracing"
)

// MaxBody is the largest notification POST accepted.
const MaxBody = 1 << 20

// Store is what the receiver needs of the database.
type Store interface {
	SubscriptionStates(ctx context.Context, ids []string) (map[string]db.SubscriptionState, error)
	Enqueue(ctx context.Context, items []db.InboxItem) error
}

// Handler receives Graph's POSTs.
type Handler struct {
	store   Store
	log     *slog.Logger
	wake    func(links []int64)
	results *prometheus.CounterVec
	cache   stateCache
	commits chan *pending
	// echoes knows the versions this replica wrote and recorded (nil:
	// none): their notifications need not be stored.
	echoes *echoes.Memory
	// committers runs the group committers from New until Close. stop is
	// closed by Close, exited once every committer has returned: a request
	// still enqueueing after that (Shutdown timed out) is answered 503.
	committers   service.Runner
	stop, exited <-chan struct{}
	// outage keeps a database outage from logging once per POST.
	outage struct {
		sync.Mutex
		last       time.Time
		suppressed int
	}
	// lookups bounds the database reads for subscription ids not in the
	// cache: a flood of forged ids waits here (and gets 503) instead of
	// taking the pool that real notifications need to be stored.
	lookups chan struct{}
	// flights are the subscription-state reads queued or in progress, by
	// id: a burst of notifications for a subscription not in the cache
	// (the backlog Graph delivers after a restart) waits for one read of
	// it instead of each request making its own. queued are the ids no
	// read has taken yet: whichever request gets a lookup slot reads them
	// all (up to maxLookupBatch) in one statement, so misses of many
	// subscriptions at once (every subscription after a start) cost a few
	// reads, not one each behind four slots.
	flights struct {
		sync.Mutex
		m      map[string]*flight
		queued []string
	}
}

// flight is one read of a subscription's state, shared by every request
// that missed it in the cache meanwhile. taken (under flights' lock) says
// a read has it.
type flight struct {
	id    string
	done  chan struct{}
	taken bool
	state db.SubscriptionState
	found bool
	err   error
}

// maxLookupBatch bounds the ids one read of subscription states asks for.
const maxLookupBatch = 500

// pending is one request's notifications waiting to be committed.
type pending struct {
	items []db.InboxItem
	done  chan error
}

// committers take whatever requests are queued and store them in one
// INSERT and one commit (group commit): no added wait when idle, far fewer
// commits under load.
const committers = 2

func (h *Handler) commitLoop(ctx context.Context) {
	for {
		var first *pending
		select {
		case first = <-h.commits:
		case <-ctx.Done():
			// Commit what was queued before Close, then return.
			select {
			case first = <-h.commits:
			default:
				return
			}
		}
		batch := []*pending{first}
		n := len(first.items)
	more:
		for n < 2000 {
			select {
			case p := <-h.commits:
				batch = append(batch, p)
				n += len(p.items)
			default:
				break more
			}
		}
		items := make([]db.InboxItem, 0, n)
		for _, p := range batch {
			items = append(items, p.items...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := h.store.Enqueue(ctx, items)
		cancel()
		for _, p := range batch {
			p.done <- err
		}
	}
}

// Close stops the committers once they have committed what is queued; call
// it once the HTTP server has drained. It is safe to call more than once,
// and safe while handlers still run (a Shutdown that timed out): those
// answer 503 and Graph retries.
func (h *Handler) Close() { h.committers.Stop() }

// errClosed answers a notification that arrives after Close.
var errClosed = errors.New("notification receiver is closed")

// enqueue stores items through the group committer.
func (h *Handler) enqueue(ctx context.Context, items []db.InboxItem) error {
	p := &pending{items: items, done: make(chan error, 1)}
	select {
	case <-h.stop:
		return errClosed
	default:
	}
	select {
	case h.commits <- p:
	case <-h.stop:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-h.exited:
		// Queued after the last committer looked: nobody will store it.
		select {
		case err := <-p.done:
			return err
		default:
			return errClosed
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stateCache remembers known subscriptions' clientState and link for a
// short while, so a notification POST costs one INSERT instead of a SELECT
// and an INSERT. A subscription deleted meanwhile may still be accepted
// for up to cacheTTL; the worker then finds no link and does nothing.
//
// It also remembers ids that are not known, for a shorter while, so forged
// notifications repeating an id cost no database read. Forgetting a
// notification for a subscription stored a moment later loses nothing:
// linking and recreating take a delta after storing the subscription.
type stateCache struct {
	mu    sync.Mutex
	known map[string]cachedState
	// unknown is kept apart so a flood of random forged ids, which fills
	// and clears it, never evicts the subscriptions genuine ones need.
	unknown map[string]time.Time
}

type cachedState struct {
	sub     db.SubscriptionState
	expires time.Time
}

const (
	cacheTTL        = 30 * time.Second
	unknownCacheTTL = 5 * time.Second
	cacheMax        = 100_000
)

// get splits ids into known ones and ids to read; stale holds the known
// states among the latter whose time ran out (used when reads are busy).
func (c *stateCache) get(ids []string, now time.Time) (hit, stale map[string]db.SubscriptionState, miss []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hit = make(map[string]db.SubscriptionState, len(ids))
	for _, id := range ids {
		if e, ok := c.known[id]; ok {
			if now.Before(e.expires) {
				hit[id] = e.sub
				continue
			}
			if stale == nil {
				stale = map[string]db.SubscriptionState{}
			}
			stale[id] = e.sub
		} else if until, ok := c.unknown[id]; ok && now.Before(until) {
			continue
		}
		miss = append(miss, id)
	}
	return hit, stale, miss
}

// fresh returns id's cached state if its time has not run out.
func (c *stateCache) fresh(id string, now time.Time) (db.SubscriptionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.known[id]
	if !ok || !now.Before(e.expires) {
		return db.SubscriptionState{}, false
	}
	return e.sub, true
}

// put remembers what a read found: the found states, and the asked ids it
// did not find as unknown.
func (c *stateCache) put(asked []string, found map[string]db.SubscriptionState, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil || len(c.known)+len(found) > cacheMax {
		c.known = map[string]cachedState{}
	}
	if c.unknown == nil || len(c.unknown)+len(asked) > cacheMax {
		c.unknown = map[string]time.Time{}
	}
	for _, id := range asked {
		if s, ok := found[id]; ok {
			c.known[id] = cachedState{sub: s, expires: now.Add(cacheTTL)}
			delete(c.unknown, id)
		} else {
			c.unknown[id] = now.Add(unknownCacheTTL)
		}
	}
}

// concurrentLookups is how many cache-miss reads may run at once; the
// pool keeps the rest for the committers and the workers.
const concurrentLookups = 4

// New builds the receiver; wake (may be nil) is called after notifications
// are stored, with the links they are for (each once).
func New(store Store, reg prometheus.Registerer, wake func(links []int64), log *slog.Logger) *Handler {
	h := &Handler{store: store, log: log, wake: wake, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calsync_webhook_notifications_total",
		Help: "Graph notifications received, by endpoint and result (accepted, echo, bad_client_state, unknown_subscription, tenant_mismatch, malformed, busy).",
	}, []string{"endpoint", "result"}), commits: make(chan *pending, 4096), lookups: make(chan struct{}, concurrentLookups),
	}
	if reg != nil {
		reg.MustRegister(h.results)
	}
	loops := make([]func(context.Context), committers)
	for i := range loops {
		loops[i] = h.commitLoop
	}
	_ = h.committers.Start(context.Background(), loops...) // a new Runner: cannot be started already
	h.stop, h.exited = h.committers.Stopping(), h.committers.Done()
	return h
}

// RecognizeEchoes makes the receiver answer, without storing it, a change
// notification naming a version m knows this replica wrote and committed
// (the echo of calsync's own push; see package echoes). Call it before
// serving.
func (h *Handler) RecognizeEchoes(m *echoes.Memory) { h.echoes = m }

// echoWait bounds how long a notification waits for this replica's writes
// in flight to its mailbox (Graph may deliver a write's echo before the
// write has its answer) before it is stored as any other: well inside the
// 3 s Graph allows for the 202.
const echoWait = 500 * time.Millisecond

// dropEchoes leaves out the change notifications that are echoes of this
// replica's own writes: stored, they would only be finished by the claim.
func (h *Handler) dropEchoes(ctx context.Context, endpoint string, items []db.InboxItem) []db.InboxItem {
	if h.echoes == nil {
		return items
	}
	kept := items[:0]
	for _, it := range items {
		if it.Kind == "change" && it.LinkID != nil && h.echoes.Echo(ctx, *it.LinkID, it.EventID, it.ChangeKey, echoWait) {
			h.results.WithLabelValues(endpoint, "echo").Inc()
			continue
		}
		kept = append(kept, it)
	}
	return kept
}

// Notifications handles /webhooks/graph/notifications.
func (h *Handler) Notifications() http.Handler { return h.handler("notifications") }

// Lifecycle handles /webhooks/graph/lifecycle.
func (h *Handler) Lifecycle() http.Handler { return h.handler("lifecycle") }

func (h *Handler) handler(endpoint string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if _, ok := r.URL.Query()["validationToken"]; ok {
			h.handshake(w, r)
			return
		}
		if !isJSON(r.Header.Get("Content-Type")) {
			h.results.WithLabelValues(endpoint, "malformed").Inc()
			http.Error(w, "notifications must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		if r.ContentLength > MaxBody {
			h.results.WithLabelValues(endpoint, "malformed").Inc()
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				h.results.WithLabelValues(endpoint, "malformed").Inc()
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		ns, err := graphnotify.Parse(body)
		if err != nil {
			h.results.WithLabelValues(endpoint, "malformed").Inc()
			http.Error(w, "malformed notification payload", http.StatusBadRequest)
			return
		}
		items, err := h.accept(r.Context(), endpoint, ns)
		if errors.Is(err, errBusy) {
			h.results.WithLabelValues(endpoint, "busy").Add(float64(len(ns)))
			w.Header().Set("Retry-After", "5")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if err != nil {
			h.warnOutage(r.Context(), "cannot check notifications; asking Graph to retry", err)
			w.Header().Set("Retry-After", "5")
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		items = h.dropEchoes(r.Context(), endpoint, items)
		if len(items) > 0 {
			if err := h.persist(r.Context(), items); err != nil {
				h.warnOutage(r.Context(), "cannot store notifications; asking Graph to retry", err)
				w.Header().Set("Retry-After", "5")
				http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
				return
			}
			h.results.WithLabelValues(endpoint, "accepted").Add(float64(len(items)))
			if h.wake != nil {
				h.wake(links(items))
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// links lists the links of items, each once (a POST is mostly one link's).
func links(items []db.InboxItem) []int64 {
	out := make([]int64, 0, 1)
	for _, it := range items {
		if it.LinkID != nil && !slices.Contains(out, *it.LinkID) {
			out = append(out, *it.LinkID)
		}
	}
	return out
}

// persist makes items durable. Traced, the request's span becomes each
// row's parent of record (the delta round that processes it continues the
// trace), and the wait for the group commit is a span of its own.
func (h *Handler) persist(ctx context.Context, items []db.InboxItem) error {
	if !tracing.Enabled() {
		return h.enqueue(ctx, items)
	}
	if tp := tracing.Traceparent(ctx); tp != "" {
		for i := range items {
			items[i].Traceparent = tp
		}
	}
	ctx, span := tracing.Start(ctx, "inbox.store",
		trace.WithAttributes(attribute.Int("calsync.notifications", len(items))))
	defer span.End()
	err := h.enqueue(ctx, items)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// warnOutage logs a failure to reach the database at most every 5 s,
// counting what it left out: an outage under a notification flood would
// otherwise log one line per POST.
func (h *Handler) warnOutage(ctx context.Context, msg string, err error) {
	h.outage.Lock()
	now := time.Now()
	if now.Sub(h.outage.last) < 5*time.Second {
		h.outage.suppressed++
		h.outage.Unlock()
		return
	}
	suppressed := h.outage.suppressed
	h.outage.last, h.outage.suppressed = now, 0
	h.outage.Unlock()
	h.log.WarnContext(ctx, msg, slog.String("error", err.Error()), slog.Int("suppressed", suppressed))
}

// errBusy means the cache-miss reads are all taken (a flood of unknown ids):
// Graph is asked to retry.
var errBusy = errors.New("subscription lookups busy")

// states reads the states of ids not in the cache (found ones are cached,
// unknown ones remembered as such), sharing reads: an id another request
// has queued or is reading already is waited for, not read again.
func (h *Handler) states(ctx context.Context, ids []string, now time.Time) (map[string]db.SubscriptionState, error) {
	var waits, mine []*flight
	h.flights.Lock()
	if h.flights.m == nil {
		h.flights.m = map[string]*flight{}
	}
	out := make(map[string]db.SubscriptionState, len(ids))
	for _, id := range ids {
		if f := h.flights.m[id]; f != nil {
			waits = append(waits, f)
			continue
		}
		// A read that ended since this request looked has cached it (a
		// flight ends after its put).
		if st, ok := h.cache.fresh(id, now); ok {
			out[id] = st
			continue
		}
		f := &flight{id: id, done: make(chan struct{})}
		h.flights.m[id] = f
		h.flights.queued = append(h.flights.queued, id)
		waits = append(waits, f)
		mine = append(mine, f)
	}
	h.flights.Unlock()
	if len(mine) > 0 {
		// Others may wait on these reads: they are not cut short when this
		// request's client goes away (readQueued bounds them in time).
		h.readQueued(context.WithoutCancel(ctx), mine, now)
	}
	var err error
	for _, f := range waits {
		select {
		case <-f.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err != nil {
			err = f.err
		} else if f.found {
			out[f.id] = f.state
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readQueued waits at most a second for a lookup slot, then reads queued
// ids, whoever queued them, until none of mine is left waiting for a read.
// Without a slot in time, those of mine no read has taken end with errBusy.
func (h *Handler) readQueued(ctx context.Context, mine []*flight, now time.Time) {
	wait := time.NewTimer(time.Second)
	defer wait.Stop()
	select {
	case h.lookups <- struct{}{}:
	case <-wait.C:
		h.flights.Lock()
		h.endUntaken(mine, errBusy)
		h.flights.Unlock()
		return
	}
	defer func() { <-h.lookups }()
	for {
		h.flights.Lock()
		if !slices.ContainsFunc(mine, func(f *flight) bool { return !f.taken }) {
			h.flights.Unlock()
			return
		}
		n := min(len(h.flights.queued), maxLookupBatch)
		batch := slices.Clone(h.flights.queued[:n])
		h.flights.queued = slices.Delete(h.flights.queued, 0, n)
		for _, id := range batch {
			h.flights.m[id].taken = true
		}
		h.flights.Unlock()
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		found, err := h.store.SubscriptionStates(rctx, batch)
		cancel()
		if err == nil {
			h.cache.put(batch, found, now)
		}
		h.flights.Lock()
		for _, id := range batch {
			f := h.flights.m[id]
			f.state, f.found = found[id]
			f.err = err
			delete(h.flights.m, id)
			close(f.done)
		}
		h.flights.Unlock()
	}
}

// endUntaken ends the flights of fs that no read has taken with err,
// taking their ids off the queue. flights' lock is held.
func (h *Handler) endUntaken(fs []*flight, err error) {
	ended := map[string]bool{}
	for _, f := range fs {
		if !f.taken { // so still queued, and still h.flights.m[f.id]
			f.taken, f.err = true, err
			delete(h.flights.m, f.id)
			close(f.done)
			ended[f.id] = true
		}
	}
	h.flights.queued = slices.DeleteFunc(h.flights.queued, func(id string) bool { return ended[id] })
}

// isJSON reports whether a Content-Type names JSON (Graph sends
// "application/json; charset=utf-8").
func isJSON(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

// handshake echoes the decoded validation token as text/plain.
func (h *Handler) handshake(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("validationToken")
	if len(tok) > 1024 || strings.IndexFunc(tok, unicode.IsControl) >= 0 {
		http.Error(w, "bad validation token", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tok)
}

// accept keeps the notifications whose subscription is known and whose
// clientState matches; the rest are dropped and counted.
func (h *Handler) accept(ctx context.Context, endpoint string, ns []graphnotify.Notification) ([]db.InboxItem, error) {
	ids := make([]string, 0, len(ns))
	for _, n := range ns {
		if n.SubscriptionID != "" && len(n.SubscriptionID) <= 128 {
			ids = append(ids, n.SubscriptionID)
		}
	}
	now := time.Now()
	known, stale, miss := h.cache.get(ids, now)
	if len(miss) > 0 {
		found, err := h.states(ctx, miss, now)
		switch {
		case errors.Is(err, errBusy) && len(stale) == len(miss):
			// Reads are taken (a flood of unknown ids) but every id here
			// was known a moment ago: a subscription's clientState never
			// changes, so the stale state still checks it.
			found = stale
		case err != nil:
			return nil, err
		}
		for id, s := range found {
			known[id] = s
		}
	}
	var items []db.InboxItem
	for _, n := range ns {
		sub, ok := known[n.SubscriptionID]
		if !ok {
			h.results.WithLabelValues(endpoint, "unknown_subscription").Inc()
			continue
		}
		if subtle.ConstantTimeCompare([]byte(n.ClientState), []byte(sub.ClientState)) != 1 {
			h.results.WithLabelValues(endpoint, "bad_client_state").Inc()
			continue
		}
		// tenantId is required in Graph's notifications; one naming another
		// tenant than the company's credentials is not Graph's.
		if n.TenantID != "" && !strings.EqualFold(n.TenantID, sub.TenantID) {
			h.results.WithLabelValues(endpoint, "tenant_mismatch").Inc()
			continue
		}
		linkID := sub.LinkID
		it := db.InboxItem{SubscriptionID: sub.ID, LinkID: &linkID, NextAttemptAt: time.Now()}
		if endpoint == "lifecycle" || n.LifecycleEvent != "" {
			ev := n.Lifecycle()
			it.Kind, it.LifecycleEvent = "lifecycle", &ev
		} else {
			ct, res := n.Change()
			it.Kind, it.ChangeType, it.Resource = "change", &ct, &res
			if ct == "created" || ct == "updated" {
				it.EventID, it.ChangeKey = n.Version()
			}
		}
		items = append(items, it)
	}
	return items, nil
}
