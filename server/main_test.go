package server

import (
	"fmt"
	"os"
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: GraphQL" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	code := m.Run()
	if reliability.Enabled() {
		if err := hostileRows.Write("../docs/RELIABILITY.md", "hostile-graphql", "Hostile input: GraphQL documents and transports",
			"From server/hostile_test.go: requests anyone who can reach `/graphql` can send, without a token, against the real handler and schema. Bounds are counts and bytes, never times; `make bench` adds the CPU and memory each costs a running calsync.",
			[4]string{"finding", "attack", "bound it must meet", "result"}); err != nil {
			fmt.Fprintln(os.Stderr, "writing RELIABILITY.md:", err)
		}
	}
	os.Exit(code)
}
