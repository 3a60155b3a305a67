package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/subscriptions"
)

// shot is one request of a load: when it was sent (from the load's start)
// and how long its 2xx answer took.
type shot struct{ at, took time.Duration }

func tooks(shots []shot) []time.Duration {
	out := make([]time.Duration, len(shots))
	for i, s := range shots {
		out[i] = s.took
	}
	return out
}

// slowTimeline says when the requests slower than over were sent, by
// bucket of the load's timeline ("1.2s: 37" is 37 slow requests sent in
// the bucket starting 1.2 s in), in time order: a stall shows as a bunch,
// noise as scattered ones.
func slowTimeline(shots []shot, over, bucket time.Duration) string {
	counts := map[time.Duration]int{}
	for _, s := range shots {
		if s.took > over {
			counts[s.at.Truncate(bucket)]++
		}
	}
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%.1fs: %d", k.Seconds(), counts[k])
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// load posts bodies built by body to url (plain http, through poster): at
// a fixed rate (rate > 0) or from clients loops as fast as they can, for
// d. It returns the 2xx answers' shots and the count of other answers.
func load(ctx context.Context, url string, body func() []byte, rate, clients int, d time.Duration) ([]shot, int) {
	p, err := newPoster(url, 30*time.Second)
	if err != nil {
		return nil, 1
	}
	var mu sync.Mutex
	var shots []shot
	var failed int
	start := time.Now()
	// one posts a body on pc; ok is false for an error or a non-2xx answer.
	one := func(pc *postConn) (s shot, ok bool) {
		b := body()
		began := time.Now()
		status, err := pc.post(b)
		return shot{at: began.Sub(start), took: time.Since(began)}, err == nil && status/100 == 2
	}
	keep := func(mine []shot, bad int) {
		mu.Lock()
		shots, failed = append(shots, mine...), failed+bad
		mu.Unlock()
	}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	if rate > 0 {
		// At most 512 requests at once. Idle connections are reused last in,
		// first out, as net/http's client does: a queue would cycle through
		// (and first dial) as many connections as requests can be in
		// flight, each new one slower than a kept one.
		sem := make(chan struct{}, 512)
		var idleMu sync.Mutex
		var idle []*postConn
		get := func() *postConn {
			idleMu.Lock()
			defer idleMu.Unlock()
			if n := len(idle); n > 0 {
				pc := idle[n-1]
				idle = idle[:n-1]
				return pc
			}
			return p.conn()
		}
		put := func(pc *postConn) {
			idleMu.Lock()
			idle = append(idle, pc)
			idleMu.Unlock()
		}
		interval := time.Second / time.Duration(rate)
		next := time.Now()
		for time.Now().Before(deadline) && ctx.Err() == nil {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				pc := get()
				s, ok := one(pc)
				put(pc)
				if ok {
					keep([]shot{s}, 0)
				} else {
					keep(nil, 1)
				}
			}()
			next = next.Add(interval)
			if sleep := time.Until(next); sleep > 0 {
				time.Sleep(sleep)
			}
		}
		wg.Wait()
		for _, pc := range idle {
			pc.close()
		}
	} else {
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pc := p.conn()
				defer pc.close()
				var mine []shot
				bad := 0
				for time.Now().Before(deadline) && ctx.Err() == nil {
					if s, ok := one(pc); ok {
						mine = append(mine, s)
					} else {
						bad++
					}
				}
				keep(mine, bad)
			}()
		}
		wg.Wait()
	}
	return shots, failed
}

// ingestLoad posts Graph-shaped notifications for 50 subscriptions of one
// link (set up once per run) and counts what became durable.
type ingestLoad struct {
	e    *env
	subs []struct{ id, state string }
}

func (e *env) ingestLoad(ctx context.Context) (*ingestLoad, error) {
	if e.ingest != nil {
		return e.ingest, nil
	}
	l := &ingestLoad{e: e}
	link := &db.CalendarLink{CompanyID: company, UserID: "ingest", Provider: db.ProviderOutlook, GraphUserID: &e.users[0].ID, CalendarID: &e.users[0].Mail, Status: db.LinkActive}
	if err := e.store.SaveLink(ctx, link); err != nil {
		return nil, err
	}
	for i := 0; i < 50; i++ {
		s := struct{ id, state string }{fmt.Sprintf("bench-sub-%02d", i), fmt.Sprintf("bench-client-state-%02d-0123456789abcdef", i)}
		l.subs = append(l.subs, s)
		if err := e.store.InsertSubscription(ctx, &db.GraphSubscription{ID: s.id, LinkID: link.ID, CompanyID: company, Resource: "/users/x/events",
			ExpiresAt: time.Now().Add(24 * time.Hour), RenewAt: time.Now().Add(24 * time.Hour), ClientState: s.state, Status: db.SubActive}); err != nil {
			return nil, err
		}
	}
	e.ingest = l
	return l, nil
}

