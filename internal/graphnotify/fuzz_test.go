package graphnotify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse: no body panics the parser, what it accepts is bounded, and
// every value calsync keeps of an accepted notification can be stored
// (bounded, valid UTF-8, no NUL).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed/*.json")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ns, err := Parse(body)
		if err != nil {
			return
		}
		if ns == nil || len(ns) > MaxPerPost {
			t.Fatalf("accepted %d notifications", len(ns))
		}
		for _, n := range ns {
			ct, res := n.Change()
			id, ck := n.Version()
			for _, v := range []struct {
				name, value string
				max         int
			}{{"lifecycle event", n.Lifecycle(), MaxLifecycle}, {"change type", ct, MaxChangeType}, {"resource", res, MaxResource},
				{"event id", id, MaxEventID}, {"change key", ck, maxETag}} {
				if len(v.value) > v.max || !utf8.ValidString(v.value) || strings.ContainsRune(v.value, 0) {
					t.Fatalf("%s %q kept: over %d bytes, invalid UTF-8 or with NUL", v.name, v.value, v.max)
				}
			}
			if (id == "") != (ck == "") {
				t.Fatalf("version %q %q: one without the other", id, ck)
			}
		}
	})
}
