// Package bench measures calsync as a real process against a real Postgres
// and the Graph emulator, next to baselines measured in the same run, and
// renders BENCHMARKS.md. `make bench` runs it in full; `make test` runs a
// few-second smoke version so it cannot rot.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
)

// Options size a run.
type Options struct {
	Binary      string        // calsync binary; built when empty
	DatabaseURL string        // a database the run may drop and recreate
	Duration    time.Duration // per load phase
	Users       int           // linked users for sync-back
	EditRate    int           // Outlook edits per second
	Renewals    int           // subscriptions coming due
	Links       int           // links for the footprint
	Sockets     int           // websocket subscribers for the footprint
	IngestRate  int           // POSTs per second at the fixed rate
	Clients     int           // concurrent clients at saturation
	PushOps     int           // single upserts
	AvailUsers  int           // users asked about in one calendarAvailability
	AvailEvents int           // Outlook events in each of their calendars
	AvailRuns   int           // calendarAvailability calls timed
	Log         io.Writer
	ProcessLog  io.Writer // calsync's own log (warnings and errors)
	ExtraEnv    []string  // added to calsync's environment (later wins)
	Only        []string  // run just these steps (by name); all when empty
}

// Smoke is a few-second run for make test.
func Smoke() Options {
	return Options{Duration: 700 * time.Millisecond, Users: 5, EditRate: 10, Renewals: 40, Links: 200, Sockets: 20,
		IngestRate: 200, Clients: 4, PushOps: 20, AvailUsers: 5, AvailEvents: 20, AvailRuns: 5}
}

// Full is the run `make bench` does.
func Full() Options {
	return Options{Duration: 10 * time.Second, Users: 1000, EditRate: 50, Renewals: 10000, Links: 10000, Sockets: 1000,
		IngestRate: 1000, Clients: 16, PushOps: 300, AvailUsers: 500, AvailEvents: 300, AvailRuns: 200}
}

// Row is one figure of the report.
type Row struct {
	Section, Figure, Value, Baseline, Ratio, Target, Met string
}

// Report is what a run measured.
type Report struct {
	Rows    []Row
	Notes   []string
	CPUs    int
	Date    time.Time
	Command string
}

func (r *Report) add(section, figure, value, baseline, ratio, target, met string) {
	r.Rows = append(r.Rows, Row{section, figure, value, baseline, ratio, target, met})
}

func (o Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

const jwtSecret = "bench-jwt-secret-bench-jwt-secret-0123"

// env is a running calsync process plus its emulator.
type env struct {
	bin     string
	procEnv []string
	opts    Options
	emu     *graphemu.Server
	proc    *exec.Cmd
	base    string
	store   *db.Store
	token   string
	users   []graphemu.UserSpec
	started time.Duration
	binSize int64
	client  *http.Client
	// The read model's users, seeded before the other steps, and the day
	// their events are spread from.
	availUsers []graphemu.UserSpec
	availDay   time.Time
	// ingest is the notification load, set up by the first step using it.
	ingest *ingestLoad
}

const (
	benchTenant = "b3c4d5e6-0000-4000-8000-00000000be01"
	benchClient = "b3c4d5e6-1111-4000-8000-00000000be01"
	benchSecret = "Bn8Q~benchmark-secret-value-00000001"
	benchDomain = "bench.onmicrosoft.com"
	company     = "bench-co"
)

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func resetDatabase(ctx context.Context, dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	a := db.Open(admin.String(), db.Options{MaxOpenConns: 1})
	defer a.Close()
	_, _ = a.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()", name)
	if _, err := a.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`"`); err != nil {
		return err
	}
	_, err = a.ExecContext(ctx, `CREATE DATABASE "`+name+`"`)
	return err
}

