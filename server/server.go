// Package server is calsync's HTTP edge: it routes /graphql, /playground,
// the health and metrics endpoints (and later the Graph webhooks), and wraps
// them in the cross-cutting middleware: body limits, caller language and
// identity, and request metrics.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/auth"
)

// Options are the server's dependencies.
type Options struct {
	Logger   *slog.Logger
	Schema   graphql.ExecutableSchema
	Verifier *auth.Verifier
	// Ready reports whether the service can do its work (database reachable
	// and migrated); nil error means ready.
	Ready func(ctx context.Context) error
	// AllowedOrigins may call /graphql from the browser (CORS) and open
	// websockets, in addition to same-origin pages.
	AllowedOrigins []string
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64
	// MaxAnonymousBodyBytes caps the bodies of requests without a valid
	// token (nothing but introspection answers them), so a stranger's
	// megabyte costs no JSON decoding (0: MaxBodyBytes).
	MaxAnonymousBodyBytes int64
	// Registry receives the HTTP metrics and is served on /metrics.
	Registry *prometheus.Registry
	// Playground serves the GraphQL IDE on /playground.
	Playground bool
	// Introspection answers __schema queries (tools, the Playground).
	Introspection bool
	// QueryLimits bound the size, shape and cost of one document.
	QueryLimits QueryLimits
	// QueryCacheBytes bounds the heap held by cached parsed documents
	// (0: 32 MiB).
	QueryCacheBytes int
	// SubscriptionsPerConnection and SubscriptionsPerCaller cap live
	// GraphQL subscriptions per websocket and per caller (0: no cap).
	SubscriptionsPerConnection, SubscriptionsPerCaller int

	// docCache replaces the document cache (tests look inside it).
	docCache *queryCache
	// MutationsPerSecond and MutationBurst cap each company's mutations
	// (0: no limit).
	MutationsPerSecond float64
	MutationBurst      int
	// PlaygroundConfig holds its example operations and headers.
	PlaygroundConfig PlaygroundConfig
	// Notifications and Lifecycle receive Microsoft Graph's POSTs (they
	// enforce their own body limit and need no caller token).
	Notifications, Lifecycle http.Handler
}

// New builds the root handler.
func New(o Options) http.Handler {
	m := newHTTPMetrics(o.Registry)
	registerReady(o.Registry, o.Ready)
	mux := http.NewServeMux()
	handle := func(pattern, route string, h http.Handler) {
		mux.Handle(pattern, traced(route, m.instrument(route, h)))
	}

	gql := newGraphQL(o)
	handle("/graphql", "/graphql", cors(o.AllowedOrigins, withCaller(o.Verifier, limitBody(o.MaxBodyBytes, o.MaxAnonymousBodyBytes, codedErrors(gql)))))
	if o.Playground {
		pg := playgroundHandler(o.PlaygroundConfig)
		handle("GET /playground", "/playground", pg)
		handle("GET /playground/", "/playground", pg)
	}
	if o.Notifications != nil {
		handle("/webhooks/graph/notifications", "/webhooks/graph/notifications", o.Notifications)
		handle("/webhooks/graph/lifecycle", "/webhooks/graph/lifecycle", o.Lifecycle)
	}
	handle("GET /healthz", "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	handle("GET /readyz", "/readyz", readyHandler(o.Logger, o.Ready))
	handle("GET /metrics", "/metrics", promhttp.HandlerFor(o.Registry, promhttp.HandlerOpts{Registry: o.Registry}))
	handle("/", "other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	}))
	return withLang(mux)
}

func readyHandler(log *slog.Logger, ready func(context.Context) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			log.WarnContext(ctx, "not ready", slog.String("reason", err.Error()))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": ReadinessReason(err)})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}

// ReadinessReason is the public part of a readiness error: errors that
// know what may be shown say so with PublicReason; anything else is just
// "not ready".
func ReadinessReason(err error) string {
	var pr interface{ PublicReason() string }
	if errors.As(err, &pr) {
		return pr.PublicReason()
	}
	return "not ready"
}

// withLang puts the caller's language (Accept-Language) in the context.
func withLang(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lang := apperr.ParseAcceptLanguage(r.Header.Get("Accept-Language"))
		next.ServeHTTP(w, r.WithContext(apperr.WithLang(r.Context(), lang)))
	})
}

// withCaller verifies the Authorization header, when there is one, and
// records the caller or the precise reason verification failed. Operations
// decide whether they need a caller (auth.Require).
func withCaller(v *auth.Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, present := auth.BearerToken(r.Header.Get("Authorization"))
		if !present {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		if c, err := v.Verify(ctx, tok); err != nil {
			ctx = auth.WithFailure(ctx, err)
		} else {
			ctx = auth.WithCaller(ctx, c)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// writeError writes a GraphQL-shaped error body for failures that happen
// before GraphQL runs (too large, ...).
func writeError(w http.ResponseWriter, r *http.Request, status int, e *apperr.Error) {
	lang := apperr.LangFrom(r.Context())
	writeJSON(w, status, map[string]any{"errors": []any{map[string]any{
		"message":    e.Message.In(lang),
		"extensions": map[string]any{"code": e.Code},
	}}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
