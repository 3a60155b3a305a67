package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/graph"
	"github.com/tehaishokunin/calsync/internal/attackdoc"
)

// These tests are the "hostile input" findings: each sends the attack and
// asserts the bound it must meet as a count (operations, bytes, entries),
// never as a time. docs/RELIABILITY.md's hostile-input section lists them.

type harness struct {
	url   string
	cache *queryCache
	logs  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// defaultLimits are config's defaults.
var defaultLimits = QueryLimits{Bytes: 16 << 10, Tokens: 4000, Fields: 1000, Depth: 12, Aliases: 20, Complexity: 10000}

func newHarness(t testing.TB, limits QueryLimits, introspection bool) *harness {
	t.Helper()
	return newHarnessWithCache(t, limits, introspection, 4<<20)
}

func newHarnessWithCache(t testing.TB, limits QueryLimits, introspection bool, cacheBytes int) *harness {
	t.Helper()
	v, err := auth.NewVerifier(context.Background(), auth.VerifierConfig{HS256Secret: []byte("server-test-secret-server-test-secret")})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{cache: newQueryCache(cacheBytes, 1000), logs: &lockedBuffer{}}
	srv := httptest.NewServer(New(Options{
		Logger:                slog.New(slog.NewTextHandler(h.logs, nil)),
		Schema:                graph.NewExecutableSchema(graph.Config{}),
		Verifier:              v,
		Ready:                 func(context.Context) error { return nil },
		MaxBodyBytes:          1 << 20,
		MaxAnonymousBodyBytes: 64 << 10,
		Registry:              prometheus.NewRegistry(),
		Introspection:         introspection,
		QueryLimits:           limits,
		docCache:              h.cache,
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/graphql"
	return h
}

type answer struct {
	status int
	raw    []byte
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

func (a answer) code() string {
	if len(a.Errors) == 0 {
		return ""
	}
	c, _ := a.Errors[0].Extensions["code"].(string)
	return c
}

func (a answer) limit() string {
	if len(a.Errors) == 0 {
		return ""
	}
	l, _ := a.Errors[0].Extensions["limit"].(string)
	return l
}

func decode(t testing.TB, resp *http.Response) answer {
	t.Helper()
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, raw: raw}
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer is not JSON (%d): %.200s", resp.StatusCode, raw)
	}
	return a
}

func (h *harness) post(t testing.TB, body any, header ...string) answer {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(http.MethodPost, h.url, r)
	req.Header.Set("Content-Type", "application/json")
	// A caller's token unless the test says otherwise: the document limits
	// hold for callers too; bodies without one have their own, smaller limit.
	req.Header.Set("Authorization", "Bearer "+serviceToken(t))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

func (h *harness) query(t testing.TB, q string, header ...string) answer {
	t.Helper()
	return h.post(t, map[string]any{"query": q}, header...)
}

func (h *harness) get(t testing.TB, params url.Values) answer {
	t.Helper()
	resp, err := http.Get(h.url + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

func TestHostileFragmentFanOut(t *testing.T) {
	t.Parallel()
	measured := hostileRows.Record(t, "1. fragment fan-out",
		"a ~1 KB query whose 24, 30 and 60 fragments each spread the next twice, by POST and as a GET URL",
		"QUERY_TOO_COMPLEX (fields) before validation; measured in ≤ 2 visits per fragment + 2 (memoised); nothing cached; 8 levels (767 fields) still pass")
	h := newHarness(t, defaultLimits, true)
	for _, levels := range []int{24, 30, 60} {
		q := attackdoc.FanOut(levels)
		// One visit per selection written: 2 per level, 2 more.
		doc, err := parser.ParseQuery(&ast.Source{Input: q})
		if err != nil {
			t.Fatal(err)
		}
		if _, visits := measureDocument(doc, 0); visits > 2*levels+2 {
			t.Errorf("%d levels: %d visits measuring, want ≤ %d (memoised)", levels, visits, 2*levels+2)
		}
		if levels == 60 {
			_, visits := measureDocument(doc, 0)
			*measured = fmt.Sprintf("60 levels, 2^60 fields expanded: %d visits", visits)
		}
		// Refused on its expanded size, before validation; POST and GET.
		for name, a := range map[string]answer{"POST": h.query(t, q), "GET": h.get(t, url.Values{"query": {q}})} {
			if a.code() != "QUERY_TOO_COMPLEX" || a.limit() != "fields" {
				t.Errorf("%s %d levels: want QUERY_TOO_COMPLEX (fields), got %d %.300s", name, levels, a.status, a.raw)
			}
		}
	}
	if n, _ := h.cache.stats(); n != 0 {
		t.Errorf("refused documents were cached: %d entries", n)
	}
	// Eight levels pass (256 fields in the operation, 767 with each
	// fragment walked on its own as validation does): the limit is on
	// size, not on fragments.
	if a := h.query(t, attackdoc.FanOut(8)); len(a.Errors) != 0 {
		t.Errorf("767 expanded fields refused: %.300s", a.raw)
	}
}

// TestCostWalkerPricesEachFragmentOnce checks the post-validation cost walk
// on a validated fan-out document: the visits stay linear in the document
// however large its expansion.
func TestCostWalkerPricesEachFragmentOnce(t *testing.T) {
	t.Parallel()
	measured := hostileRows.Record(t, "1. cost of a fan-out document", "the post-validation cost walk over a 40-level fan-out document",
		"priced exactly (2^40) in ≤ 2 visits per fragment + 2")
	es := graph.NewExecutableSchema(graph.Config{})
	const levels = 40
	vdoc := mustParse(t, attackdoc.FanOut(levels))
	if errs := validator.Validate(es.Schema(), vdoc); len(errs) != 0 {
		t.Fatal(errs)
	}
	c := newCostWalker(es, nil, 0)
	cost := c.set(context.Background(), vdoc.Operations[0].SelectionSet)
	if cost != 1<<levels {
		t.Errorf("cost %d, want 2^%d", cost, levels)
	}
	if c.visits > 2*levels+2 {
		t.Errorf("%d visits pricing, want ≤ %d", c.visits, 2*levels+2)
	}
	*measured = fmt.Sprintf("%d visits", c.visits)
}

func mustParse(t testing.TB, q string) *ast.QueryDocument {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: q})
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestHostileDocumentSize(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "2. documents whose validation grows faster than their size",
		"20,000 × `__typename` (220 KB); a chain of 6,000 fragments; 1,001 fields; each with the byte limit on and off",
		"QUERY_TOO_COMPLEX naming the first limit passed (bytes 16 KiB, tokens 4,000, expanded fields 1,000) before validation, in an answer < 2 KiB; 1,000 fields pass")
	wide := "{ " + strings.Repeat("__typename ", 20000) + "}" // 220 KB
	long := attackdoc.Chain(6000)
	cases := []struct {
		name   string
		limits QueryLimits
		query  string
		limit  string
	}{
		{"20,000 fields, default limits", defaultLimits, wide, "bytes"},
		{"20,000 fields, no byte limit", QueryLimits{Tokens: 4000, Fields: 1000}, wide, "tokens"},
		{"6,000 chained fragments, default limits", defaultLimits, long, "bytes"},
		{"6,000 chained fragments, no byte limit", QueryLimits{Tokens: 4000, Fields: 1000}, long, "tokens"},
		{"6,000 chained fragments, only a field limit", QueryLimits{Fields: 1000}, long, "fields"},
		{"1,001 fields", QueryLimits{Fields: 1000}, "{ " + strings.Repeat("__typename ", 1001) + "}", "fields"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, c.limits, true)
			a := h.query(t, c.query)
			if a.code() != "QUERY_TOO_COMPLEX" || a.limit() != c.limit {
				t.Fatalf("want QUERY_TOO_COMPLEX (%s), got %d %.300s", c.limit, a.status, a.raw)
			}
			if len(a.raw) > 2048 {
				t.Errorf("answer is %d bytes", len(a.raw))
			}
		})
	}
	// The fragment chain is measured in one visit per selection.
	if _, visits := measureDocument(mustParse(t, long), 0); visits > 2*6000+2 {
		t.Errorf("chain: %d visits", visits)
	}
	// A thousand fields pass.
	h := newHarness(t, defaultLimits, true)
	if a := h.query(t, "{ "+strings.Repeat("__typename ", 1000)+"}"); len(a.Errors) != 0 {
		t.Errorf("1,000 fields refused: %.300s", a.raw)
	}
}

func TestHostileQueryCacheBoundedByBytes(t *testing.T) {
	t.Parallel()
	measured := hostileRows.Record(t, "3. parsed-document cache", "40 distinct 16 KB documents of tiny operations, into a 1 MiB cache; a document the complexity limit refuses",
		"the cache's estimated heap stays within its byte budget; the refused document is not cached, an accepted one is")
	h := newHarnessWithCache(t, QueryLimits{Fields: 1000}, true, 1<<20)
	// 40 distinct documents of many tiny operations, each ~16 KB: without
	// a byte bound all 40 stay cached.
	for i := 0; i < 40; i++ {
		q := attackdoc.TinyOps(i, 16_000)
		a := h.post(t, map[string]any{"query": q, "operationName": fmt.Sprintf("q%d_0", i)})
		if len(a.Errors) != 0 {
			t.Fatalf("document %d: %.300s", i, a.raw)
		}
	}
	entries, bytes := h.cache.stats()
	*measured = fmt.Sprintf("%d entries, %d estimated bytes", entries, bytes)
	if bytes > 1<<20 {
		t.Errorf("cache holds %d estimated bytes, budget %d", bytes, 1<<20)
	}
	if entries >= 40 || entries == 0 {
		t.Errorf("cache holds %d entries", entries)
	}
	// What the complexity limit refuses is not kept.
	c := newHarness(t, QueryLimits{Complexity: 1}, true)
	if a := c.query(t, "{ __typename a: __typename }"); a.code() != "QUERY_TOO_COMPLEX" || a.limit() != "complexity" {
		t.Fatalf("complexity: %.300s", a.raw)
	}
	if _, ok := c.cache.Get(context.Background(), "{ __typename a: __typename }"); ok {
		t.Error("a document the complexity limit refused is cached")
	}
	if a := c.query(t, "{ __typename }"); len(a.Errors) != 0 {
		t.Fatalf("%.300s", a.raw)
	}
	if _, ok := c.cache.Get(context.Background(), "{ __typename }"); !ok {
		t.Error("an accepted document is not cached")
	}
}

func TestHostileManyErrors(t *testing.T) {
	t.Parallel()
	measured := hostileRows.Record(t, "9. many errors", "1,500 unknown directives; a 100,000-byte operationName",
		"at most 20 errors and one saying how many were left out, answer < 16 KiB; the name not echoed whole (< 4 KiB)")
	h := newHarness(t, defaultLimits, true)
	q := "{ __typename " + strings.Repeat("@x ", 1500) + "}"
	a := h.query(t, q)
	if a.code() == "" || len(a.Errors) > maxErrors+1 {
		t.Fatalf("%d errors (want ≤ %d): %.300s", len(a.Errors), maxErrors+1, a.raw)
	}
	if last := a.Errors[len(a.Errors)-1]; last.Extensions["omitted"] == nil {
		t.Errorf("no count of the errors left out: %+v", last)
	}
	if len(a.raw) > 16<<10 {
		t.Errorf("answer is %d bytes for a %d-byte document", len(a.raw), len(q))
	}
	*measured = fmt.Sprintf("%d errors, %d bytes", len(a.Errors), len(a.raw))
	// A long operation name is not echoed whole.
	name := strings.Repeat("N", 100000)
	a = h.post(t, map[string]any{"query": "{ __typename }", "operationName": name})
	if a.code() == "" || len(a.raw) > 4096 {
		t.Errorf("unknown operation name: code %q, %d bytes", a.code(), len(a.raw))
	}
}

func TestHostileIntrospectionOff(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "10. introspection off", "`__schema` and a misspelled field with introspection off (production default)",
		"FORBIDDEN with a ja/en message, no ERROR log line; no \"Did you mean\" suggestion (which there is with introspection on)")
	off := newHarness(t, defaultLimits, false)
	a := off.query(t, "{ __schema { queryType { name } } }", "Accept-Language", "en")
	if a.code() != "FORBIDDEN" || !strings.Contains(a.Errors[0].Message, "Introspection is turned off") {
		t.Errorf("introspection off: %.300s", a.raw)
	}
	if strings.Contains(off.logs.String(), "level=ERROR") {
		t.Errorf("a refused introspection logged an error: %s", off.logs.String())
	}
	a = off.query(t, "{ userCalendarLin(userId: \"u\") { userId } }")
	if a.code() == "" || strings.Contains(string(a.raw), "Did you mean") {
		t.Errorf("suggestions with introspection off: %.300s", a.raw)
	}
	on := newHarness(t, defaultLimits, true)
	if a := on.query(t, "{ userCalendarLin(userId: \"u\") { userId } }"); !strings.Contains(string(a.raw), "Did you mean") {
		t.Errorf("no suggestion with introspection on: %.300s", a.raw)
	}
}

func TestHostileMultipartMap(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "8. multipart map paths", "an upload mapped to `variables.f.99999999`, `variables.f.-1`, through a null and to a missing variable",
		"422 INVALID_INPUT (field map); the request is answered, never crashed")
	h := newHarness(t, defaultLimits, true)
	for _, path := range []string{"variables.f.99999999", "variables.f.-1", "variables.f.0.x", "variables.g.h.i"} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("operations", `{"query":"{ __typename }","variables":{"f":[null]}}`)
		_ = mw.WriteField("map", `{"0":["`+path+`"]}`)
		fw, _ := mw.CreateFormFile("0", "authOfficeCalendar.json")
		_, _ = fw.Write([]byte("{}"))
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, h.url, &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v (the request crashed)", path, err)
		}
		a := decode(t, resp)
		if (a.status != 400 && a.status != 422) || a.code() != "INVALID_INPUT" {
			t.Errorf("%s: %d %.300s", path, a.status, a.raw)
		}
	}
}