// payload makes bodies of n notifications, written by hand (every value
// is plain ASCII that needs no escaping): json.Marshal of maps cost the
// load generator more CPU than some of what it measures.
func (l *ingestLoad) payload(n int) func() []byte {
	user := l.e.users[0].ID
	return func() []byte {
		b := make([]byte, 0, 64+n*400)
		b = append(b, `{"value":[`...)
		for i := 0; i < n; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			s := l.subs[rand.Intn(len(l.subs))]
			b = append(b, `{"subscriptionId":"`...)
			b = append(b, s.id...)
			b = append(b, `","clientState":"`...)
			b = append(b, s.state...)
			b = append(b, `","changeType":"updated","resource":"Users/`...)
			b = append(b, user...)
			b = append(b, `/Events/AAMk`...)
			b = strconv.AppendInt(b, int64(rand.Int()), 10)
			b = append(b, `","tenantId":"`...)
			b = append(b, benchTenant...)
			b = append(b, `","subscriptionExpirationDateTime":"2026-12-01T00:00:00Z","resourceData":{"@odata.type":"#Microsoft.Graph.Event","id":"AAMk"}}`...)
		}
		return append(b, "]}"...)
	}
}

func (l *ingestLoad) count(ctx context.Context) int {
	n, _ := l.e.store.DB().NewSelect().Table("inbox").Count(ctx)
	return int(n)
}

// run posts bodies of n notifications for the run's duration, at rate
// POSTs/s (0: as fast as clients can), and returns the notifications made
// durable per second, each POST's time to its 202, and the failures.
func (l *ingestLoad) run(ctx context.Context, name string, n, rate, clients int) (float64, []time.Duration, int) {
	e := l.e
	before := l.count(ctx)
	// Each load starts on a collected heap. This process also holds the
	// emulator's events (about 240 MB live in a full run), and a collection
	// of that heap takes about 300 ms on these CPUs, slowing the load
	// generator's goroutines: in a full run, 84 POSTs of the 1,000/s load
	// were timed over 10 ms, all sent between 4.7 and 5.1 s into it.
	runtime.GC()
	began := time.Now()
	shots, failed := load(ctx, e.base+"/webhooks/graph/notifications", l.payload(n), rate, clients, e.opts.Duration)
	el := time.Since(began)
	durable := l.count(ctx) - before
	e.opts.logf("%s: %d POSTs ok, %d failed, %d notifications durable in %v", name, len(shots), failed, durable, el)
	if rate > 0 {
		e.opts.logf("%s: POSTs over 10 ms, by when sent: %s", name, slowTimeline(shots, 10*time.Millisecond, 100*time.Millisecond))
	}
	return float64(durable) / el.Seconds(), tooks(shots), failed
}

