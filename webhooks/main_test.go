package webhooks_test

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: Graph's
// notification endpoints" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	hostileRows.Main(m, "../docs/RELIABILITY.md", "hostile-webhooks", "Hostile input: Graph's notification endpoints",
		"From webhooks/webhooks_test.go: notifications POSTed to the receiver, each checked before anything is stored.")
}
