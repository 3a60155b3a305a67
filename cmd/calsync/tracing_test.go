package main

import (
	"compress/gzip"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/tracing"
)

// span is one exported span as an OTLP receiver decodes it.
type span struct {
	trace, id, parent string
	name, scope       string
	kind              string
	service           string
	attrs             map[string]string
	// text is every string the span carries (name, attributes, events,
	// status), for the leak check.
	text []string
}

// otlpReceiver is an OTLP/HTTP trace endpoint: it decodes the protobuf
// export requests calsync sends, as a collector would.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
	bad   []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			r.fail(fmt.Sprintf("%s %s (%s)", req.Method, req.URL.Path, req.Header.Get("Content-Type")))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				r.fail(err.Error())
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, _ := io.ReadAll(body)
		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &msg); err != nil {
			r.fail("undecodable export: " + err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.add(&msg)
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) fail(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bad = append(r.bad, s)
}

func anyText(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.Values {
			parts = append(parts, anyText(e))
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v.GetValue())
	}
}

func (r *otlpReceiver) add(msg *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range msg.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = anyText(kv.Value)
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId),
					name: s.Name, scope: ss.GetScope().GetName(), kind: s.Kind.String(), service: service, attrs: map[string]string{},
					text: []string{s.Name, s.GetStatus().GetMessage()}}
				for _, kv := range s.Attributes {
					sp.attrs[kv.Key] = anyText(kv.Value)
					sp.text = append(sp.text, anyText(kv.Value))
				}
				for _, ev := range s.Events {
					sp.text = append(sp.text, ev.Name)
					for _, kv := range ev.Attributes {
						sp.text = append(sp.text, anyText(kv.Value))
					}
				}
				r.spans = append(r.spans, sp)
			}
		}
	}
}

func (r *otlpReceiver) all() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

// find returns the spans that match.
func (r *otlpReceiver) find(match func(span) bool) []span {
	var out []span
	for _, s := range r.all() {
		if match(s) {
			out = append(out, s)
		}
	}
	return out
}

// byID returns the span with that id.
func (r *otlpReceiver) byID(id string) (span, bool) {
	for _, s := range r.all() {
		if s.id == id {
			return s, true
		}
	}
	return span{}, false
}

// descends says whether s is a descendant of the span ancestor.
func (r *otlpReceiver) descends(s span, ancestor string) bool {
	for i := 0; i < 64 && s.parent != ""; i++ {
		if s.parent == ancestor {
			return true
		}
		p, ok := r.byID(s.parent)
		if !ok {
			return false
		}
		s = p
	}
	return false
}

