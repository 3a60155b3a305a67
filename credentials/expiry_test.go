package credentials_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// TestExpiryWarnedOncePerThreshold: a secret coming within 30, 14, 7 and 1
// days of its expiry is warned of once per threshold however many replicas
// ask at once and however often; thresholds passed together send only the
// nearest; a new secret starts over.
func TestExpiryWarnedOncePerThreshold(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	register := func(expires time.Time) {
		t.Helper()
		f := authfile.File{TenantID: testenv.TenantID, ClientID: testenv.ClientID, ClientSecret: testenv.Secret, SecretExpiresAt: &expires}
		if _, err := e.Creds.Register(ctx, testenv.Company, "admin", f); err != nil {
			t.Fatal(err)
		}
	}
	events := func() []map[string]any {
		t.Helper()
		evs, err := e.Store.HostEventsAfter(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []map[string]any
		for _, ev := range evs {
			var d map[string]any
			_ = json.Unmarshal(ev.Data, &d)
			if ev.Type != "credentials.expiring" || ev.CompanyID != testenv.Company {
				t.Fatalf("event %+v", ev)
			}
			out = append(out, d)
		}
		return out
	}
	// Eight replicas at once, twice.
	warnAll := func(at time.Time) int {
		t.Helper()
		var mu sync.Mutex
		var wg sync.WaitGroup
		total := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := e.Creds.WarnExpiring(ctx, at)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				total += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		return total
	}
	expires := now.Add(40 * 24 * time.Hour)
	register(expires)
	if n := warnAll(now); n != 0 {
		t.Fatalf("40 days ahead: %d warnings", n)
	}
	for _, step := range []struct {
		at        time.Time
		threshold float64
		daysLeft  float64
	}{
		{now.Add(15 * 24 * time.Hour), 30, 25},
		{now.Add(27 * 24 * time.Hour), 14, 13},
		{now.Add(39*24*time.Hour + 12*time.Hour), 1, 0}, // 7 passed unseen: only the nearest goes
	} {
		if n := warnAll(step.at) + warnAll(step.at); n != 1 {
			t.Fatalf("at %v: %d warnings, want 1", step.at, n)
		}
		evs := events()
		last := evs[len(evs)-1]
		if last["threshold"] != step.threshold || last["daysLeft"] != step.daysLeft || last["expiresAt"] != expires.Format(time.RFC3339) {
			t.Fatalf("at %v: %v", step.at, last)
		}
	}
	if n := warnAll(expires.Add(time.Hour)); n != 0 {
		t.Fatalf("after expiry: %d warnings", n)
	}
	if n := len(events()); n != 3 {
		t.Fatalf("%d events for one secret, want 3", n)
	}

	// A new secret, 5 days from expiry when registered: one 7-day warning.
	renewed := now.Add(45 * 24 * time.Hour)
	register(renewed)
	if n := warnAll(renewed.Add(-5 * 24 * time.Hour)); n != 1 {
		t.Fatalf("new secret: %d warnings", n)
	}
	if evs := events(); len(evs) != 4 || evs[3]["threshold"] != 7.0 {
		t.Fatalf("new secret's warning: %v", evs[len(evs)-1])
	}
	var rows int
	if err := e.Store.DB().NewRaw("SELECT count(*) FROM secret_expiry_warnings WHERE expires_at = ?", renewed).Scan(ctx, &rows); err != nil || rows != 3 {
		t.Fatalf("%d warnings recorded for the new secret (30, 14 and 7 passed), %v", rows, err)
	}
}
