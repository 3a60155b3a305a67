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
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"

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
}

// New builds the receiver; wake (may be nil) is called after notifications
// are stored.
func New(store Store, reg prometheus.Registerer, wake func(), log *slog.Logger) *Handler {
	h := &Handler{store: store, log: log, wake: wake, results: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "calsync_webhook_notifications_total",
		Help: "Graph notifications received, by endpoint and result (accepted, bad_client_state, unknown_subscription, malformed).",
	}, []string{"endpoint", "result"})}
	if reg != nil {
		reg.MustRegister(h.results)
	}
	return h
}

// Notifications handles /webhooks/graph/notifications.
func (h *Handler) Notifications() http.Handler { return h.handler("notifications") }

// Lifecycle handles /webhooks/graph/lifecycle.
func (h *Handler) Lifecycle() http.Handler { return h.handler("lifecycle") }

type notification struct {
	SubscriptionID string `json:"subscriptionId"`
	ClientState    string `json:"clientState"`
	ChangeType     string `json:"changeType"`
	Resource       string `json:"resource"`
	LifecycleEvent string `json:"lifecycleEvent"`
	TenantID       string `json:"tenantId"`
}

type payload struct {
	Value []notification `json:"value"`
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
		var p payload
		if err := json.Unmarshal(body, &p); err != nil || p.Value == nil {
			h.results.WithLabelValues(endpoint, "malformed").Inc()
			http.Error(w, "malformed notification payload", http.StatusBadRequest)
			return
		}
		items, err := h.accept(r.Context(), endpoint, p.Value)
		if err != nil {
			h.log.WarnContext(r.Context(), "cannot check notifications; asking Graph to retry", slog.String("error", err.Error()))
			w.Header().Set("Retry-After", "5")
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		if len(items) > 0 {
			if err := h.store.Enqueue(r.Context(), items); err != nil {
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
func (h *Handler) accept(ctx context.Context, endpoint string, ns []notification) ([]db.InboxItem, error) {
	ids := make([]string, 0, len(ns))
	for _, n := range ns {
		if n.SubscriptionID != "" && len(n.SubscriptionID) <= 128 {
			ids = append(ids, n.SubscriptionID)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	known, err := h.store.SubscriptionStates(ctx, ids)
	if err != nil {
		return nil, err
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
