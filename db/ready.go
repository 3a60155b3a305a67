package db

import (
	"context"
	"fmt"
)

// NotReadyError says why the database cannot serve. Reason is safe to show
// on /readyz; Err (driver text, maybe a host name) is for logs only.
type NotReadyError struct {
	Reason string
	Err    error
}

func (e *NotReadyError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap exposes the cause.
func (e *NotReadyError) Unwrap() error { return e.Err }

// PublicReason is the part of the error that may be shown.
func (e *NotReadyError) PublicReason() string { return e.Reason }

// Ready returns nil when Postgres answers and every migration is applied.
func (s *Store) Ready(ctx context.Context, m *Migrator) error {
	if err := s.Ping(ctx); err != nil {
		return &NotReadyError{Reason: "database unreachable", Err: err}
	}
	n, err := m.Pending(ctx)
	if err != nil {
		return &NotReadyError{Reason: "database unreachable", Err: err}
	}
	if n > 0 {
		return &NotReadyError{Reason: "migrations pending", Err: fmt.Errorf("%d migrations pending", n)}
	}
	return nil
}
