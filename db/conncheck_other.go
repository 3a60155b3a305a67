//go:build !unix

package db

import (
	"context"

	"github.com/uptrace/bun/driver/pgdriver"
)

// connAlive cannot peek at sockets here; a dead connection is found by the
// query that uses it.
func connAlive(context.Context, *pgdriver.Conn) error { return nil }
