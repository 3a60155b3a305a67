package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestOffIsANoOp(t *testing.T) {
	Use(nil)
	ctx := context.Background()
	got, span := Start(ctx, "x")
	if got != ctx || span.IsRecording() || Traceparent(got) != "" || Enabled() {
		t.Fatal("tracing off still traces")
	}
	h := http.Header{}
	Inject(got, h)
	if len(h) != 0 {
		t.Fatalf("headers %v", h)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, s := Start(ctx, "x")
		s.End()
	}); n != 0 {
		t.Fatalf("Start allocates %v times with tracing off", n)
	}
}

func TestStoredTraceparentsAreNotTrusted(t *testing.T) {
	valid := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if sc := Remote(valid); !sc.IsValid() || !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("valid traceparent read as %v", sc)
	}
	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		valid + strings.Repeat("-x", 100), "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"} {
		if sc := Remote(bad); sc.IsValid() {
			t.Errorf("%q accepted as %v", bad, sc)
		}
		ctx := Resume(context.Background(), bad)
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.Errorf("%q resumed", bad)
		}
	}
	h := http.Header{"Traceparent": []string{valid}}
	if sc := trace.SpanContextFromContext(Extract(context.Background(), h)); sc.SpanID().String() != "00f067aa0ba902b7" {
		t.Fatalf("extracted %v", sc)
	}
}