func start(ctx context.Context, o Options) (*env, error) {
	if err := resetDatabase(ctx, o.DatabaseURL); err != nil {
		return nil, fmt.Errorf("resetting the bench database: %w", err)
	}
	emu, err := graphemu.Start("", graphemu.Options{RetryBase: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	users := []graphemu.UserSpec{}
	for i := 0; i < max(o.Users, 1); i++ {
		users = append(users, graphemu.UserSpec{Mail: fmt.Sprintf("user%04d@%s", i, benchDomain), DisplayName: fmt.Sprintf("作業員 %d", i)})
	}
	users, err = emu.AddTenant(graphemu.TenantSpec{TenantID: benchTenant, Domain: benchDomain,
		Apps: []graphemu.AppSpec{{ClientID: benchClient, Secret: benchSecret, Roles: []string{"Calendars.ReadWrite", "User.Read.All"}}}, Users: users})
	if err != nil {
		emu.Close()
		return nil, err
	}
	dir, _ := os.MkdirTemp("", "calsync-bench")
	ca := filepath.Join(dir, "ca.pem")
	_ = os.WriteFile(ca, emu.CAPEM, 0o600)
	bin := o.Binary
	if bin == "" {
		bin = filepath.Join(dir, "calsync")
		// As make build does: without the symbol table and DWARF (stack
		// traces and pprof keep their names from pclntab).
		build := exec.CommandContext(ctx, "go", append(append([]string{"build"}, buildFlags...), "-ldflags", "-s -w", "-o", bin, "./cmd/calsync")...)
		build.Dir = moduleRoot()
		build.Stderr = o.Log
		if err := build.Run(); err != nil {
			emu.Close()
			return nil, fmt.Errorf("building calsync: %w", err)
		}
	}
	st, _ := os.Stat(bin)
	addr, _ := freePort()
	e := &env{opts: o, emu: emu, base: "http://" + addr, users: users, binSize: st.Size(),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 0}}}
	e.bin = bin
	e.procEnv = append(os.Environ(),
		"CALSYNC_GRAPH=emulator", "CALSYNC_GRAPH_BASE_URL="+emu.URL, "CALSYNC_LOGIN_BASE_URL="+emu.URL, "CALSYNC_GRAPH_CA_FILE="+ca,
		"CALSYNC_ADDR="+addr, "CALSYNC_PUBLIC_URL="+e.base, "DATABASE_URL="+o.DatabaseURL, "CALSYNC_JWT_SECRET="+jwtSecret,
		"CALSYNC_LOG_LEVEL=warn", "CALSYNC_DEV_DIR="+dir, "CALSYNC_MAX_BODY_BYTES=8388608",
		"CALSYNC_COMPANY_MUTATIONS_PER_SECOND=1000000", "CALSYNC_COMPANY_MUTATION_BURST=1000000",
		// The footprint's 1,000 subscribers share one token here; in
		// production they are as many users.
		"CALSYNC_WS_SUBSCRIPTIONS_PER_CALLER=5000", "CALSYNC_WS_SUBSCRIPTIONS_PER_CONNECTION=5000")
	e.procEnv = append(e.procEnv, o.ExtraEnv...)
	began := time.Now()
	if err := e.launch(); err != nil {
		emu.Close()
		return nil, err
	}
	e.started = time.Since(began)
	e.store = db.NewStore(db.Open(o.DatabaseURL, db.Options{MaxOpenConns: 8}))
	e.token, _ = auth.Sign([]byte(jwtSecret), auth.Caller{UserID: "bench", CompanyID: company,
		Roles: []auth.Role{auth.SystemAdmin, auth.UserAdmin, auth.Service}}, 2*time.Hour, time.Now())
	r, err := e.gql(ctx, `mutation($in: CalendarAuthInput!){ setCalendarAuth(input: $in){ status } }`,
		map[string]any{"in": map[string]any{"tenantId": benchTenant, "clientId": benchClient, "clientSecret": benchSecret}})
	if err != nil || !strings.Contains(string(r), "VERIFIED") {
		e.stop()
		return nil, fmt.Errorf("registering credentials: %s %v", r, err)
	}
	return e, nil
}

