package server

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

func TestRawQueryFindsWhatEncodingJSONDecodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		body  string
		found bool
		query string
	}{
		{`{"query":"{ a }"}`, true, "{ a }"},
		{` { "operationName" : null , "query" : "{ b }" , "variables" : {"x":"}\"{","y":[1,{"z":"]"}]} } `, true, "{ b }"},
		{`{"QUERY":"{ c }"}`, true, "{ c }"},
		{`{"variables":{"query":"nested, not the query"},"query":"{ e }","extensions":{"query":["x"]}}`, true, "{ e }"},
		{`{"query":"first","Query":"last"}`, true, "last"},
		{`{"query":"a \"quoted\" \\ backslash"}`, true, `a "quoted" \ backslash`},
		{`{"extensions":{"persistedQuery":{"sha256Hash":"ab"}},"query":"x"} trailing`, true, "x"},
		// Not walked: gqlgen's decoder decides.
		{`{"\u0071uery":"{ d }"}`, false, ""},
		{`{"query":"big","\u0071uery":"small"}`, false, ""},
		{`{"query":null}`, false, ""},
		{`{"query":42}`, false, ""},
		{`{"variables":{}}`, false, ""},
		{`{}`, false, ""},
		{`[]`, false, ""},
		{``, false, ""},
		{`{"query":"unterminated`, false, ""},
		{`{"query":"x"`, false, ""},
		{`{"query" "x"}`, false, ""},
		{`{"variables":{"a":[1,2}`, false, ""},
	}
	for _, c := range cases {
		raw, found := rawQuery([]byte(c.body))
		if found != c.found {
			t.Errorf("%s: found %v", c.body, found)
			continue
		}
		if !found {
			continue
		}
		var got string
		if err := json.Unmarshal([]byte(`"`+string(raw)+`"`), &got); err != nil || got != c.query {
			t.Errorf("%s: raw %q decodes to %q (%v), want %q", c.body, raw, got, err, c.query)
		}
	}
}