// drainInbox waits (up to 2 minutes) for the workers to process the
// inbox, and says how long that took and what is left.
func (e *env) drainInbox(ctx context.Context) (time.Duration, int) {
	began := time.Now()
	for time.Since(began) < 2*time.Minute {
		n, err := e.store.PendingInbox(ctx)
		if err == nil && n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	pending, _ := e.store.PendingInbox(ctx)
	return time.Since(began), pending
}

func ingest(ctx context.Context, e *env, r *Report) error {
	o := e.opts
	l, err := e.ingestLoad(ctx)
	if err != nil {
		return err
	}
	payload := l.payload
	run := func(name string, n, rate, clients int) (float64, []time.Duration, int) {
		return l.run(ctx, name, n, rate, clients)
	}
	// Fixed offered rate.
	_, latFixed, failedFixed := run("fixed", 1, o.IngestRate, 0)
	p99 := percentile(latFixed, 0.99)
	r.add("1. Webhook ingest", fmt.Sprintf("single POSTs at %d/s: p50 / p99 to the 202", o.IngestRate),
		ms(percentile(latFixed, 0.5))+" / "+ms(p99), "", "", "p99 < 10 ms", yes(p99 < 10*time.Millisecond && failedFixed == 0))
	_, latFixed20, _ := run("fixed-20", 20, o.IngestRate/20+1, 0)
	r.add("1. Webhook ingest", fmt.Sprintf("POSTs of 20 at %d/s: p50 / p99 to the 202", o.IngestRate/20+1),
		ms(percentile(latFixed20, 0.5))+" / "+ms(percentile(latFixed20, 0.99)), "", "", "", "")

	// Saturation, against the database's own limit.
	pg, err := pgbench(ctx, o.DatabaseURL, o.Clients, o.Duration)
	if err != nil {
		r.Notes = append(r.Notes, "pgbench baseline unavailable: "+err.Error())
	}
	upper := nopServer(ctx, payload(1), o)
	single, latSat, _ := run("saturation", 1, 0, o.Clients)
	batched, latSat20, _ := run("saturation-20", 20, 0, o.Clients)
	r.add("1. Webhook ingest", fmt.Sprintf("single POSTs, %d clients: notifications made durable/s (p50 / p99)", o.Clients),
		fmt.Sprintf("%.0f/s (%s / %s)", single, ms(percentile(latSat, 0.5)), ms(percentile(latSat, 0.99))),
		fmt.Sprintf("pgbench INSERT+COMMIT: %.0f tps", pg), ratio(single, pg), "≥ 0.70 × pgbench", yes(pg > 0 && single >= 0.7*pg))
	r.add("1. Webhook ingest", fmt.Sprintf("POSTs of 20, %d clients: notifications made durable/s (p50 / p99)", o.Clients),
		fmt.Sprintf("%.0f/s (%s / %s)", batched, ms(percentile(latSat20, 0.5)), ms(percentile(latSat20, 0.99))),
		fmt.Sprintf("pgbench INSERT+COMMIT: %.0f tps", pg), ratio(batched, pg), "> 1.0 × pgbench", yes(pg > 0 && batched > pg))
	r.add("1. Webhook ingest", fmt.Sprintf("upper bound: same parsing, 202 without persisting, %d clients", o.Clients),
		fmt.Sprintf("%.0f POSTs/s", upper), "", ratio(single, upper), "", "")
	// Let the workers finish the backlog before the next phase measures.
	took, pending := e.drainInbox(ctx)
	r.add("1. Webhook ingest", "time for the workers to process the whole ingest backlog (one delta round per link covers a flood)",
		fmt.Sprintf("%v (%d left)", took.Round(time.Millisecond), pending), "", "", "", "")
	return nil
}

// nopServer answers 202 after parsing, like the receiver without the
// database: the upper bound of the HTTP path.
func nopServer(ctx context.Context, body func() []byte, o Options) float64 {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct {
			Value []map[string]any `json:"value"`
		}
		_ = json.NewDecoder(r.Body).Decode(&p)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	began := time.Now()
	shots, _ := load(ctx, srv.URL, body, 0, o.Clients, o.Duration)
	return float64(len(shots)) / time.Since(began).Seconds()
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+)`)

// pgbench measures one INSERT and COMMIT per transaction with clients.
func pgbench(ctx context.Context, dsn string, clients int, d time.Duration) (float64, error) {
	store := db.NewStore(db.Open(dsn, db.Options{MaxOpenConns: 1}))
	defer store.DB().Close()
	if _, err := store.DB().ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_pg (id bigserial PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return 0, err
	}
	script := "/tmp/calsync-bench-pgbench.sql"
	if err := writeFile(script, "INSERT INTO bench_pg (payload) VALUES ('notification');\n"); err != nil {
		return 0, err
	}
	secs := max(int(d.Seconds()), 1)
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, runtime.NumCPU())),
		"-T", strconv.Itoa(secs), "-f", script, dsnForPgbench(dsn))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	m := tpsRe.FindStringSubmatch(string(out))
	if m == nil {
		return 0, fmt.Errorf("no tps in pgbench output")
	}
	return strconv.ParseFloat(m[1], 64)
}

func dsnForPgbench(dsn string) string { return strings.Replace(dsn, "postgres://", "postgresql://", 1) }

func push(ctx context.Context, e *env, r *Report) error {
	o := e.opts
	user := e.users[len(e.users)-1]
	if _, err := e.gql(ctx, `mutation($u: ID!, $in: UserCalendarInput!){ setUserCalendar(userId: $u, input: $in){ status } }`,
		map[string]any{"u": "pusher", "in": map[string]any{"provider": "OFFICE365_OUTLOOK", "calendarId": user.Mail}}); err != nil {
		return err
	}
	// The emulator's own time for the same create, called directly.
	sess, err := outlook.New(outlook.Config{GraphBaseURL: e.emu.URL, LoginBaseURL: e.emu.URL, Transport: e.emu.Transport()}).
		For(outlook.Credentials{TenantID: benchTenant, ClientID: benchClient, ClientSecret: benchSecret})
	if err != nil {
		return err
	}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var direct, directPatch []time.Duration
	var made []string
	for i := 0; i < o.PushOps; i++ {
		t0 := time.Now()
		ev, err := sess.CreateEvent(ctx, user.ID, outlook.Event{Subject: "direct", Start: start, End: start.Add(time.Hour), TimeZone: "UTC"})
		if err != nil {
			return err
		}
		direct = append(direct, time.Since(t0))
		made = append(made, ev.ID)
	}
	// And the same PATCH an update push sends (its subject).
	for _, id := range made {
		t0 := time.Now()
		if _, err := sess.UpdateEvent(ctx, user.ID, id, outlook.Event{Subject: "direct（変更）", Start: start, End: start.Add(time.Hour), TimeZone: "UTC"}, []string{"subject"}, ""); err != nil {
			return err
		}
		directPatch = append(directPatch, time.Since(t0))
	}
	q := `mutation($u: ID!, $in: CalendarEventInput!){ upsertCalendarEvent(userId: $u, input: $in){ outlookEventId } }`
	in := func(i int, subject string) map[string]any {
		s := start.AddDate(0, 0, i%300)
		return map[string]any{"externalId": fmt.Sprintf("push-%05d", i), "subject": subject, "start": s.Format(time.RFC3339), "end": s.Add(time.Hour).Format(time.RFC3339)}
	}
	var creates, updates []time.Duration
	began := time.Now()
	for i := 0; i < o.PushOps; i++ {
		t0 := time.Now()
		if _, err := e.gql(ctx, q, map[string]any{"u": "pusher", "in": in(i, "作業")}); err != nil {
			return err
		}
		creates = append(creates, time.Since(t0))
	}
	createRate := float64(o.PushOps) / time.Since(began).Seconds()
	seqUpdates := e.emu.LastRequestSeq()
	stepsBefore := e.metricSumCounts(ctx, "calsync_push_step_seconds")
	o.logf("push: updates from %s", time.Now().Format("15:04:05.000"))
	for i := 0; i < o.PushOps; i++ {
		t0 := time.Now()
		if _, err := e.gql(ctx, q, map[string]any{"u": "pusher", "in": in(i, "作業（変更）")}); err != nil {
			return err
		}
		updates = append(updates, time.Since(t0))
	}
	o.logf("push: updates until %s", time.Now().Format("15:04:05.000"))
	// Where each update's time went inside calsync (calsync_push_step_seconds,
	// the difference over the updates), and the rest: GraphQL, HTTP, the
	// client.
	var stepMeans []string
	inside := 0.0
	stepsAfter := e.metricSumCounts(ctx, "calsync_push_step_seconds")
	for _, st := range []string{"lock_read", "plan", "graph", "save"} {
		key := `{step="` + st + `"}`
		before, after := stepsBefore[key], stepsAfter[key]
		avg := 0.0
		if dn := after[1] - before[1]; dn > 0 {
			avg = (after[0] - before[0]) / dn
		}
		inside += avg
		stepMeans = append(stepMeans, fmt.Sprintf("%s %.2f ms", st, avg*1000))
	}
	stepMeans = append(stepMeans, fmt.Sprintf("the rest %.2f ms", (mean(updates).Seconds()-inside)*1000))
	echoRounds := 0
	for _, rq := range e.emu.Requests(seqUpdates) {
		if strings.Contains(rq.Path, "/delta") {
			echoRounds++
		}
	}

	dp50 := percentile(direct, 0.5)
	added := percentile(updates, 0.5) - dp50
	pp50 := percentile(directPatch, 0.5)
	r.add("4. Push", "single upserts (create) through GraphQL: ops/s; p50 / p99",
		fmt.Sprintf("%.0f/s; %s / %s", createRate, ms(percentile(creates, 0.5)), ms(percentile(creates, 0.99))),
		"emulator alone (direct SDK create): "+ms(dp50)+" / "+ms(percentile(direct, 0.99)), "", "", "")
	r.add("4. Push", "single upserts (update, one PATCH): time added over the emulator's own create, p50 / p99 (each a difference of percentiles, so the p99 can come out below the p50)",
		ms(added)+" / "+ms(percentile(updates, 0.99)-percentile(direct, 0.99)), "emulator p50 "+ms(dp50), "", "< 2 ms at p50", yes(added < 2*time.Millisecond))
	r.add("4. Push", "single upserts (update): time added over the emulator's own PATCH of the same field, p50 / p99 (differences of percentiles)",
		ms(percentile(updates, 0.5)-pp50)+" / "+ms(percentile(updates, 0.99)-percentile(directPatch, 0.99)),
		"emulator PATCH "+ms(pp50)+" / "+ms(percentile(directPatch, 0.99)), "", "", "")
	r.add("4. Push", "single upserts (update): mean time per step inside calsync (calsync_push_step_seconds; graph is the PATCH through the SDK), and the rest (GraphQL, HTTP, the client)",
		strings.Join(stepMeans, "; "), fmt.Sprintf("mean update %s; the bench's direct PATCH %s", ms(mean(updates)), ms(mean(directPatch))), "", "", "")
	r.add("4. Push", fmt.Sprintf("delta requests while %d updates were pushed (each push's own notification comes back)", o.PushOps),
		strconv.Itoa(echoRounds), "", "", "", "")
	r.add("4. Push", "single upsert (create = adoption lookup + POST): time added over one emulator call, p50",
		ms(percentile(creates, 0.5)-dp50), "", "", "", "")
	// Bulk through $batch.
	bulkQ := `mutation($u: ID!, $in: [CalendarEventInput!]!){ upsertCalendarEvents(userId: $u, inputs: $in){ error { code } } }`
	total, calls := 0, 0
	began = time.Now()
	since := e.emu.LastRequestSeq()
	for b := 0; b < max(o.PushOps/100, 1); b++ {
		var ins []map[string]any
		for i := 0; i < 100; i++ {
			ins = append(ins, in(100000+b*100+i, "一括"))
		}
		if _, err := e.gql(ctx, bulkQ, map[string]any{"u": "pusher", "in": ins}); err != nil {
			return err
		}
		total += 100
	}
	el := time.Since(began)
	for _, rq := range e.emu.Requests(since) {
		if rq.Path == "/v1.0/$batch" {
			calls++
		}
	}
	r.add("4. Push", "bulk upserts (100 per mutation, $batch of 20): events/s; batch calls",
		fmt.Sprintf("%.0f/s; %d calls for %d events", float64(total)/el.Seconds(), calls, total), "", "", "", "")
	return nil
}

func subscribeWS(ctx context.Context, e *env, onChange func(map[string]any)) (*websocket.Conn, error) {
	u := strings.Replace(e.base, "http", "ws", 1) + "/graphql"
	c, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + e.token}}); err != nil {
		return nil, err
	}
	var ack map[string]any
	if err := wsjson.Read(ctx, c, &ack); err != nil {
		return nil, err
	}
	if err := wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription { calendarChanged { cursor outlookEventId changeType } }`}}); err != nil {
		return nil, err
	}
	if onChange != nil {
		go func() {
			for {
				var m map[string]any
				if err := wsjson.Read(ctx, c, &m); err != nil {
					return
				}
				if m["type"] == "next" {
					if p, ok := m["payload"].(map[string]any); ok {
						if d, ok := p["data"].(map[string]any); ok {
							if ch, ok := d["calendarChanged"].(map[string]any); ok {
								onChange(ch)
							}
						}
					}
				}
			}
		}()
	}
	return c, nil
}