func TestHostileTransportErrorsAreCodedAndDoNotEcho(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "13. transport errors", "a JSON body that does not decode (50 KB marker); GET with undecodable variables; a mutation by GET",
		"every error has extensions.code; no part of the body is echoed")
	h := newHarness(t, defaultLimits, true)
	marker := "ECHO-" + strings.Repeat("x", 50000)
	a := h.post(t, `{"query": "{ __typename }", "variables": `+marker)
	if a.code() != "INVALID_INPUT" || bytes.Contains(a.raw, []byte("ECHO-")) {
		t.Errorf("bad JSON: %d %.300s", a.status, a.raw)
	}
	for name, params := range map[string]url.Values{
		"variables": {"query": {"{ __typename }"}, "variables": {"ECHO-" + marker}},
		"mutation":  {"query": {"mutation { deleteCalendarAuth }"}},
	} {
		a := h.get(t, params)
		if a.status < 400 || a.code() == "" || bytes.Contains(a.raw, []byte("ECHO-")) {
			t.Errorf("GET %s: %d %.300s", name, a.status, a.raw)
		}
	}
}

// TestQueryCacheCostEstimate checks that the cache's estimate of a
// document's heap (astBytesPerQueryByte per byte of text) is not below what
// a parsed and validated document of many tiny operations really holds.
func TestQueryCacheCostEstimate(t *testing.T) {
	es := graph.NewExecutableSchema(graph.Config{})
	var docs []*ast.QueryDocument
	total := 0
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 20; i++ {
		for _, q := range []string{attackdoc.TinyOps(i, 16_000), "{ " + strings.Repeat("__typename ", 1000) + "}", attackdoc.FanOut(8)} {
			doc := mustParse(t, q)
			if errs := validator.Validate(es.Schema(), doc); len(errs) != 0 {
				t.Fatal(errs)
			}
			docs = append(docs, doc)
			total += len(q)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int(after.HeapAlloc) - int(before.HeapAlloc)
	runtime.KeepAlive(docs)
	perByte := float64(held) / float64(total)
	t.Logf("%d documents, %d bytes of text, %d bytes held: %.1f per byte", len(docs), total, held, perByte)
	if perByte > astBytesPerQueryByte {
		t.Errorf("documents hold %.1f heap bytes per byte of text; the cache assumes %d", perByte, astBytesPerQueryByte)
	}
}

// TestIntrospectionQueryFitsDefaults: the limits leave room for the
// Playground's full introspection query.
func TestIntrospectionQueryFitsDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultLimits, true)
	if a := h.query(t, introspection.Query); len(a.Errors) != 0 {
		t.Fatalf("%.300s", a.raw)
	}
	s, _ := measureDocument(mustParse(t, introspection.Query), 0)
	t.Logf("introspection query: %d bytes, %d expanded fields", len(introspection.Query), s.fields)
}

