package graphnotify

import (
	"strings"
	"testing"
)

func TestParseBounds(t *testing.T) {
	for name, body := range map[string]string{
		"not UTF-8":      "{\"value\":[{\"resource\":\"\xff\"}]}",
		"no value":       `{"values":[]}`,
		"value null":     `{"value":null}`,
		"not an array":   `{"value":{}}`,
		"too many":       `{"value":[` + strings.Repeat(`{},`, MaxPerPost) + `{}]}`,
		"wrong type":     `{"value":[{"changeType":1}]}`,
		"truncated JSON": `{"value":[{"changeType":"updated"`,
	} {
		if ns, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted %d notifications", name, len(ns))
		}
	}
	ns, err := Parse([]byte(`{"value":[` + strings.Repeat(`{},`, MaxPerPost-1) + `{}]}`))
	if err != nil || len(ns) != MaxPerPost {
		t.Fatalf("%d notifications (%v), want the %d allowed", len(ns), err, MaxPerPost)
	}
}

// TestKeptValuesAreStorable: hostile values are cut, replaced or dropped,
// never kept as they came.
func TestKeptValuesAreStorable(t *testing.T) {
	n := Notification{ChangeType: "upd\x00ated", Resource: strings.Repeat("é", MaxResource) + "\x00", LifecycleEvent: strings.Repeat("m", MaxLifecycle+1)}
	ct, res := n.Change()
	if ct != "unknown" {
		t.Errorf("change type with NUL kept as %q", ct)
	}
	if len(res) > MaxResource || !strings.HasPrefix(res, "é") || strings.ContainsRune(res, 0) || strings.ContainsRune(res, '\uFFFD') {
		t.Errorf("resource kept as %d bytes %q…", len(res), res[:min(len(res), 8)])
	}
	if ev := n.Lifecycle(); ev != "unknown" {
		t.Errorf("a %d-byte lifecycle event kept", len(ev))
	}
	ok := Notification{ChangeType: "updated", Resource: "Users/u/Events/e", LifecycleEvent: "missed"}
	if ct, res := ok.Change(); ct != "updated" || res != "Users/u/Events/e" {
		t.Errorf("plain change kept as %q %q", ct, res)
	}
	if ev := ok.Lifecycle(); ev != "missed" {
		t.Errorf("plain lifecycle event kept as %q", ev)
	}
}

func TestVersion(t *testing.T) {
	for _, c := range []struct {
		id, etag, wantID, wantCK string
	}{
		{"AAMk=", `W/"DwAAABYA"`, "AAMk=", "DwAAABYA"},
		{"", `W/"DwAAABYA"`, "", ""},
		{"AAMk=", `"DwAAABYA"`, "", ""},                      // not a weak tag
		{"AAMk=", `W/""`, "", ""},                            // empty key
		{"AAMk=", `W/"`, "", ""},                             // one quote for both (found by FuzzParse)
		{"AAMk=", `W/"a"b"`, "", ""},                         // a quote inside
		{"AAMk=", `W/"a\b"`, "", ""},                         // a backslash inside
		{"AA\x00Mk", `W/"DwAAABYA"`, "", ""},                 // NUL in the id
		{strings.Repeat("A", MaxEventID+1), `W/"x"`, "", ""}, // id too long
		{"AAMk=", `W/"` + strings.Repeat("k", maxETag) + `"`, "", ""},
	} {
		n := Notification{}
		n.ResourceData.ID, n.ResourceData.ETag = c.id, c.etag
		if id, ck := n.Version(); id != c.wantID || ck != c.wantCK {
			t.Errorf("Version(%.20q, %.20q) = %q, %q; want %q, %q", c.id, c.etag, id, ck, c.wantID, c.wantCK)
		}
	}
}