// launch starts the calsync process and waits until /readyz answers 200.
func (e *env) launch() error {
	e.proc = exec.Command(e.bin, "serve")
	e.proc.Env = e.procEnv
	e.proc.Stderr = io.Discard
	if e.opts.ProcessLog != nil {
		e.proc.Stderr = e.opts.ProcessLog
	}
	if err := e.proc.Start(); err != nil {
		return err
	}
	began := time.Now()
	for {
		resp, err := http.Get(e.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Since(began) > 30*time.Second {
			_ = e.proc.Process.Kill()
			return fmt.Errorf("calsync did not become ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// kill ends the calsync process at once (SIGKILL), as a crash would.
func (e *env) kill() {
	_ = e.proc.Process.Kill()
	_ = e.proc.Wait()
}

// buildFlags are added to the go build of calsync: -trimpath as make build
// does, or under a race test run -race instead (race_on_test.go), so the
// build reuses the test run's compiled packages.
var buildFlags = []string{"-trimpath"}

func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// stopProcess ends the calsync process as SIGINT does (drained), killing
// it after 15 s.
func (e *env) stopProcess() {
	if e.proc != nil && e.proc.Process != nil {
		_ = e.proc.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = e.proc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = e.proc.Process.Kill()
		}
	}
}

func (e *env) stop() {
	e.stopProcess()
	if e.store != nil {
		e.store.DB().Close()
	}
	e.emu.Close()
}

// gql posts a GraphQL request and returns the raw data, or an error with
// the errors.
func (e *env) gql(ctx context.Context, query string, vars map[string]any) (json.RawMessage, error) {
	body, err := e.gqlBody(ctx, query, vars)
	if err != nil {
		return nil, err
	}
	return gqlData(body)
}

// gqlBody sends a GraphQL request and reads the whole answer: what a
// latency is timed over (request sent to last byte received), the
// client's own decoding left out.
func (e *env) gqlBody(ctx context.Context, query string, vars map[string]any) ([]byte, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.base+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// gqlData is an answer's data, or its errors as an error.
func gqlData(body []byte) (json.RawMessage, error) {
	var out struct {
		Data   json.RawMessage `json:"data"`
		Errors []any           `json:"errors"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	if len(out.Errors) > 0 {
		b, _ := json.Marshal(out.Errors)
		return out.Data, fmt.Errorf("graphql errors: %s", b)
	}
	return out.Data, nil
}

// rss reads the process's resident set size in MiB.
func rss(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// percentile of sorted durations.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(float64(len(d)-1) * p)
	return d[i]
}

// mean is the average of d (0 when empty).
func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// Run measures everything and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	rep := &Report{CPUs: runtime.NumCPU(), Date: time.Now().UTC()}
	e, err := start(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.stop()
	o.logf("calsync ready in %v", e.started)
	idle := rss(e.proc.Process.Pid)

	steps := []struct {
		name string
		fn   func(context.Context, *env, *Report) error
	}{
		{"webhook ingest", ingest},
		{"ingest tracing", ingestTracing},
		{"push", push},
		{"sync-back latency", syncBack},
		{"renewal", renewal},
		{"idle resync", idleResync},
		{"footprint", func(ctx context.Context, e *env, r *Report) error { return footprint(ctx, e, r, idle) }},
		// After the footprint: 150,000 events read would count in its RSS.
		{"read model", availability},
		// Last: the attacks' garbage must not count in the footprint.
		{"hostile input", hostile},
	}
	if len(o.Only) == 0 || slices.Contains(o.Only, "read model") {
		if err := seedAvailability(e); err != nil {
			return rep, err
		}
	}
	for _, s := range steps {
		if len(o.Only) > 0 && !slices.Contains(o.Only, s.name) {
			continue
		}
		o.logf("== %s", s.name)
		if err := s.fn(ctx, e, rep); err != nil {
			return rep, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return rep, nil
}
