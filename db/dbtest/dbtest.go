// Package dbtest gives each test its own freshly migrated schema in the real
// Postgres named by TEST_DATABASE_URL, so tests can run in parallel and never
// see each other's rows.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/tehaishokunin/calsync/db"
)

// DefaultURL is used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/calsync_test?sslmode=disable"

// URL returns the test database URL.
func URL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

var (
	ensureOnce sync.Once
	ensureErr  error
)

// Schema creates an empty schema for t and drops it when t ends. It returns
// the schema name.
func Schema(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	ensureOnce.Do(func() { ensureErr = db.EnsureDatabase(ctx, URL()) })
	if ensureErr != nil {
		t.Fatalf("test database unavailable (%s): %v", URL(), ensureErr)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin := db.Open(URL(), db.Options{MaxOpenConns: 1})
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
		}
		admin.Close()
	})
	return schema
}

// New returns a connection to a fresh, fully migrated schema.
func New(t testing.TB) *bun.DB {
	t.Helper()
	schema := Schema(t)
	d := db.Open(URL(), db.Options{SearchPath: schema, MaxOpenConns: 8})
	t.Cleanup(func() { d.Close() })
	m, err := db.NewMigrator(d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatalf("migrating test schema: %v", err)
	}
	return d
}