// TestHostileAnonymousBodies: without a valid token a body may be at most
// 64 KiB, refused before any JSON is decoded; a caller's may be 1 MiB.
func TestHostileAnonymousBodies(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "2. bodies without a token", "a 100 KB GraphQL POST with no token, with a forged token, and with a valid one",
		"413 REQUEST_TOO_LARGE for the first two before decoding (limit 64 KiB); the caller's passes the body limit (and meets the document limits)")
	h := newHarness(t, defaultLimits, true)
	body := map[string]any{"query": "{ __typename }", "variables": map[string]any{"pad": strings.Repeat("x", 100_000)}}
	tok := serviceToken(t)
	for name, header := range map[string][]string{"no token": {"Authorization", ""}, "forged token": {"Authorization", "Bearer x.y.z"}} {
		if a := h.post(t, body, header...); a.status != 413 || a.code() != "REQUEST_TOO_LARGE" {
			t.Errorf("%s: %d %.200s", name, a.status, a.raw)
		}
	}
	if a := h.post(t, body, "Authorization", "Bearer "+tok); a.status == 413 || len(a.Errors) != 0 {
		t.Errorf("a caller's 100 KB body: %d %.200s", a.status, a.raw)
	}
}

func serviceToken(t testing.TB) string {
	t.Helper()
	tok, err := auth.Sign([]byte("server-test-secret-server-test-secret"), auth.Caller{UserID: "u", CompanyID: "c", Roles: []auth.Role{auth.Service}}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
