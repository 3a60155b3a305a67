//go:build unix

package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"syscall"

	"github.com/uptrace/bun/driver/pgdriver"
)

// connAlive runs before a pooled connection is reused: it peeks at the
// socket without blocking. An idle connection has nothing to read; one
// Postgres closed (a restart, a failover, pg_terminate_backend) has its
// goodbye or EOF waiting. Such a connection is discarded (ErrBadConn), so
// database/sql takes another instead of failing the query — otherwise the
// first request after Postgres comes back answers INTERNAL.
func connAlive(_ context.Context, cn *pgdriver.Conn) error {
	sc, ok := cn.Conn().(syscall.Conn)
	if !ok {
		return nil // TLS: cannot peek under it; the query finds out
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	dead := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		dead = n > 0 || (n == 0 && e == nil) || (e != nil && !errors.Is(e, syscall.EAGAIN) && !errors.Is(e, syscall.EWOULDBLOCK))
		return true
	})
	if err != nil || dead {
		return driver.ErrBadConn
	}
	return nil
}
