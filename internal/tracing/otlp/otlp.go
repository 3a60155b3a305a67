// Package otlp installs calsync's tracer provider: an OTLP/HTTP
// (protobuf) exporter configured by the standard OTEL_* variables, off
// when no endpoint is set. It is its own package so that only the binary
// compiles the SDK and the exporter; the code that starts spans needs
// package tracing alone.
package otlp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/tehaishokunin/calsync/internal/tracing"
)

// Config is the exporter's settings, read from OTEL_* variables.
type Config struct {
	// Endpoint is the full URL spans are POSTed to ("" : tracing off).
	Endpoint    string
	Headers     map[string]string
	Timeout     time.Duration
	Compression bool
	// CAFile is a PEM bundle to trust for an https endpoint.
	CAFile     string
	Resource   []attribute.KeyValue
	Sampler    sdktrace.Sampler
	SamplerSet string // the sampler's name, for the start-up log
	Batch      []sdktrace.BatchSpanProcessorOption
}

// Load reads the standard OTEL_* variables (the OpenTelemetry
// specification's names and units: durations in milliseconds). The
// traces-specific variable wins over the general one. Tracing is off when
// neither endpoint variable is set, when OTEL_SDK_DISABLED=true, or when
// OTEL_TRACES_EXPORTER=none.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	fail := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	// either returns the traces-specific variable or else the general one,
	// and the name of the one it read.
	either := func(suffix string) (string, string) {
		if v := get("OTEL_EXPORTER_OTLP_TRACES_" + suffix); v != "" {
			return v, "OTEL_EXPORTER_OTLP_TRACES_" + suffix
		}
		return get("OTEL_EXPORTER_OTLP_" + suffix), "OTEL_EXPORTER_OTLP_" + suffix
	}
	var c Config
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return c, nil
	}
	switch e := get("OTEL_TRACES_EXPORTER"); e {
	case "", "otlp":
	case "none":
		return c, nil
	default:
		fail("OTEL_TRACES_EXPORTER", "calsync exports traces by otlp only (or none), got %q", e)
	}
	if v := get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" {
		c.Endpoint = v // used as given
	} else if v := get("OTEL_EXPORTER_OTLP_ENDPOINT"); v != "" {
		c.Endpoint = strings.TrimRight(v, "/") + "/v1/traces"
	} else {
		return c, errors.Join(errs...)
	}
	if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		fail("OTEL_EXPORTER_OTLP_ENDPOINT", "must be an http:// or https:// URL, got %q", c.Endpoint)
	}
	if p, name := either("PROTOCOL"); p != "" && p != "http/protobuf" {
		fail(name, "calsync exports OTLP over HTTP with protobuf (http/protobuf) only, got %q", p)
	}
	c.Headers = map[string]string{}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		pairs, err := keyValues(get(name))
		if err != nil {
			// The value may hold an API key: name the variable, not the text.
			fail(name, "must be key=value pairs separated by commas")
		}
		for k, v := range pairs {
			c.Headers[k] = v
		}
	}
	c.Timeout = 10 * time.Second
	if v, name := either("TIMEOUT"); v != "" {
		c.Timeout = millis(name, v, fail)
	}
	switch v, name := either("COMPRESSION"); v {
	case "", "none":
	case "gzip":
		c.Compression = true
	default:
		fail(name, "must be gzip or none, got %q", v)
	}
	if v, _ := either("CERTIFICATE"); v != "" {
		c.CAFile = v
	}

	attrs, err := keyValues(get("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		fail("OTEL_RESOURCE_ATTRIBUTES", "must be key=value pairs separated by commas")
	}
	if n := get("OTEL_SERVICE_NAME"); n != "" {
		attrs["service.name"] = n
	} else if attrs["service.name"] == "" {
		attrs["service.name"] = "calsync"
	}
	for k, v := range attrs {
		c.Resource = append(c.Resource, attribute.String(k, v))
	}

	c.SamplerSet = get("OTEL_TRACES_SAMPLER")
	arg := get("OTEL_TRACES_SAMPLER_ARG")
	ratio := func() float64 {
		if arg == "" {
			return 1
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			fail("OTEL_TRACES_SAMPLER_ARG", "must be a ratio from 0 to 1, got %q", arg)
			return 1
		}
		return r
	}
	switch c.SamplerSet {
	case "", "parentbased_always_on":
		c.SamplerSet = "parentbased_always_on"
		c.Sampler = sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "always_on":
		c.Sampler = sdktrace.AlwaysSample()
	case "always_off":
		c.Sampler = sdktrace.NeverSample()
	case "parentbased_always_off":
		c.Sampler = sdktrace.ParentBased(sdktrace.NeverSample())
	case "traceidratio":
		c.Sampler = sdktrace.TraceIDRatioBased(ratio())
	case "parentbased_traceidratio":
		c.Sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio()))
	default:
		fail("OTEL_TRACES_SAMPLER", "unknown sampler %q", c.SamplerSet)
	}

	if v := get("OTEL_BSP_SCHEDULE_DELAY"); v != "" {
		c.Batch = append(c.Batch, sdktrace.WithBatchTimeout(millis("OTEL_BSP_SCHEDULE_DELAY", v, fail)))
	}
	if v := get("OTEL_BSP_EXPORT_TIMEOUT"); v != "" {
		c.Batch = append(c.Batch, sdktrace.WithExportTimeout(millis("OTEL_BSP_EXPORT_TIMEOUT", v, fail)))
	}
	if v := get("OTEL_BSP_MAX_QUEUE_SIZE"); v != "" {
		c.Batch = append(c.Batch, sdktrace.WithMaxQueueSize(count("OTEL_BSP_MAX_QUEUE_SIZE", v, fail)))
	}
	if v := get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"); v != "" {
		c.Batch = append(c.Batch, sdktrace.WithMaxExportBatchSize(count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", v, fail)))
	}
	return c, errors.Join(errs...)
}

