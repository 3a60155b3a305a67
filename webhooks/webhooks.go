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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/db"
)

// MaxBody is the largest notification POST accepted.
const MaxBody = 1 << 20

// Store is what the receiver needs of the database.
type Store interface {
	SubscriptionStates(ctx context.Context, ids []string) (map[string]db.GraphSubscription, error)
	Enqueue(ctx context.Context, items []db.InboxItem) error
}

// Handler receives Graph's POSTs.
type Handler struct {
	store   Store
	log     *slog.Logger
	wake    func()
	results *prometheus.CounterVec
	cache   stateCache
	commits chan *pending
}

// pending is one request's notifications waiting to be committed.
type pending struct {
	items []db.InboxItem
	done  chan error
}

// committers take whatever requests are queued and store them in one
// INSERT and one commit (group commit): no added wait when idle, far fewer
// commits under load.
const committers = 2

func (h *Handler) commitLoop() {
	for first := range h.commits {
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

// Close stops the committers; call it once the HTTP server has drained.
func (h *Handler) Close() { close(h.commits) }

// enqueue stores items through the group committer.
func (h *Handler) enqueue(ctx context.Context, items []db.InboxItem) error {
	p := &pending{items: items, done: make(chan error, 1)}
	select {
	case h.commits <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stateCache remembers known subscriptions' clientState and link for a
// short while, so a notification POST costs one INSERT instead of a SELECT
// and an INSERT. A subscription deleted meanwhile may still be accepted
// for up to cacheTTL; the worker then finds no link and does nothing.
type stateCache struct {
	mu      sync.Mutex
	entries map[string]cachedState
}

type cachedState struct {
	sub     db.GraphSubscription
	expires time.Time
}

const cacheTTL = 30 * time.Second

func (c *stateCache) get(ids []string, now time.Time) (hit map[string]db.GraphSubscription, miss []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hit = map[string]db.GraphSubscription{}
	for _, id := range ids {
		if e, ok := c.entries[id]; ok && now.Before(e.expires) {
			hit[id] = e.sub
		} else {
			miss = append(miss, id)
		}
	}
	return hit, miss
}

func (c *stateCache) put(subs map[string]db.GraphSubscription, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) > 100_000 {
		c.entries = map[string]cachedState{}
	}
	for id, s := range subs {
		c.entries[id] = cachedState{sub: s, expires: now.Add(cacheTTL)}
	}
}

// New builds the receiver; wake (may be nil) is called after notifications
// are stored.
func New(store Store, reg prometheus.Registerer, wake func(), log *slog.Logger) *Handler {
	h := &Handler{store: store, log: log, wake: wake, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calsync_webhook_notifications_total",
		Help: "Graph notifications received, by endpoint and result (accepted, bad_client_state, unknown_subscription, malformed).",
	}, []string{"endpoint", "result"}), commits: make(chan *pending, 4096)}
	if reg != nil {
		reg.MustRegister(h.results)
	}
	for i := 0; i < committers; i++ {
		go h.commitLoop()
	}
	return h
}

// Notifications handles /webhooks/graph/notifications.
func (h *Handler) Notifications() http.Handler { return h.handler("notifications") }

// Lifecycle handles /webhooks/graph/lifecycle.
func (h *Handler) Lifecycle() http.Handler { return h.handler("lifecycle") }

// Notification is one entry of a Graph notification POST.
type Notification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	ChangeType     string `json:"changeType"`
	Resource       string `json:"resource"`
	LifecycleEvent string `json:"lifecycleEvent"`
	TenantID       string `json:"tenantId"`
}

// MaxNotifications caps the entries one POST may carry.
const MaxNotifications = 1000

// ParsePayload reads a Graph notification POST body ({"value": [...]}).
func ParsePayload(body []byte) ([]Notification, error) {
	var p struct {
		Value []Notification `json:"value"`
	}
	if !utf8.Valid(body) {
		return nil, errors.New("body is not UTF-8")
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("parsing notifications: %w", err)
	}
	if p.Value == nil {
		return nil, errors.New("no value array")
	}
	if len(p.Value) > MaxNotifications {
		return nil, fmt.Errorf("%d notifications in one POST (limit %d)", len(p.Value), MaxNotifications)
	}
	return p.Value, nil
}

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
		ns, err := ParsePayload(body)
		if err != nil {
			h.results.WithLabelValues(endpoint, "malformed").Inc()
			http.Error(w, "malformed notification payload", http.StatusBadRequest)
			return
		}
		items, err := h.accept(r.Context(), endpoint, ns)
		if err != nil {
			h.log.WarnContext(r.Context(), "cannot check notifications; asking Graph to retry", slog.String("error", err.Error()))
			w.Header().Set("Retry-After", "5")
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		if len(items) > 0 {
			if err := h.enqueue(r.Context(), items); err != nil {
				h.log.WarnContext(r.Context(), "cannot store notifications; asking Graph to retry", slog.String("error", err.Error()))
				w.Header().Set("Retry-After", "5")
				http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
				return
			}
			h.results.WithLabelValues(endpoint, "accepted").Add(float64(len(items)))
			if h.wake != nil {
				h.wake()
			}
		}
		w.WriteHeader(http.StatusAccepted)
	})
}

// handshake echoes the decoded validation token as text/plain.
func (h *Handler) handshake(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("validationToken")
	if len(tok) > 1024 || strings.IndexFunc(tok, func(r rune) bool { return unicode.IsControl(r) }) >= 0 {
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
func (h *Handler) accept(ctx context.Context, endpoint string, ns []Notification) ([]db.InboxItem, error) {
	ids := make([]string, 0, len(ns))
	for _, n := range ns {
		if n.SubscriptionID != "" && len(n.SubscriptionID) <= 128 {
			ids = append(ids, n.SubscriptionID)
		}
	}
	now := time.Now()
	known, miss := h.cache.get(ids, now)
	if len(miss) > 0 {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		found, err := h.store.SubscriptionStates(ctx, miss)
		if err != nil {
			return nil, err
		}
		h.cache.put(found, now)
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
		linkID := sub.LinkID
		it := db.InboxItem{SubscriptionID: sub.ID, LinkID: &linkID, NextAttemptAt: time.Now()}
		if endpoint == "lifecycle" || n.LifecycleEvent != "" {
			ev := n.LifecycleEvent
			it.Kind, it.LifecycleEvent = "lifecycle", &ev
		} else {
			ct, res := n.ChangeType, n.Resource
			if len(res) > 512 {
				res = res[:512]
			}
			it.Kind, it.ChangeType, it.Resource = "change", &ct, &res
		}
		items = append(items, it)
	}
	return items, nil
}
