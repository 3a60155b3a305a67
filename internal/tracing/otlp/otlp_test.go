package otlp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tehaishokunin/calsync/internal/tracing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadIsOffWithoutAnEndpoint(t *testing.T) {
	for _, m := range []map[string]string{
		{},
		{"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"},
	} {
		c, err := Load(env(m))
		if err != nil || c.Endpoint != "" {
			t.Fatalf("%v: endpoint %q, err %v", m, c.Endpoint, err)
		}
		stop, err := Setup(context.Background(), c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil || tracing.Enabled() {
			t.Fatalf("%v: tracing on (%v)", m, err)
		}
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadReadsTheStandardVariables(t *testing.T) {
	c, err := Load(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "https://collector.example:4318/",
		"OTEL_EXPORTER_OTLP_HEADERS":     "api-key=s%20ecret,x=1",
		"OTEL_EXPORTER_OTLP_TIMEOUT":     "2500",
		"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
		"OTEL_RESOURCE_ATTRIBUTES":       "deployment.environment=prod,service.name=ignored",
		"OTEL_SERVICE_NAME":              "calsync-tokyo",
		"OTEL_TRACES_SAMPLER":            "parentbased_traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":        "0.25",
		"OTEL_BSP_SCHEDULE_DELAY":        "200",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Endpoint != "https://collector.example:4318/v1/traces" || c.Headers["api-key"] != "s ecret" || c.Timeout != 2500*time.Millisecond || !c.Compression {
		t.Fatalf("%+v", c)
	}
	res := map[string]string{}
	for _, kv := range c.Resource {
		res[string(kv.Key)] = kv.Value.AsString()
	}
	if res["service.name"] != "calsync-tokyo" || res["deployment.environment"] != "prod" {
		t.Fatalf("resource %v", res)
	}
	if !strings.Contains(c.Sampler.Description(), "0.25") || len(c.Batch) != 1 {
		t.Fatalf("sampler %s, batch options %d", c.Sampler.Description(), len(c.Batch))
	}
	// The traces-specific endpoint is used as given.
	c, err = Load(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://b:4318/custom"}))
	if err != nil || c.Endpoint != "http://b:4318/custom" || c.Resource[0].Value.AsString() != "calsync" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestLoadRefusesBadValuesNamingTheVariable(t *testing.T) {
	base := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
	for name, value := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":    "collector:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL":    "grpc",
		"OTEL_EXPORTER_OTLP_TIMEOUT":     "10s",
		"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd",
		"OTEL_TRACES_SAMPLER":            "sometimes",
		"OTEL_TRACES_SAMPLER_ARG":        "2",
		"OTEL_TRACES_EXPORTER":           "zipkin",
		"OTEL_BSP_MAX_QUEUE_SIZE":        "99999999999",
		"OTEL_BSP_SCHEDULE_DELAY":        "-1",
		"OTEL_EXPORTER_OTLP_HEADERS":     "api-key",
		"OTEL_RESOURCE_ATTRIBUTES":       "=x",
	} {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		m[name] = value
		if name == "OTEL_TRACES_SAMPLER_ARG" {
			m["OTEL_TRACES_SAMPLER"] = "traceidratio"
		}
		_, err := Load(env(m))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: %v", name, value, err)
		}
	}
	// A malformed header list may hold a key: the error does not quote it.
	_, err := Load(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "Authorization Bearer sk-live-123"}))
	if err == nil || strings.Contains(err.Error(), "sk-live-123") {
		t.Fatalf("header error %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"https://graph.microsoft.com/v1.0/users/taro.yamada@contoso.com/calendarView/delta?$deltatoken=abc&x=1": "https://graph.microsoft.com/v1.0/users/{id}/calendarView/delta?[redacted]",
		`Get "https://graph/v1.0/users/TARO%40contoso.com/events": dial tcp: refused`:                           `Get "https://graph/v1.0/users/{id}/events": dial tcp: refused`,
		"mailbox hanako@example.co.jp not found":                                                                "mailbox [mailbox] not found",
		"mailbox hanako%40example.co.jp not found":                                                              "mailbox [mailbox] not found",
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc-_=":                                                 "Authorization: Bearer [redacted]",
		"GET /users/{user%2Did}/events":                                                                         "GET /users/{id}/events",
		"delta.round":                                                                                           "delta.round",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExportedSpansAreRedacted runs hostile values through a real tracer
// provider and the redacting exporter.
func TestExportedSpansAreRedacted(t *testing.T) {
	mem := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(redacting{mem}))
	defer tp.Shutdown(context.Background())
	const mail, token = "taro.yamada@contoso.com", "skip-me-0123"
	_, s := tp.Tracer("sdk").Start(context.Background(), "GET /users/"+mail+"/events")
	s.SetAttributes(attribute.String("url.full", "https://graph/v1.0/users/"+mail+"/events?$skiptoken="+token),
		attribute.StringSlice("list", []string{"ok", mail}), attribute.Int("n", 3))
	s.RecordError(errors.New(`Get "https://graph/v1.0/users/` + mail + `/events?$deltatoken=` + token + `": timeout`))
	s.SetStatus(codes.Error, "mailbox "+mail)
	s.End()
	spans := mem.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	var all []string
	sp := spans[0]
	all = append(all, sp.Name, sp.Status.Description)
	for _, kv := range sp.Attributes {
		all = append(all, kv.Value.Emit())
	}
	for _, ev := range sp.Events {
		for _, kv := range ev.Attributes {
			all = append(all, kv.Value.Emit())
		}
	}
	text := strings.Join(all, "\n")
	if strings.Contains(text, mail) || strings.Contains(text, token) {
		t.Fatalf("exported:\n%s", text)
	}
	if !strings.Contains(text, "/users/{id}/events?[redacted]") || !strings.Contains(text, "3") {
		t.Fatalf("redaction lost the rest:\n%s", text)
	}
}
