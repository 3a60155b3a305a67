package main

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: a running calsync"
// section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	hostileRows.Main(m, "../../docs/RELIABILITY.md", "hostile-service", "Hostile input: a running calsync",
		"From cmd/calsync/hostile_test.go and authz_test.go: a whole calsync started as `calsync serve` starts, attacked through its HTTP and websocket edges.")
}
