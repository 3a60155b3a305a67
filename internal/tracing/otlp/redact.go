package otlp

import (
	"context"
	"regexp"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The Graph SDK's own spans record the full request URL (url.full,
// http.request_url) and, on a transport failure, an error that quotes it:
// the mailbox address is in the path (/users/{mail}/...), and the delta or
// skip token in the query. calsync's own spans carry none of these, but
// every span leaving the process goes through the same filter, so a
// dependency that starts recording more cannot leak them either.
var (
	// Query strings carry delta, skip and state tokens, and filters.
	queryRE = regexp.MustCompile(`\?[^\s"'<>]*`)
	// The user segment of a Graph path: a mail address or an object id.
	userRE = regexp.MustCompile(`(?i)/users/[^/?\s"'<>]+`)
	// A mail address anywhere else (also percent-encoded).
	mailRE   = regexp.MustCompile(`(?i)[a-z0-9._%+\-]+(@|%40)[a-z0-9\-]+(\.[a-z0-9\-]+)+`)
	bearerRE = regexp.MustCompile(`(?i)bearer\s+[a-z0-9\-._~+/]+=*`)
)

// Redact removes mail addresses, Graph user path segments, query strings
// and bearer tokens from s.
func Redact(s string) string {
	s = queryRE.ReplaceAllString(s, "?[redacted]")
	s = userRE.ReplaceAllString(s, "/users/{id}")
	s = mailRE.ReplaceAllString(s, "[mailbox]")
	return bearerRE.ReplaceAllString(s, "Bearer [redacted]")
}

// redacting passes spans to the exporter with every string attribute (of
// the span and its events), the span's name and its status text redacted.
type redacting struct{ sdktrace.SpanExporter }

func (r redacting) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = redactedSpan{ReadOnlySpan: s}
	}
	return r.SpanExporter.ExportSpans(ctx, out)
}

// redactedSpan is a finished span seen through Redact.
type redactedSpan struct{ sdktrace.ReadOnlySpan }

func (s redactedSpan) Name() string { return Redact(s.ReadOnlySpan.Name()) }

func (s redactedSpan) Attributes() []attribute.KeyValue {
	return redactAttrs(s.ReadOnlySpan.Attributes())
}

func (s redactedSpan) Events() []sdktrace.Event {
	evs := s.ReadOnlySpan.Events()
	if len(evs) == 0 {
		return evs
	}
	out := make([]sdktrace.Event, len(evs))
	for i, e := range evs {
		e.Name = Redact(e.Name)
		e.Attributes = redactAttrs(e.Attributes)
		out[i] = e
	}
	return out
}

func (s redactedSpan) Status() sdktrace.Status {
	st := s.ReadOnlySpan.Status()
	st.Description = Redact(st.Description)
	return st
}

func redactAttrs(in []attribute.KeyValue) []attribute.KeyValue {
	if len(in) == 0 {
		return in
	}
	out := make([]attribute.KeyValue, len(in))
	for i, kv := range in {
		switch kv.Value.Type() {
		case attribute.STRING:
			kv.Value = attribute.StringValue(Redact(kv.Value.AsString()))
		case attribute.STRINGSLICE:
			ss := kv.Value.AsStringSlice()
			for j := range ss {
				ss[j] = Redact(ss[j])
			}
			kv.Value = attribute.StringSliceValue(ss)
		}
		out[i] = kv
	}
	return out
}
