package changes_test

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: the change feed" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	hostileRows.Main(m, "../docs/RELIABILITY.md", "hostile-changes", "Hostile input: the change feed",
		"From changes/changes_test.go: many live subscriptions of one company and one change.")
}
