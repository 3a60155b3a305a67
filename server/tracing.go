package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tehaishokunin/calsync/internal/tracing"
)

// traced gives each request a server span named by its route (never by
// its path or query), continuing the caller's traceparent when it sent
// one. Websocket upgrades get none: that span would last as long as the
// connection; each change sent on it has its own (websocket.send). With
// tracing off the handler is returned as it is.
func traced(route string, h http.Handler) http.Handler {
	if !tracing.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			h.ServeHTTP(w, r)
			return
		}
		ctx, span := tracing.Start(tracing.Extract(r.Context(), r.Header), r.Method+" "+route,
			trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
				attribute.String("http.request.method", r.Method), attribute.String("http.route", route)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// maxOperationName bounds the operation name recorded on a span (the
// client chooses it).
const maxOperationName = 64

// traceOperations gives each query and mutation a span (a child of the
// request's), so a push's Graph calls hang under the mutation that made
// them. Subscriptions get none (they last as long as the socket).
func traceOperations(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc == nil || oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
		return next(ctx)
	}
	name := oc.OperationName
	if len(name) > maxOperationName {
		name = name[:maxOperationName]
	}
	ctx, span := tracing.Start(ctx, "graphql."+string(oc.Operation.Operation), trace.WithAttributes(
		attribute.String("graphql.operation.type", string(oc.Operation.Operation)),
		attribute.String("graphql.operation.name", name)))
	h := next(ctx)
	ended := false
	return func(rctx context.Context) *graphql.Response {
		resp := h(trace.ContextWithSpan(rctx, span))
		if !ended {
			ended = true
			if resp != nil && len(resp.Errors) > 0 {
				span.SetAttributes(attribute.Int("graphql.errors", len(resp.Errors)))
				span.SetStatus(codes.Error, "errors in the response")
			}
			span.End()
		}
		return resp
	}
}
