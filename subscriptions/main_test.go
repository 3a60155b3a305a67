package subscriptions_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: lifecycle notifications" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	code := m.Run()
	if reliability.Enabled() {
		if err := hostileRows.Write("../docs/RELIABILITY.md", "hostile-subscriptions", "Hostile input: lifecycle notifications",
			"From subscriptions/lifecycle_test.go: lifecycle notifications delivered again and again, in parallel, as duplicated deliveries or a replay with a leaked clientState would; Graph is the emulator, through the real SDK.",
			[4]string{"finding", "attack", "bound it must meet", "result"}); err != nil {
			fmt.Fprintln(os.Stderr, "writing RELIABILITY.md:", err)
		}
	}
	os.Exit(code)
}
