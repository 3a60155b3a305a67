package changes_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: the change feed" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	code := m.Run()
	if reliability.Enabled() {
		if err := hostileRows.Write("../docs/RELIABILITY.md", "hostile-changes", "Hostile input: the change feed",
			"From changes/changes_test.go: many live subscriptions of one company and one change.",
			[4]string{"finding", "attack", "bound it must meet", "result"}); err != nil {
			fmt.Fprintln(os.Stderr, "writing RELIABILITY.md:", err)
		}
	}
	os.Exit(code)
}
