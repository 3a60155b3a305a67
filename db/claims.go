package db

import (
	"context"
	"fmt"
	"time"
)

// Claim takes the lease on key for hold, unless another holder's lease is
// still running: true means this caller does the work. It holds across
// replicas (one row per key, decided by Postgres).
func (s *Store) Claim(ctx context.Context, key string, hold time.Duration) (bool, error) {
	var got []string
	err := s.db.NewRaw(`INSERT INTO claims (key, until) VALUES (?, now() + ?::interval)
		ON CONFLICT (key) DO UPDATE SET until = EXCLUDED.until WHERE claims.until < now()
		RETURNING key`, key, fmt.Sprintf("%d microseconds", hold.Microseconds())).Scan(ctx, &got)
	if err != nil {
		return false, fmt.Errorf("claiming %s: %w", key, err)
	}
	return len(got) == 1, nil
}

// Release ends a claim early (the work failed and may be tried again, or
// it is done and need not fold what follows).
func (s *Store) Release(ctx context.Context, key string) error {
	if _, err := s.db.NewRaw(`DELETE FROM claims WHERE key = ?`, key).Exec(ctx); err != nil {
		return fmt.Errorf("releasing %s: %w", key, err)
	}
	return nil
}

// PruneClaims deletes claims that ran out before cutoff.
func (s *Store) PruneClaims(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.db.NewRaw(`DELETE FROM claims WHERE until < ?`, cutoff).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("pruning claims: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