// Random bodies of the shapes clients send, with every kind of escape in
// the query: wherever rawQuery finds a query, encoding/json finds the same
// one, and decodedLen is its exact length (or a lower bound, for invalid
// UTF-8), so sizedPOST refuses only what documentLimits would.
func TestRawQueryAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(1))
	pieces := []string{"a", " ", "{", "}", `"`, `\`, "\n", "\t", "é", "日本", "😀", "\x00", "\xff", "<&>", "\u2028", "\xed\xa0\x80"}
	randText := func() string {
		var b strings.Builder
		for range rng.Intn(30) {
			b.WriteString(pieces[rng.Intn(len(pieces))])
		}
		return b.String()
	}
	for i := range 5000 {
		q := randText()
		members := []string{}
		enc, _ := json.Marshal(q)
		switch rng.Intn(3) {
		case 1:
			// encoding/json escapes only some characters; also write \u escapes
			// for all of them, surrogate pairs included.
			var b strings.Builder
			b.WriteByte('"')
			for _, r := range q {
				if r >= 0x10000 {
					r1, r2 := utf16Pair(r)
					b.WriteString(`\u` + hex(r1) + `\u` + hex(r2))
				} else {
					b.WriteString(`\u` + hex(r))
				}
			}
			b.WriteByte('"')
			if utf8.ValidString(q) {
				enc = []byte(b.String())
			}
		case 2:
			// Only what JSON requires escaped; invalid UTF-8 stays raw, and
			// encoding/json turns each such byte into U+FFFD.
			b := []byte{'"'}
			for _, c := range []byte(q) {
				switch {
				case c == '"' || c == '\\':
					b = append(b, '\\', c)
				case c < 0x20:
					b = append(b, `\u00`+hex(rune(c))[2:]...)
				default:
					b = append(b, c)
				}
			}
			enc = append(b, '"')
		}
		members = append(members, `"query":`+string(enc))
		if rng.Intn(2) == 0 {
			v, _ := json.Marshal(map[string]any{"s": randText(), "n": []any{1, nil, true, map[string]any{"q": randText()}}})
			members = append(members, `"variables":`+string(v))
		}
		if rng.Intn(3) == 0 {
			members = append(members, `"operationName":null`)
		}
		rng.Shuffle(len(members), func(a, b int) { members[a], members[b] = members[b], members[a] })
		body := []byte("{" + strings.Join(members, ",") + "}")

		var want struct{ Query string }
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("%d: generated invalid JSON %s: %v", i, body, err)
		}
		raw, found := rawQuery(body)
		if !found {
			t.Fatalf("%d: no query in %s", i, body)
		}
		var got string
		if err := json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &got); err != nil || got != want.Query {
			t.Fatalf("%d: %s: raw %q, want %q", i, body, raw, want.Query)
		}
		n := decodedLen(raw)
		if utf8.ValidString(q) && n != len(want.Query) || n > len(want.Query) {
			t.Fatalf("%d: %s: decodedLen %d, decoded %d bytes", i, body, n, len(want.Query))
		}
	}
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}

func hex(r rune) string {
	s := strconv.FormatInt(int64(r), 16)
	return strings.Repeat("0", 4-len(s)) + s
}

// A caller's oversized document is refused before decoding (sizedPOST) with the answer
// documentLimits gives after it: same status, media type and error, under
// both media types. The escaped key makes the second body one rawQuery
// does not walk, so it takes gqlgen's decoder and documentLimits.
func TestHostileCallerMegabyteDocument(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "2. a caller's megabyte document",
		"a 1 MB query with a valid token (past the anonymous body limit), refused before and after decoding",
		"QUERY_TOO_COMPLEX (bytes, the document's size), byte for byte the answer given after decoding, under both media types")
	h := newHarness(t, defaultLimits, true)
	q := strings.Repeat("{ __typename }\n", 60_000)
	fast, _ := json.Marshal(map[string]any{"query": q, "variables": map[string]any{"a": "}"}})
	slow := bytes.Replace(fast, []byte(`"query"`), []byte(`"\u0071uery"`), 1)
	if _, found := rawQuery(slow); found {
		t.Fatal("the slow body must not be walked")
	}
	for _, accept := range []string{"application/json", "application/graphql-response+json"} {
		a, b := h.post(t, string(fast), "Accept", accept), h.post(t, string(slow), "Accept", accept)
		if a.code() != "QUERY_TOO_COMPLEX" || a.limit() != "bytes" || a.Errors[0].Extensions["actual"] != float64(len(q)) {
			t.Fatalf("%s: %d %.300s", accept, a.status, a.raw)
		}
		if a.status != b.status || !bytes.Equal(a.raw, b.raw) {
			t.Errorf("%s: refused before decoding %d %s, after %d %s", accept, a.status, a.raw, b.status, b.raw)
		}
	}
	// A body at the limit still runs.
	if a := h.query(t, "{ "+strings.Repeat("__typename ", 1000)+"}"); len(a.Errors) != 0 {
		t.Errorf("1,000 fields refused: %.300s", a.raw)
	}
}

// sizedPOST hands gqlgen's executor only what is within the limit: an
// oversized query never reaches it (nor the decoder), a small one does.
func TestSizedPOSTKeepsOversizedQueriesFromTheExecutor(t *testing.T) {
	t.Parallel()
	s := sizedPOST{Transport: transport.POST{}, limits: QueryLimits{Bytes: 100}}
	for _, c := range []struct {
		query   string
		reaches bool
	}{{strings.Repeat("x", 100), true}, {strings.Repeat("x", 101), false}, {strings.Repeat(`\`, 60), true}} {
		body, _ := json.Marshal(map[string]any{"query": c.query})
		r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		r.Header.Set("Content-Type", "application/json")
		r.Body = &bufferedBody{Reader: bytes.NewReader(body), b: body}
		exec := &recordingExec{}
		w := httptest.NewRecorder()
		s.Do(w, r, exec)
		if reached := exec.query != nil; reached != c.reaches || reached && *exec.query != c.query {
			t.Errorf("%d-byte query reached the executor: %v, want %v", len(c.query), reached, c.reaches)
		}
		if !c.reaches && !strings.Contains(w.Body.String(), `"limit":"bytes"`) {
			t.Errorf("%d-byte query: %s", len(c.query), w.Body)
		}
	}
}

type recordingExec struct{ query *string }

func (e *recordingExec) CreateOperationContext(_ context.Context, p *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	q := p.Query
	e.query = &q
	return &graphql.OperationContext{}, gqlerror.List{gqlerror.Errorf("recorded")}
}

func (e *recordingExec) DispatchOperation(context.Context, *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	panic("not reached")
}

func (e *recordingExec) DispatchError(ctx context.Context, list gqlerror.List) *graphql.Response {
	out := make(gqlerror.List, len(list))
	for i, err := range list {
		out[i] = presentError(ctx, err)
	}
	return &graphql.Response{Errors: out}
}