// TestTracesFollowANotificationAndAPush exports calsync's spans over real
// OTLP/HTTP to an in-process receiver and checks the chains the issue
// names: notification POST → inbox row → delta round (with the Graph SDK's
// own spans under it) → feed append → websocket send and host webhook POST
// (which carries the traceparent); and a push mutation → the Graph calls
// it makes. No span may carry the mailbox address, the client secret, a
// clientState, a token or a delta link.
//
// Not parallel: the tracer provider is process-wide, so this test runs
// while no other app of the package does.
func TestTracesFollowANotificationAndAPush(t *testing.T) {
	recv := newOTLPReceiver(t)
	host := newHostHook(t)
	a, emu := startWithEmulator(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.srv.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "50",
		"OTEL_SERVICE_NAME":           "calsync-under-test",
		"CALSYNC_HOST_WEBHOOK_URL":    host.srv.URL,
		"CALSYNC_HOST_WEBHOOK_SECRET": "whsec_" + base64.StdEncoding.EncodeToString(host.secret),
	})
	if !tracing.Enabled() {
		t.Fatal("OTEL_EXPORTER_OTLP_ENDPOINT is set but tracing is off")
	}
	mailbox := demoUsers[0].Mail
	admin := token(t, "acme", "ua", "user_admin")
	svc := token(t, "acme", "host", "service")
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", mailbox); r.code() != "" {
		t.Fatal(r.Errors)
	}
	stream := subscribe(t, a, svc)

	// A push, under a trace the host started.
	const hostTrace, hostSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	push := a.gql(t, svc, `mutation($in: CalendarEventInput!) { upsertCalendarEvent(userId: "u-taro", input: $in) { outlookEventId } }`,
		map[string]any{"in": map[string]any{"externalId": "job-trace", "subject": "現場T", "start": "2026-12-05T09:00:00+09:00", "end": "2026-12-05T10:00:00+09:00"}},
		"traceparent", "00-"+hostTrace+"-"+hostSpan+"-01")
	if push.code() != "" {
		t.Fatalf("push: %+v", push.Errors)
	}

	// An edit in Outlook.
	id := ownerCreate(t, emu, mailbox, "Outlook で追加")
	select {
	case c := <-stream:
		if c["outlookEventId"] != id {
			t.Fatalf("websocket change %v", c)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the websocket subscriber saw no change")
	}
	waitFor(t, "the host webhook", 15*time.Second, func() bool { return host.count() >= 1 })
	host.mu.Lock()
	header := host.headers[0].Get("traceparent")
	host.mu.Unlock()
	parts := strings.Split(header, "-")
	if len(parts) != 4 {
		t.Fatalf("the host webhook POST carries traceparent %q", header)
	}
	trace, deliverID := parts[1], parts[2]

	// The notification's chain, read back from the host's header.
	var deliver span
	waitFor(t, "the exported spans", 15*time.Second, func() bool {
		var ok bool
		deliver, ok = recv.byID(deliverID)
		return ok && len(recv.find(func(s span) bool { return s.trace == trace && s.name == "websocket.send" })) > 0
	})
	if deliver.name != "host_webhook.deliver" || deliver.kind != "SPAN_KIND_CLIENT" || deliver.trace != trace || deliver.service != "calsync-under-test" {
		t.Fatalf("the traceparent the host got names %+v", deliver)
	}
	chain := []string{"host_webhook.deliver", "feed.append", "delta.round", "inbox.process", "POST /webhooks/graph/notifications"}
	s := deliver
	got := []string{s.name}
	for range chain[1:] {
		p, ok := recv.byID(s.parent)
		if !ok {
			t.Fatalf("chain %v: the parent of %s (%s) was not exported", got, s.name, s.parent)
		}
		if p.trace != trace {
			t.Fatalf("chain %v: %s is in another trace", got, p.name)
		}
		s = p
		got = append(got, s.name)
	}
	if strings.Join(got, " ← ") != strings.Join(chain, " ← ") {
		t.Fatalf("the notification's chain is %v, want %v", got, chain)
	}
	post := s
	if post.kind != "SPAN_KIND_SERVER" || post.attrs["http.response.status_code"] != "202" {
		t.Fatalf("the notification POST span: %+v", post)
	}
	if len(recv.find(func(x span) bool { return x.name == "inbox.store" && x.parent == post.id })) == 0 {
		t.Fatal("no inbox.store span under the notification POST")
	}
	appendSpan, _ := recv.byID(deliver.parent)
	round, _ := recv.byID(appendSpan.parent)
	if ws := recv.find(func(x span) bool { return x.name == "websocket.send" && x.parent == appendSpan.id }); len(ws) == 0 {
		t.Fatal("no websocket.send span under the feed append")
	}
	// The Graph SDK's own spans hang under the round (its delta GET).
	sdk := recv.find(func(x span) bool { return x.scope != tracing.Name && x.trace == trace && recv.descends(x, round.id) })
	if len(sdk) == 0 {
		t.Fatalf("no Graph SDK span under the delta round")
	}

	// The push: host's span ← POST /graphql ← graphql.mutation ← SDK spans.
	waitFor(t, "the push's spans", 15*time.Second, func() bool {
		return len(recv.find(func(x span) bool { return x.trace == hostTrace && x.name == "graphql.mutation" })) > 0
	})
	servers := recv.find(func(x span) bool { return x.trace == hostTrace && x.name == "POST /graphql" })
	if len(servers) != 1 || servers[0].parent != hostSpan || servers[0].kind != "SPAN_KIND_SERVER" {
		t.Fatalf("the push's server span: %+v", servers)
	}
	mut := recv.find(func(x span) bool { return x.trace == hostTrace && x.name == "graphql.mutation" })[0]
	if mut.parent != servers[0].id {
		t.Fatalf("graphql.mutation's parent is %s, want the server span %s", mut.parent, servers[0].id)
	}
	var pushCalls []string
	for _, x := range recv.find(func(x span) bool { return x.trace == hostTrace && x.scope != tracing.Name }) {
		if !recv.descends(x, mut.id) {
			t.Fatalf("SDK span %q is in the push's trace but not under the mutation", x.name)
		}
		pushCalls = append(pushCalls, x.name)
	}
	if len(pushCalls) == 0 {
		t.Fatal("no Graph SDK span under the push mutation")
	}

	// Nothing secret in any span, the SDK's included (the exporter's
	// filter itself is tested with hostile values in package otlp).
	secrets := []string{mailbox, strings.ToLower(mailbox), strings.ReplaceAll(mailbox, "@", "%40"), demoSecret, "eyJ", "deltatoken", "skiptoken", "Bearer "}
	secrets = append(secrets, clientStates(t, emu)...)
	for _, x := range recv.all() {
		for _, text := range x.text {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(strings.ToLower(text), strings.ToLower(sec)) {
					t.Errorf("span %q carries %q: %q", x.name, sec, text)
				}
			}
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.bad) > 0 {
		t.Fatalf("the receiver refused exports: %v", recv.bad)
	}
}

// clientStates are the clientState values of the emulator's subscriptions.
func clientStates(t *testing.T, emu *graphemu.Server) []string {
	t.Helper()
	resp, err := emu.Client().Get(emu.URL + "/_emulator/subscriptions")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Value []struct {
			ClientState string `json:"clientState"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range body.Value {
		out = append(out, v.ClientState)
	}
	if len(out) == 0 {
		t.Fatal("the emulator has no subscription")
	}
	return out
}
