package webhooks

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePayload: no body panics the parser, and what it accepts is
// bounded.
func FuzzParsePayload(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed/*.json")
	for _, p := range seeds {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ns, err := ParsePayload(body)
		if err != nil {
			return
		}
		if ns == nil || len(ns) > MaxNotifications {
			t.Fatalf("accepted %d notifications", len(ns))
		}
	})
}
