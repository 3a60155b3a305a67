package outlook_test

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: Graph's answers"
// section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	hostileRows.Main(m, "../docs/RELIABILITY.md", "hostile-outlook", "Hostile input: Graph's answers",
		"From outlook/outlook_test.go: answers calsync reads from Graph (here the emulator), through the real SDK.")
}
