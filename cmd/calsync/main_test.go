package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: a running calsync"
// section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	code := m.Run()
	if reliability.Enabled() {
		if err := hostileRows.Write("../../docs/RELIABILITY.md", "hostile-service", "Hostile input: a running calsync",
			"From cmd/calsync/hostile_test.go: a whole calsync started as `calsync serve` starts, attacked through its HTTP and websocket edges.",
			[4]string{"finding", "attack", "bound it must meet", "result"}); err != nil {
			fmt.Fprintln(os.Stderr, "writing RELIABILITY.md:", err)
		}
	}
	os.Exit(code)
}
