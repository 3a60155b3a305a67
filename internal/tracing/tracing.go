// Package tracing is calsync's side of OpenTelemetry: starting spans,
// and carrying a span's context across the places a change waits — the
// inbox row, the change feed row, the host webhook's header — as a W3C
// traceparent. It depends on the OpenTelemetry API only; the exporter
// (package tracing/otlp) installs a real tracer provider at start-up.
//
// With no provider installed (OTEL_EXPORTER_OTLP_ENDPOINT unset) every
// call here is a cheap no-op: Start returns the context it was given and
// a span that records nothing, and Traceparent returns "", so nothing is
// stored either.
package tracing

import (
	"context"
	"net/http"
	"sync/atomic"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Name is the instrumentation scope of calsync's own spans.
const Name = "github.com/tehaishokunin/calsync"

var (
	tracer atomic.Pointer[trace.Tracer]
	// noSpan is what Start hands out while tracing is off.
	noSpan = trace.SpanFromContext(context.Background())
	tc     = propagation.TraceContext{}
)

// Use makes calsync's spans go to tp (nil: off). The exporter calls it;
// tests may too.
func Use(tp trace.TracerProvider) {
	if tp == nil {
		tracer.Store(nil)
		return
	}
	t := tp.Tracer(Name)
	tracer.Store(&t)
}

// Enabled says whether spans are recorded at all, so a caller can skip
// work (such as wrapping a handler) that only tracing needs.
func Enabled() bool { return tracer.Load() != nil }

// Start starts a span as a child of the one in ctx. With tracing off it
// returns ctx itself and a span that does nothing.
func Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	t := tracer.Load()
	if t == nil {
		return ctx, noSpan
	}
	return (*t).Start(ctx, name, opts...)
}

// Traceparent is the W3C traceparent of the span in ctx, to be stored
// with work that continues elsewhere; "" when there is no sampled span
// (tracing off, or this trace is not sampled).
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	tc.Inject(ctx, c)
	return c["traceparent"]
}

// Remote returns the span context a stored traceparent names (an invalid
// one for "" or a malformed value: the stored text is never trusted).
func Remote(traceparent string) trace.SpanContext {
	if traceparent == "" || len(traceparent) > 128 {
		return trace.SpanContext{}
	}
	ctx := tc.Extract(context.Background(), propagation.MapCarrier{"traceparent": traceparent})
	return trace.SpanContextFromContext(ctx)
}

// Resume returns ctx with the stored traceparent as the remote parent of
// the next span started from it (ctx unchanged when there is none).
func Resume(ctx context.Context, traceparent string) context.Context {
	sc := Remote(traceparent)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// Inject sets the traceparent header of an outgoing request to the span
// in ctx (nothing when there is none).
func Inject(ctx context.Context, h http.Header) {
	if tp := Traceparent(ctx); tp != "" {
		h.Set("traceparent", tp)
	}
}

// Extract returns ctx with the caller's traceparent header, if it sent a
// valid one, as the parent of the next span.
func Extract(ctx context.Context, h http.Header) context.Context {
	return Resume(ctx, h.Get("traceparent"))
}

// Continue starts a span that picks up stored work: a child of the first
// valid traceparent among parents, with a link to each other one (at most
// maxLinks), so work folded from several traces is found from all of
// them. With no valid parent it is a child of ctx's span.
func Continue(ctx context.Context, name string, parents []string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noSpan
	}
	var first trace.SpanContext
	var links []trace.Link
	for _, p := range parents {
		sc := Remote(p)
		switch {
		case !sc.IsValid():
		case !first.IsValid():
			first = sc
		case len(links) < maxLinks && !sc.Equal(first):
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	if first.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, first)
	}
	if len(links) > 0 {
		opts = append(opts, trace.WithLinks(links...))
	}
	return Start(ctx, name, opts...)
}

// maxLinks bounds the links of one span (a burst folds many notifications
// into one round).
const maxLinks = 32
