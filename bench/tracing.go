package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// ingestTracing measures what tracing costs the notification path: the
// same single-POST loads against calsync restarted with tracing off, then
// on (every notification sampled, its spans exported over OTLP/HTTP to a
// local sink that reads and acknowledges them), back to back in one run.
// calsync is left running as it was.
func ingestTracing(ctx context.Context, e *env, r *Report) error {
	o := e.opts
	l, err := e.ingestLoad(ctx)
	if err != nil {
		return err
	}
	var exports, bytes atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		exports.Add(1)
		bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()
	plain := slices.DeleteFunc(slices.Clone(e.procEnv), func(kv string) bool { return strings.HasPrefix(kv, "OTEL_") })
	traced := append(slices.Clone(plain), "OTEL_EXPORTER_OTLP_ENDPOINT="+sink.URL, "OTEL_TRACES_SAMPLER=always_on")
	type result struct {
		rate     float64
		sat      []time.Duration
		fixed    []time.Duration
		failures int
	}
	measure := func(name string, env []string) (result, error) {
		e.stopProcess()
		e.procEnv = env
		if err := e.launch(); err != nil {
			return result{}, err
		}
		e.drainInbox(ctx)
		var res result
		var f1, f2 int
		_, res.fixed, f1 = l.run(ctx, name+" fixed", 1, o.IngestRate, 0)
		e.drainInbox(ctx)
		res.rate, res.sat, f2 = l.run(ctx, name+" saturation", 1, 0, o.Clients)
		res.failures = f1 + f2
		e.drainInbox(ctx)
		return res, nil
	}
	off, err := measure("tracing off", plain)
	if err != nil {
		return err
	}
	on, err := measure("tracing on", traced)
	if err != nil {
		return err
	}
	// Back to how the other steps expect it.
	e.stopProcess()
	e.procEnv = plain
	if err := e.launch(); err != nil {
		return err
	}
	const section = "1. Webhook ingest"
	p := func(d []time.Duration) string { return ms(percentile(d, 0.5)) + " / " + ms(percentile(d, 0.99)) }
	r.add(section, fmt.Sprintf("tracing on vs off: single POSTs at %d/s, p50 / p99 to the 202", o.IngestRate),
		p(on.fixed), "off: "+p(off.fixed), ratio(float64(percentile(on.fixed, 0.99)), float64(percentile(off.fixed, 0.99))), "", "")
	r.add(section, fmt.Sprintf("tracing on vs off: single POSTs, %d clients, notifications made durable/s (p50 / p99)", o.Clients),
		fmt.Sprintf("%.0f/s (%s)", on.rate, p(on.sat)), fmt.Sprintf("off: %.0f/s (%s)", off.rate, p(off.sat)), ratio(on.rate, off.rate), "", "")
	r.Notes = append(r.Notes, fmt.Sprintf("Tracing on: every notification sampled (always_on), spans batched to a local OTLP/HTTP sink: %d exports, %.1f MiB; %d POSTs failed with tracing on, %d off.",
		exports.Load(), float64(bytes.Load())/(1<<20), on.failures, off.failures))
	return nil
}
