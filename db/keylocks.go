package db

import (
	"context"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// UseLockPool makes LockKeys hold its connections from p instead of the
// main pool, so pushes waiting on Graph with their locks held cannot take
// the connections the inbox and the workers need.
func (s *Store) UseLockPool(p *bun.DB) { s.locks = p }

// LockKeys serialises work on keys across every replica: it takes a
// Postgres advisory lock (session level) on each key, in one fixed order,
// on a connection it holds until the returned function is called. A
// replica that dies releases its locks with its connection. Any error
// while locking or unlocking discards the connection, so no lock can
// outlive its holder on a pooled connection.
func (s *Store) LockKeys(ctx context.Context, keys ...string) (func(), error) {
	pool := s.locks
	if pool == nil {
		pool = s.db
	}
	ids := make([]int64, 0, len(keys))
	for _, k := range keys {
		h := fnv.New64a()
		h.Write([]byte(k))
		ids = append(ids, int64(h.Sum64()))
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("taking a lock connection: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "SELECT calsync_lock_keys(?::bigint[])", pgdialect.Array(ids)); err != nil {
		discard(conn)
		return nil, fmt.Errorf("locking %d keys: %w", len(ids), err)
	}
	// The release runs in the background: the caller's answer does not
	// wait for it, and whoever waits for these keys waits in Postgres.
	return func() {
		go func() {
			// Not the caller's context: the locks must go even when it ended.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
				discard(conn)
				return
			}
			_ = conn.Close()
		}()
	}, nil
}

// discard closes a connection for good instead of returning it to the pool.
func discard(conn bun.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}
