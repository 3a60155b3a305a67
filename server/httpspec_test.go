package server

import (
	"bytes"
	"testing"
)

// TestSpecStatusAndDataEntry pins what the GraphQL-over-HTTP audit (run in
// cmd/calsync) checks, without Node: a document that fails parsing,
// validation or variable coercion answers 200 under application/json and
// 4xx without a data entry under application/graphql-response+json, while a
// body that is not JSON stays 400 under both.
func TestSpecStatusAndDataEntry(t *testing.T) {
	t.Parallel()
	h := newHarness(t, defaultLimits, true)
	failures := map[string]any{
		"parse":      map[string]any{"query": "{"},
		"validation": map[string]any{"query": "{ noSuchField }"},
		"coercion":   map[string]any{"query": "query($id: ID!){ userCalendarLink(userId: $id) { userId } }", "variables": map[string]any{"id": map[string]any{"x": 1}}},
	}
	for name, body := range failures {
		a := h.post(t, body, "Accept", "application/json")
		if a.status != 200 || a.code() == "" {
			t.Errorf("%s, application/json: %d %.300s", name, a.status, a.raw)
		}
		a = h.post(t, body, "Accept", "application/graphql-response+json")
		if a.status < 400 || a.status > 499 || a.code() == "" || bytes.Contains(a.raw, []byte(`"data"`)) {
			t.Errorf("%s, application/graphql-response+json: %d %.300s", name, a.status, a.raw)
		}
	}
	for _, accept := range []string{"application/json", "application/graphql-response+json"} {
		if a := h.post(t, `{"query": `, "Accept", accept); a.status != 400 || a.code() != "INVALID_INPUT" {
			t.Errorf("malformed JSON, %s: %d %.300s", accept, a.status, a.raw)
		}
	}
}