func syncBack(ctx context.Context, e *env, r *Report) error {
	o := e.opts
	began := time.Now()
	for start := 0; start < o.Users; start += 100 {
		var ins []map[string]any
		for i := start; i < min(start+100, o.Users); i++ {
			ins = append(ins, map[string]any{"userId": fmt.Sprintf("craftsman-%04d", i), "provider": "OFFICE365_OUTLOOK", "calendarId": e.users[i].Mail})
		}
		if _, err := e.gql(ctx, `mutation($in: [UserCalendarBulkInput!]!){ setUserCalendars(inputs: $in){ error { code message } } }`, map[string]any{"in": ins}); err != nil {
			return err
		}
	}
	o.logf("linked %d users in %v", o.Users, time.Since(began))
	var mu sync.Mutex
	sent := map[string]time.Time{}
	recv := map[string]time.Time{}
	owner := map[string]graphemu.UserSpec{}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := subscribeWS(wctx, e, func(ch map[string]any) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if _, dup := recv[fmt.Sprint(ch["outlookEventId"])]; !dup {
			recv[fmt.Sprint(ch["outlookEventId"])] = now
		}
	})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	time.Sleep(200 * time.Millisecond) // the subscription registers
	upkeepSum0, upkeepN0 := e.metricSumCount(ctx, "calsync_mirror_upkeep_seconds", "")
	pools0 := e.scrape(ctx)
	since := e.emu.LastRequestSeq()
	client := e.emu.Client()
	interval := time.Second / time.Duration(o.EditRate)
	// The edits start on a collected heap, as each ingest load does: this
	// process holds the emulator's events, and a collection of them slows
	// the emulator's notifications for a few hundred milliseconds.
	runtime.GC()
	var gc0 runtime.MemStats
	runtime.ReadMemStats(&gc0)
	editsBegan := time.Now()
	deadline := editsBegan.Add(o.Duration)
	edits := 0
	var wg sync.WaitGroup
	for next := time.Now(); time.Now().Before(deadline); next = next.Add(interval) {
		u := e.users[rand.Intn(o.Users)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := `{"subject":"Outlook での変更","start":{"dateTime":"2026-12-02T10:00:00","timeZone":"Tokyo Standard Time"},"end":{"dateTime":"2026-12-02T11:00:00","timeZone":"Tokyo Standard Time"}}`
			t0 := time.Now()
			resp, err := client.Post(e.emu.URL+"/_emulator/users/"+u.ID+"/events", "application/json", strings.NewReader(body))
			if err != nil {
				return
			}
			var ev map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&ev)
			resp.Body.Close()
			mu.Lock()
			sent[fmt.Sprint(ev["id"])] = t0
			owner[fmt.Sprint(ev["id"])] = u
			mu.Unlock()
		}()
		edits++
		if sleep := time.Until(next.Add(interval)); sleep > 0 {
			time.Sleep(sleep)
		}
	}
	wg.Wait()
	seen := func() int {
		n := 0
		for id := range sent {
			if _, ok := recv[id]; ok {
				n++
			}
		}
		return n
	}
	for wait := time.Now().Add(15 * time.Second); time.Now().Before(wait); time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		done := seen() == len(sent)
		mu.Unlock()
		if done {
			break
		}
	}
	graphCalls := 0
	reqs := e.emu.Requests(since)
	for _, rq := range reqs {
		if strings.HasPrefix(rq.Path, "/v1.0/") {
			graphCalls++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var shots []shot
	var slow []string
	dels := e.emu.Deliveries(editsBegan)
	for id, t0 := range sent {
		if t, ok := recv[id]; ok {
			shots = append(shots, shot{at: t0.Sub(editsBegan), took: t.Sub(t0)})
			if t.Sub(t0) > 50*time.Millisecond {
				slow = append(slow, splitEdit(reqs, dels, owner[id], id, t0, t))
			}
		}
	}
	if len(slow) > 0 {
		o.logf("sync back: slow edits (made at; to its notification POST sent, that POST until its 202 (and how many it carried); "+
			"to the answer of its delta request; then to the websocket): %s", strings.Join(slow, " | "))
	}
	lats := tooks(shots)
	var gc1 runtime.MemStats
	runtime.ReadMemStats(&gc1)
	o.logf("sync back: edits over 50 ms, by when made: %s; collections in this process during the edits: %d; waits for a pooled Postgres connection in calsync: %s",
		slowTimeline(shots, 50*time.Millisecond, time.Second), gc1.NumGC-gc0.NumGC, poolWaits(pools0, e.scrape(ctx)))
	p99 := percentile(lats, 0.99)
	perChange := float64(graphCalls) / float64(max(len(lats), 1))
	upkeepSum, upkeepN := e.metricSumCount(ctx, "calsync_mirror_upkeep_seconds", "")
	upkeep := time.Duration((upkeepSum - upkeepSum0) / float64(max(len(lats), 1)) * float64(time.Second))
	r.add("2. Sync back", fmt.Sprintf("%d linked users, %d Outlook edits/s: edit → websocket subscriber, p50 / p99 (%d of %d seen)", o.Users, o.EditRate, len(lats), edits),
		ms(percentile(lats, 0.5))+" / "+ms(p99), "", "", "p99 < 50 ms", yes(p99 < 50*time.Millisecond && len(lats) == edits))
	r.add("2. Sync back", fmt.Sprintf("read-model mirror upkeep inside those rounds: mean time per reported change (%.0f statements)", upkeepN-upkeepN0),
		ms(upkeep), "", fmt.Sprintf("%.1f %% of the p99", 100*float64(upkeep)/float64(max(p99, 1))), "< 10 % of the p99", yes(upkeep*10 < p99))
	r.add("2. Sync back", "Graph requests per reported change", fmt.Sprintf("%.2f (%d requests)", perChange, graphCalls), "", "", "≤ 1.2", yes(perChange <= 1.2))
	return nil
}

// splitEdit tells where a slow edit's time went: until the emulator sent
// the notification POST naming it (the emulator's notifier sends one POST
// at a time to a URL, so this is the wait behind the one before), that
// POST until calsync's 202, until the emulator answered the first delta
// request for its mailbox after it (the claim and the round's start), and
// after that (the round's writes, the feed, the websocket).
func splitEdit(reqs []graphemu.RequestRecord, dels []graphemu.DeliveryRecord, u graphemu.UserSpec, id string, made, seen time.Time) string {
	out := made.Format("15:04:05.000")
	for _, d := range dels {
		if slices.Contains(d.EventIDs, id) {
			out += fmt.Sprintf("; sent +%s; 202 after %s (%d)", ms(d.Sent.Sub(made)), ms(d.Answered.Sub(d.Sent)), d.Count)
			break
		}
	}
	for _, rq := range reqs {
		if rq.At.After(made) && strings.Contains(rq.Path, "/delta") &&
			(strings.Contains(rq.Path, "/users/"+u.ID+"/") || strings.Contains(rq.Path, "/users/"+u.Mail+"/")) {
			return fmt.Sprintf("%s; delta +%s; websocket +%s", out, ms(rq.At.Sub(made)), ms(seen.Sub(rq.At)))
		}
	}
	return fmt.Sprintf("%s; no delta request; websocket +%s", out, ms(seen.Sub(made)))
}

func renewal(ctx context.Context, e *env, r *Report) error {
	o := e.opts
	link, err := e.store.Link(ctx, company, "pusher")
	if err != nil || link == nil {
		return fmt.Errorf("no link for renewal rows: %v", err)
	}
	sess, err := outlook.New(outlook.Config{GraphBaseURL: e.emu.URL, LoginBaseURL: e.emu.URL, Transport: e.emu.Transport()}).
		For(outlook.Credentials{TenantID: benchTenant, ClientID: benchClient, ClientSecret: benchSecret})
	if err != nil {
		return err
	}
	ids := make([]string, o.Renewals)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var firstErr atomic.Value
	for i := 0; i < o.Renewals; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			u := e.users[i%len(e.users)]
			s, err := sess.CreateSubscription(ctx, outlook.SubscriptionRequest{Resource: "/users/" + u.ID + "/events", ChangeTypes: []string{"updated"},
				NotificationURL: e.base + subscriptions.NotificationPath, ClientState: fmt.Sprintf("renew-%06d", i), Expiration: time.Now().Add(2 * time.Hour)})
			if err == nil {
				err = e.store.InsertSubscription(ctx, &db.GraphSubscription{ID: s.ID, LinkID: link.ID, CompanyID: company, Resource: s.Resource,
					ExpiresAt: s.Expiration, RenewAt: time.Now().Add(time.Hour), ClientState: fmt.Sprintf("renew-%06d", i), Status: db.SubActive})
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
			ids[i] = s.ID
		}(i)
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	// All come due at once; the calsync process's renewal timer takes them.
	since := e.emu.LastRequestSeq()
	if _, err := e.store.DB().NewUpdate().Table("graph_subscriptions").Set("renew_at = now()").Where("client_state LIKE 'renew-%'").Exec(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		n, _ := e.store.DB().NewSelect().Table("graph_subscriptions").Where("client_state LIKE 'renew-%' AND expires_at > now() + interval '6 days'").Count(ctx)
		if int(n) == o.Renewals {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var first, last time.Time
	patches, calls := 0, 0
	for _, rq := range e.emu.Requests(since) {
		calls++
		if rq.Method == "PATCH" && strings.HasPrefix(rq.Path, "/v1.0/subscriptions/") {
			patches++
			if first.IsZero() {
				first = rq.At
			}
			last = rq.At
		}
	}
	rate := float64(patches) / max(last.Sub(first).Seconds(), 0.001)
	r.add("3. Renewal", fmt.Sprintf("%d subscriptions due at once: renewals/s; Graph requests", o.Renewals),
		fmt.Sprintf("%.0f/s; %d PATCH of %d requests", rate, patches, calls), "", "", "each renewed once", yes(patches == o.Renewals))
	maxWindow, lapses := simulateWeek(10000)
	r.add("3. Renewal", "week simulation (10,000 subscriptions of one tenant, real RenewAt policy): most renewals in any 20 s window; lapses",
		fmt.Sprintf("%d; %d", maxWindow, lapses), "", "", "≤ 500; 0", yes(maxWindow <= 500 && lapses == 0))
	return nil
}

// simulateWeek replays the renewal policy over a week of virtual time.
func simulateWeek(n int) (maxWindow, lapses int) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	end := t0.Add(7 * 24 * time.Hour)
	type sub struct{ exp, renew time.Time }
	subs := make([]sub, n)
	for i := range subs {
		exp := t0.Add(subscriptions.Lifetime)
		subs[i] = sub{exp, subscriptions.RenewAt(exp)}
	}
	var writes []time.Time
	for {
		moved := false
		for i := range subs {
			s := &subs[i]
			if s.renew.Before(end) {
				if !s.renew.Before(s.exp) {
					lapses++
				}
				writes = append(writes, s.renew)
				s.exp = s.renew.Add(subscriptions.Lifetime)
				s.renew = subscriptions.RenewAt(s.exp)
				moved = true
			}
		}
		if !moved {
			break
		}
	}
	sortTimes(writes)
	j := 0
	for i := range writes {
		for writes[i].Sub(writes[j]) >= 20*time.Second {
			j++
		}
		maxWindow = max(maxWindow, i-j+1)
	}
	return maxWindow, lapses
}

func footprint(ctx context.Context, e *env, r *Report, idle float64) error {
	o := e.opts
	if _, err := e.store.DB().ExecContext(ctx, `INSERT INTO calendar_links (company_id, user_id, provider, calendar_id, status)
		SELECT ?, 'fp-' || g, 'OFFICE365_OUTLOOK', 'fp' || g || '@bench.example', 'ACTIVE' FROM generate_series(1, ?) g`, company, o.Links); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns []*websocket.Conn
	for i := 0; i < o.Sockets; i++ {
		c, err := subscribeWS(wctx, e, nil)
		if err != nil {
			return fmt.Errorf("websocket %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	// Page through the links as the host would.
	if _, err := e.gql(ctx, `{ userCalendarLinks(first: 200) { edges { node { userId status } } } }`, nil); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	loaded := rss(e.proc.Process.Pid)
	for _, c := range conns {
		c.CloseNow()
	}
	r.add("5. Footprint", "binary size", fmt.Sprintf("%.1f MiB", float64(e.binSize)/(1<<20)), "", "", "", "")
	r.add("5. Footprint", "start-up to /readyz (fresh database: migrations included)", ms(e.started), "", "", "< 1 s", yes(e.started < time.Second))
	r.add("5. Footprint", "RSS idle", fmt.Sprintf("%.1f MiB", idle), "", "", "", "")
	r.add("5. Footprint", fmt.Sprintf("RSS with %d links and %d websocket subscribers", o.Links+o.Users, o.Sockets), fmt.Sprintf("%.1f MiB", loaded), "", "", "< 150 MB (143 MiB)", yes(loaded < 143))
	return nil
}

// metricSumCount reads a histogram's _sum and _count from calsync's
// /metrics (zeros when it is not there yet); labels is the series' label
// set as /metrics writes it ({step="save"}), or "".
func (e *env) metricSumCount(ctx context.Context, name, labels string) (sum, count float64) {
	v := e.metricSumCounts(ctx, name)[labels]
	return v[0], v[1]
}

// metricSumCounts reads every series of a histogram from one scrape of
// calsync's /metrics: _sum and _count by label set ("" for none).
func (e *env) metricSumCounts(ctx context.Context, name string) map[string][2]float64 {
	out := map[string][2]float64{}
	lines := e.scrape(ctx)
	for i, suffix := range []string{"_sum", "_count"} {
		for labels, v := range seriesOf(lines, name+suffix) {
			sc := out[labels]
			sc[i] = v
			out[labels] = sc
		}
	}
	return out
}

// scrape returns the lines of calsync's /metrics (none when it cannot).
func (e *env) scrape(ctx context.Context) []string {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/metrics", nil)
	resp, err := e.client.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.Split(string(body), "\n")
}

// poolWaits says, per connection pool (go_sql_* by db_name), how many times
// and for how long calsync waited for a free connection between two scrapes.
func poolWaits(before, after []string) string {
	n0, n1 := seriesOf(before, "go_sql_wait_count_total"), seriesOf(after, "go_sql_wait_count_total")
	d0, d1 := seriesOf(before, "go_sql_wait_duration_seconds_total"), seriesOf(after, "go_sql_wait_duration_seconds_total")
	var out []string
	for _, pool := range slices.Sorted(maps.Keys(n1)) {
		out = append(out, fmt.Sprintf("%s %.0f (%.1f ms)", pool, n1[pool]-n0[pool], (d1[pool]-d0[pool])*1000))
	}
	if len(out) == 0 {
		return "not exported"
	}
	return strings.Join(out, ", ")
}

// seriesOf picks the values of metric name out of a scrape's lines, by label
// set.
func seriesOf(lines []string, name string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range lines {
		series, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if labels, ok := strings.CutPrefix(series, name); ok && (labels == "" || labels[0] == '{') {
			out[labels], _ = strconv.ParseFloat(value, 64)
		}
	}
	return out
}
