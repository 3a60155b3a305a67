package subscriptions_test

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: lifecycle notifications" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	hostileRows.Main(m, "../docs/RELIABILITY.md", "hostile-subscriptions", "Hostile input: lifecycle notifications",
		"From subscriptions/lifecycle_test.go: lifecycle notifications delivered again and again, in parallel, as duplicated deliveries or a replay with a leaked clientState would; Graph is the emulator, through the real SDK.")
}
