package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tehaishokunin/calsync/internal/attackdoc"
)

// hostileCase is one attack on /graphql, sent without a token as anyone
// on the network could.
type hostileCase struct {
	name string
	n    int
	get  bool
	body func(i int) string // the query text
}

// asCaller is a case sent again with a valid token: the document limits
// hold for callers too, past the smaller body limit strangers meet.
func asCaller(c hostileCase) hostileCase { c.name = "with a token: " + c.name; return c }

// hostileCases are the attacks, sent without a token as anyone could,
// then the heavy ones again with a token.
func hostileCases() []hostileCase {
	cases := []hostileCase{
		{"fragment fan-out, 30 levels (~1 KB), POST", 50, false, func(int) string { return attackdoc.FanOut(30) }},
		{"fragment fan-out, 30 levels, as a GET URL", 50, true, func(int) string { return attackdoc.FanOut(30) }},
		{"20,000 × __typename (220 KB)", 20, false, func(int) string { return "{ " + strings.Repeat("__typename ", 20000) + "}" }},
		{"6,000 chained fragments", 20, false, func(int) string { return attackdoc.Chain(6000) }},
		{"distinct ~1 MB documents of tiny operations", 40, false, func(i int) string { return attackdoc.TinyOps(i, 1000_000) }},
		{"~1 MB of unknown directives", 20, false, func(int) string { return "{ __typename " + strings.Repeat("@x ", 330_000) + "}" }},
		{"the largest document allowed, 1,000 fields (16 KB)", 50, false, func(int) string { return "{ " + strings.Repeat("__typename ", 1000) + "}" }},
	}
	for _, c := range cases[2:6] {
		cases = append(cases, asCaller(c))
	}
	return cases
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ = 100 on Linux)
}

// hostile measures what each attack costs calsync: CPU time and resident
// memory per request, and the largest answer.
func hostile(ctx context.Context, e *env, r *Report) error {
	pid := e.proc.Process.Pid
	for _, c := range hostileCases() {
		n := c.n
		if e.opts.Duration < time.Second {
			n = max(2, n/10) // smoke
		}
		rss0, cpu0 := rss(pid), cpuSeconds(pid)
		largest := 0
		for i := 0; i < n; i++ {
			q := c.body(i)
			var req *http.Request
			if c.get {
				req, _ = http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/graphql?"+url.Values{"query": {q}}.Encode(), nil)
			} else {
				body, _ := json.Marshal(map[string]any{"query": q, "operationName": nil})
				req, _ = http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/graphql", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
			}
			if strings.HasPrefix(c.name, "with a token: ") {
				req.Header.Set("Authorization", "Bearer "+e.token)
			}
			resp, err := e.client.Do(req)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			largest = max(largest, len(b))
		}
		cpu := (cpuSeconds(pid) - cpu0) / float64(n) * 1000
		grew := rss(pid) - rss0
		r.add("6. Hostile input", c.name+": CPU per request", fmt.Sprintf("%.2f ms", cpu), "", "", "< 10 ms", yes(cpu < 10))
		r.add("6. Hostile input", c.name+": RSS growth over "+strconv.Itoa(n)+" requests, largest answer",
			fmt.Sprintf("%+.1f MiB, %d B", grew, largest), "", "", "< 32 MiB, < 16 KiB", yes(grew < 32 && largest < 16<<10))
	}
	return nil
}
