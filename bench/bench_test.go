package bench

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/tehaishokunin/calsync/db/dbtest"
)

// TestSmoke runs every benchmark for a moment so they cannot rot. It
// checks that each figure was measured, not the targets: these machines
// are shared and noisy (make bench reports the targets).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs calsync")
	}
	u, err := url.Parse(dbtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/calsync_bench_smoke"
	o := Smoke()
	o.DatabaseURL, o.Log = u.String(), testWriter{t}
	rep, err := Run(context.Background(), o)
	if err != nil {
		// The machine is shared: one retry for a transient failure, which
		// is reported either way.
		t.Logf("first smoke run failed, retrying once: %v", err)
		if rep, err = Run(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"1. Webhook ingest", "2. Sync back", "3. Renewal", "4. Push", "5. Footprint", "7. Resync safety net", "8. Read model"}
	seen := map[string]int{}
	for _, r := range rep.Rows {
		seen[r.Section]++
		if r.Value == "" || strings.HasPrefix(r.Value, "0.00 ms /") {
			t.Errorf("%s: %q measured nothing (%q)", r.Section, r.Figure, r.Value)
		}
	}
	for _, r := range rep.Rows {
		if r.Section == "8. Read model" && strings.Contains(r.Figure, "the answer equals") && r.Value != yes(true) {
			t.Errorf("%s: calendarAvailability differs from the live calendarView answer", r.Figure)
		}
		if r.Section == "8. Read model" && strings.Contains(r.Figure, "Graph requests while answering") && r.Value != "0" {
			t.Errorf("%s: calendarAvailability made %s Graph requests", r.Figure, r.Value)
		}
	}
	for _, s := range want {
		if seen[s] == 0 {
			t.Errorf("no figures for %s", s)
		}
	}
	md := rep.Markdown()
	if !strings.Contains(md, "| section | figure |") || !strings.Contains(md, "CPUs") {
		t.Fatalf("report:\n%s", md)
	}
	if os.Getenv("CALSYNC_BENCH_PRINT") != "" {
		t.Log(md)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
