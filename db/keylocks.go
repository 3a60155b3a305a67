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

// LockKeys serialises work on keys, in this process first and then across
// every replica. Waiters in this process wait on in-process locks (taken
// in key order), so they hold no connection; then it takes a Postgres
// advisory lock (session level) on each key, in hash order, on a
// connection it holds until the returned function is called. All
// in-process locks come before any Postgres one, so two callers never
// wait on each other in a cycle. A replica that dies releases its locks
// with its connection. Any error while locking or unlocking discards the
// connection, so no lock can outlive its holder on a pooled connection.
func (s *Store) LockKeys(ctx context.Context, keys ...string) (func(), error) {
	return s.lockKeys(ctx, keys, func(ctx context.Context, conn bun.Conn, ids []int64) error {
		if _, err := conn.ExecContext(ctx, "SELECT calsync_lock_keys(?::bigint[])", pgdialect.Array(ids)); err != nil {
			return fmt.Errorf("locking %d keys: %w", len(ids), err)
		}
		return nil
	})
}

// lockKeys is LockKeys with the statement that takes the Postgres locks
// given: lock runs on the held connection with the keys' lock ids, sorted
// (it may read as well, in the same round trip).
func (s *Store) lockKeys(ctx context.Context, keys []string, lock func(ctx context.Context, conn bun.Conn, ids []int64) error) (func(), error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	local := make([]func(), len(keys))
	for i, k := range keys {
		local[i] = s.local.Lock(k)
	}
	unlockLocal := func() {
		for i := len(local) - 1; i >= 0; i-- {
			local[i]()
		}
	}
	release, err := s.lockInPostgres(ctx, keys, lock)
	if err != nil {
		unlockLocal()
		return nil, err
	}
	return func() {
		release()
		unlockLocal()
	}, nil
}

// lockInPostgres takes the advisory locks of keys; see LockKeys.
func (s *Store) lockInPostgres(ctx context.Context, keys []string, lock func(ctx context.Context, conn bun.Conn, ids []int64) error) (func(), error) {
	pool := s.locks
	if pool == nil {
		pool = s.pool
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
	if err := lock(ctx, conn, ids); err != nil {
		// Some locks may be held: the connection goes with them.
		discard(conn)
		return nil, err
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
