package server

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// hostileRows are docs/RELIABILITY.md's "Hostile input: GraphQL" section.
var hostileRows reliability.Recorder

func TestMain(m *testing.M) {
	hostileRows.Main(m, "../docs/RELIABILITY.md", "hostile-graphql", "Hostile input: GraphQL documents and transports",
		"From server/hostile_test.go: requests anyone who can reach `/graphql` can send, without a token, against the real handler and schema. Bounds are counts and bytes, never times; `make bench` adds the CPU and memory each costs a running calsync.")
}