// millis reads a positive whole number of milliseconds.
func millis(name, v string, fail func(string, string, ...any)) time.Duration {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > int64(24*time.Hour/time.Millisecond) {
		fail(name, "must be a positive number of milliseconds, got %q", v)
		return time.Second
	}
	return time.Duration(n) * time.Millisecond
}

// count reads a positive count of at most a million.
func count(name, v string, fail func(string, string, ...any)) int {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 1_000_000 {
		fail(name, "must be a positive whole number up to 1000000, got %q", v)
		return 1
	}
	return n
}

// keyValues parses the specification's "k1=v1,k2=v2" form (values
// URL-encoded); on an error it returns an empty map with it.
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return map[string]string{}, errors.New("malformed pair")
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return map[string]string{}, err
		}
		out[k] = dv
	}
	return out, nil
}

// Setup installs the tracer provider Config describes and returns the
// function that flushes and removes it; with tracing off it installs
// nothing and the function does nothing.
func Setup(ctx context.Context, c Config, log *slog.Logger) (func(context.Context) error, error) {
	if c.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(c.Endpoint),
		otlptracehttp.WithHeaders(c.Headers), otlptracehttp.WithTimeout(c.Timeout)}
	if c.Compression {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_CERTIFICATE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("OTEL_EXPORTER_OTLP_CERTIFICATE: no PEM certificate in the file")
		}
		opts = append(opts, otlptracehttp.WithTLSClientConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("starting the OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(c.Resource...))
	if err != nil {
		return nil, fmt.Errorf("building the trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(redacting{exp}, c.Batch...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(c.Sampler),
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("exporting traces failed", slog.String("error", Redact(err.Error())))
	}))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	otel.SetTracerProvider(tp) // the Graph SDK's own spans go here too
	tracing.Use(tp)
	log.Info("tracing on", slog.String("endpoint", redactURL(c.Endpoint)), slog.String("sampler", c.SamplerSet))
	return func(ctx context.Context) error {
		tracing.Use(nil)
		otel.SetTracerProvider(noop.NewTracerProvider())
		return tp.Shutdown(ctx)
	}, nil
}

// redactURL keeps an endpoint's scheme, host and path (no user info or
// query, which may hold a key).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}
