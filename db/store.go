package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/tehaishokunin/calsync/internal/keylock"
)

// Store is every query calsync runs, and the one way to run them: on the
// pool, or — the Store that InTx hands its function — inside one
// transaction. Every method works either way (a method that needs a
// transaction of its own takes a savepoint inside one), so code that reads
// and writes under a transaction calls the same methods as code that does
// not, and no bun type leaves this package.
type Store struct {
	// db runs the queries: pool, or the transaction of InTx.
	db   bun.IDB
	pool *bun.DB
	// locks holds the connections of LockKeys (nil: the pool).
	locks *bun.DB
	// local is LockKeys' in-process side.
	local *keylock.Map
	// mirrorWrites counts mirror rows written since VacuumMirror last ran.
	mirrorWrites *atomic.Int64
	inTx         bool
}

// NewStore wraps db.
func NewStore(db *bun.DB) *Store {
	return &Store{db: db, pool: db, local: new(keylock.Map), mirrorWrites: new(atomic.Int64)}
}

// DB exposes the pool for the composition root (closing, migrations) and
// for tests that look at rows directly.
func (s *Store) DB() *bun.DB { return s.pool }

// InTx runs fn in one transaction, committed when fn returns nil and
// rolled back otherwise; tx runs every Store method inside it. Inside a
// transaction already, fn runs in a savepoint of it.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx *Store) error) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, t bun.Tx) error {
		return fn(ctx, &Store{db: t, pool: s.pool, locks: s.locks, local: s.local, mirrorWrites: s.mirrorWrites, inTx: true})
	})
}

// Ping checks that Postgres answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging postgres: %w", err)
	}
	return nil
}

// Credential returns the company's credentials, or nil when none are stored.
func (s *Store) Credential(ctx context.Context, companyID string) (*Credential, error) {
	c := new(Credential)
	err := s.db.NewSelect().Model(c).Where("company_id = ?", companyID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading credentials of company %s: %w", companyID, err)
	}
	return c, nil
}

// PutCredential inserts or replaces the company's credentials and writes the
// audit entry in the same transaction.
func (s *Store) PutCredential(ctx context.Context, c *Credential, audit *AuditEntry) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewInsert().Model(c).
			On("CONFLICT (company_id) DO UPDATE").
			Set("tenant_id = EXCLUDED.tenant_id").
			Set("client_id = EXCLUDED.client_id").
			Set("secret_sealed = EXCLUDED.secret_sealed").
			Set("secret_key_id = EXCLUDED.secret_key_id").
			Set("secret_hint = EXCLUDED.secret_hint").
			Set("secret_expires_at = EXCLUDED.secret_expires_at").
			Set("status = EXCLUDED.status").
			Set("granted_roles = EXCLUDED.granted_roles").
			Set("last_error = EXCLUDED.last_error").
			Set("verified_at = EXCLUDED.verified_at").
			Set("checked_at = EXCLUDED.checked_at").
			Set("registered_by = EXCLUDED.registered_by").
			Set("registered_at = EXCLUDED.registered_at").
			Set("updated_at = now()").
			Returning("*").
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("storing credentials of company %s: %w", c.CompanyID, err)
		}
		if audit != nil {
			if _, err := tx.NewInsert().Model(audit).Exec(ctx); err != nil {
				return fmt.Errorf("writing audit entry: %w", err)
			}
		}
		return nil
	})
}

// pgArray adapts a string slice for a text[] column in raw SET clauses.
func pgArray(v []string) any {
	if v == nil {
		v = []string{}
	}
	return pgdialect.Array(v)
}
