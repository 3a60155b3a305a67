package db_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/db/dbtest"
)

func TestMigrationsUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	schema := dbtest.Schema(t)
	d := db.Open(dbtest.URL(), db.Options{SearchPath: schema})
	defer d.Close()
	m, err := db.NewMigrator(d)
	if err != nil {
		t.Fatal(err)
	}
	tables := func() int {
		var n int
		if err := d.NewRaw("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name NOT LIKE 'bun_%'", schema).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := m.Pending(ctx); err != nil || n == 0 {
		t.Fatalf("pending before up = %d, %v", n, err)
	}
	for round := 0; round < 2; round++ {
		applied, err := m.Up(ctx)
		if err != nil {
			t.Fatalf("round %d up: %v", round, err)
		}
		if len(applied) == 0 {
			t.Fatalf("round %d: nothing applied", round)
		}
		if n := tables(); n != 14 {
			t.Fatalf("round %d: %d tables after up, want 14", round, n)
		}
		if n, err := m.Pending(ctx); err != nil || n != 0 {
			t.Fatalf("pending after up = %d, %v", n, err)
		}
		again, err := m.Up(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second up applied %v, %v", again, err)
		}
		rolled, err := m.Down(ctx)
		if err != nil || len(rolled) != len(applied) {
			t.Fatalf("down rolled %v, %v", rolled, err)
		}
		if n := tables(); n != 0 {
			t.Fatalf("round %d: %d tables after down", round, n)
		}
	}
}

func TestCredentialRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := db.NewStore(dbtest.New(t))
	got, err := s.Credential(ctx, "acme")
	if err != nil || got != nil {
		t.Fatalf("empty store: %v %v", got, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := &db.Credential{CompanyID: "acme", TenantID: "t", ClientID: "c", SecretSealed: []byte{1, 2}, SecretKeyID: "k1",
		SecretHint: "abcd", Status: "VERIFIED", GrantedRoles: []string{"Calendars.ReadWrite"}, VerifiedAt: &now,
		RegisteredBy: "u1", RegisteredAt: now}
	if err := s.PutCredential(ctx, c, &db.AuditEntry{CompanyID: "acme", Actor: "u1", Action: "credentials.register", Detail: map[string]any{"tenant_id": "t"}}); err != nil {
		t.Fatal(err)
	}
	got, err = s.Credential(ctx, "acme")
	if err != nil || got == nil || got.TenantID != "t" || got.GrantedRoles[0] != "Calendars.ReadWrite" || !got.VerifiedAt.Equal(now) {
		t.Fatalf("read back %+v %v", got, err)
	}
	c.ClientID = "c2"
	if err := s.PutCredential(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Credential(ctx, "acme")
	if got.ClientID != "c2" {
		t.Fatalf("replace failed: %+v", got)
	}
	other, _ := s.Credential(ctx, "other")
	if other != nil {
		t.Fatal("another company sees acme's credentials")
	}
}

func TestClaimsFoldAcrossCallers(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	won := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := store.Claim(ctx, "k", time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d of 16 callers won one claim", won)
	}
	if err := store.Release(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if ok, err := store.Claim(ctx, "k", -time.Second); err != nil || !ok {
		t.Fatalf("claim after release: %v %v", ok, err)
	}
	// A lapsed claim is taken again, and pruned.
	if ok, err := store.Claim(ctx, "k", time.Minute); err != nil || !ok {
		t.Fatalf("claim after lapse: %v %v", ok, err)
	}
	if n, err := store.PruneClaims(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
}

// TestPollsSpreadAndClaimOnce: links without a next poll get one spread
// evenly over the interval (no bucket of a tenth of it holds more than
// twice its share), and two replicas claiming at once never take the same
// link.
func TestPollsSpreadAndClaimOnce(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	const n = 300
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("u%d@example.co.jp", i)
		if err := store.SaveLink(ctx, &db.CalendarLink{CompanyID: "acme", UserID: fmt.Sprint("u", i), Provider: db.ProviderOutlook,
			CalendarID: &addr, Status: db.LinkActive}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	interval := 30 * time.Minute
	if err := store.SpreadPolls(ctx, now, interval); err != nil {
		t.Fatal(err)
	}
	buckets := make([]int, 10)
	var all []db.CalendarLink
	for i := 0; i < n; i++ {
		l, err := store.Link(ctx, "acme", fmt.Sprint("u", i))
		if err != nil || l.NextPollAt == nil {
			t.Fatalf("link %d: %+v %v", i, l, err)
		}
		off := l.NextPollAt.Sub(now)
		if off < 0 || off >= interval {
			t.Fatalf("next poll %s outside the interval", off)
		}
		buckets[int(off/(interval/10))]++
		all = append(all, *l)
	}
	for i, b := range buckets {
		if b < n/10/2 || b > n/10*2 {
			t.Errorf("bucket %d holds %d of %d links: %v", i, b, n, buckets)
		}
	}
	// Half the interval later about half are due; two claimers split them.
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := store.ClaimDuePolls(ctx, now.Add(interval/2), time.Minute, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(due) == 0 {
					return
				}
				mu.Lock()
				for _, l := range due {
					seen[l.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for id, c := range seen {
		if c != 1 {
			t.Errorf("link %d claimed %d times", id, c)
		}
	}
	if len(seen) < n*4/10 || len(seen) > n*6/10 {
		t.Errorf("%d of %d links due half an interval in", len(seen), n)
	}
}

// TestPooledConnectionClosedByPostgres: when Postgres ends a pooled
// connection (a restart, a failover, pg_terminate_backend), the next query
// takes a fresh connection instead of failing.
func TestPooledConnectionClosedByPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := db.Open(dbtest.URL(), db.Options{MaxOpenConns: 1})
	defer d.Close()
	var pid int
	if err := d.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	admin := db.Open(dbtest.URL(), db.Options{MaxOpenConns: 1})
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend(?)", pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		if err := admin.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = ?", pid).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backend did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var again int
	if err := d.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&again); err != nil {
		t.Fatalf("the first query after Postgres closed the pooled connection failed: %v", err)
	}
	if again == pid {
		t.Fatalf("still on the terminated backend %d", pid)
	}
}

// TestClaimLeavesSkippedLinks: the worker leaves the notifications of a
// link whose round is in flight or resting where they are — unclaimed,
// with no lease written — and a later claim without the skip takes them.
func TestClaimLeavesSkippedLinks(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	links := []int64{activeLink(t, store, "busy").ID, activeLink(t, store, "idle").ID}
	var items []db.InboxItem
	for i := 0; i < 6; i++ {
		link := links[i%2]
		items = append(items, db.InboxItem{Kind: "change", SubscriptionID: "s", LinkID: &link})
	}
	items = append(items, db.InboxItem{Kind: "lifecycle", SubscriptionID: "s"}) // no link: never skipped
	if err := store.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	got, _, err := store.ClaimInbox(ctx, now, time.Minute, 100, 100, []int64{links[0]})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("claimed %d rows, want the idle link's 3 and the lifecycle one", len(got))
	}
	for _, it := range got {
		if it.LinkID != nil && *it.LinkID == links[0] {
			t.Fatalf("claimed a row of the skipped link: %+v", it)
		}
	}
	var leased int
	if err := store.DB().NewRaw("SELECT count(*) FROM inbox WHERE link_id = ? AND attempts = 0 AND next_attempt_at <= now()", links[0]).Scan(ctx, &leased); err != nil {
		t.Fatal(err)
	}
	if leased != 3 {
		t.Fatalf("%d of the skipped link's 3 rows are untouched", leased)
	}
	rest, _, err := store.ClaimInbox(ctx, now, time.Minute, 100, 100, nil)
	if err != nil || len(rest) != 3 {
		t.Fatalf("the later claim took %d rows (%v), want the skipped link's 3", len(rest), err)
	}
}

// TestEnqueueStoresWhatItIsGiven: the hand-written INSERT keeps every value
// as given (quotes, backslashes, a '?' bun could take for a placeholder,
// non-ASCII), NULL for what is absent, and the database's clock when no
// due time is given.
func TestEnqueueStoresWhatItIsGiven(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	link := activeLink(t, store, "enqueue").ID
	hostile := `Users/o'brien\x/Events/?a=$1&b=?;--"予定"`
	ct, ev := "updated", "reauthorizationRequired"
	due := time.Date(2026, 12, 3, 1, 2, 3, 456789000, time.UTC)
	items := []db.InboxItem{
		{Kind: "change", SubscriptionID: "sub'1?", LinkID: &link, ChangeType: &ct, Resource: &hostile, NextAttemptAt: due,
			Traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", EventID: `AAMk'?\`, ChangeKey: "ck?"},
		{Kind: "lifecycle", SubscriptionID: "sub2", LifecycleEvent: &ev},
	}
	before := time.Now().Add(-time.Minute)
	if err := store.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	var got []db.InboxItem
	if err := store.DB().NewSelect().Model(&got).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d rows stored, want 2", len(got))
	}
	a, b := got[0], got[1]
	if a.Kind != "change" || a.SubscriptionID != "sub'1?" || a.LinkID == nil || *a.LinkID != link || a.ChangeType == nil || *a.ChangeType != ct ||
		a.Resource == nil || *a.Resource != hostile || !a.NextAttemptAt.Equal(due) || a.Traceparent != items[0].Traceparent ||
		a.EventID != `AAMk'?\` || a.ChangeKey != "ck?" || a.LifecycleEvent != nil || a.Attempts != 0 || a.ProcessedAt != nil {
		t.Fatalf("change row stored as %+v", a)
	}
	if b.Kind != "lifecycle" || b.LinkID != nil || b.ChangeType != nil || b.Resource != nil || b.LifecycleEvent == nil || *b.LifecycleEvent != ev ||
		b.Traceparent != "" || b.EventID != "" || b.ChangeKey != "" || b.NextAttemptAt.Before(before) || b.ReceivedAt.Before(before) {
		t.Fatalf("lifecycle row stored as %+v", b)
	}
}

// TestClaimLeasesAFewOfEachLink: the claim takes at most perLink change
// notifications of a link (and every lifecycle one), the oldest first;
// the rest of the link's stay untouched for FinishLinkInbox.
func TestClaimLeasesAFewOfEachLink(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	flood, quiet := activeLink(t, store, "flood").ID, activeLink(t, store, "quiet").ID
	ev := "missed"
	var items []db.InboxItem
	for i := 0; i < 40; i++ {
		items = append(items, db.InboxItem{Kind: "change", SubscriptionID: "s", LinkID: &flood})
	}
	items = append(items, db.InboxItem{Kind: "lifecycle", SubscriptionID: "s", LinkID: &flood, LifecycleEvent: &ev},
		db.InboxItem{Kind: "change", SubscriptionID: "s", LinkID: &quiet}, db.InboxItem{Kind: "change", SubscriptionID: "s", LinkID: &quiet})
	if err := store.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Second)
	got, _, err := store.ClaimInbox(ctx, now, time.Minute, 100, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	var lastID int64
	for _, it := range got {
		if it.ID <= lastID {
			t.Fatalf("claimed rows not in id order: %d after %d", it.ID, lastID)
		}
		lastID = it.ID
		switch {
		case it.Kind == "lifecycle":
			per["lifecycle"]++
		case *it.LinkID == flood:
			per["flood"]++
		default:
			per["quiet"]++
		}
		if it.Attempts != 1 || !it.NextAttemptAt.After(now) {
			t.Fatalf("claimed row not leased: %+v", it)
		}
	}
	if per["flood"] != 5 || per["quiet"] != 2 || per["lifecycle"] != 1 {
		t.Fatalf("claimed %v, want 5 of the flood, the quiet link's 2 and the lifecycle one", per)
	}
	var oldest int64
	if err := store.DB().NewRaw("SELECT min(id) FROM inbox WHERE link_id = ?", flood).Scan(ctx, &oldest); err != nil {
		t.Fatal(err)
	}
	if got[0].ID != oldest {
		t.Fatalf("the flood's first claimed row is %d, want the oldest %d", got[0].ID, oldest)
	}
	// The flood's other 35 are due and untouched; a claim in the same
	// moment takes the next 5.
	again, _, err := store.ClaimInbox(ctx, now, time.Minute, 100, 5, nil)
	if err != nil || len(again) != 5 {
		t.Fatalf("the next claim took %d rows (%v), want the flood's next 5", len(again), err)
	}
}

// TestWarmOpensIdleConnections: Warm leaves n connections open and idle in
// the pool, ready for the first requests.
func TestWarmOpensIdleConnections(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	if s := d.DB.Stats(); s.OpenConnections > 1 {
		t.Fatalf("%d connections open before Warm", s.OpenConnections)
	}
	db.Warm(context.Background(), d, 5)
	if s := d.DB.Stats(); s.OpenConnections != 5 || s.Idle != 5 {
		t.Fatalf("after Warm(5): %d open, %d idle", s.OpenConnections, s.Idle)
	}
}

// TestClaimFinishesEchoes: a change notification naming the version its
// link already knows is finished by the claim itself (no lease, no job);
// one naming another version, a series, or a deletion is claimed.
func TestClaimFinishesEchoes(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	link := activeLink(t, store, "echo")
	ext, ck := "job-e", "ck-7"
	if err := store.SaveEventLink(ctx, &db.EventLink{CompanyID: "acme", UserID: "echo", LinkID: &link.ID, ExternalID: &ext, OutlookEventID: "AAMkE",
		WrittenChangeKey: &ck, KnownChangeKey: &ck, LastKnown: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	series := "job-s"
	if err := store.SaveEventLink(ctx, &db.EventLink{CompanyID: "acme", UserID: "echo", LinkID: &link.ID, ExternalID: &series, OutlookEventID: "AAMkS",
		WrittenChangeKey: &ck, KnownChangeKey: &ck, LastKnown: []byte(`{"type":"SERIES_MASTER"}`)}); err != nil {
		t.Fatal(err)
	}
	updated, deleted := "updated", "deleted"
	change := func(ct *string, event, key string) db.InboxItem {
		return db.InboxItem{Kind: "change", SubscriptionID: "s", LinkID: &link.ID, ChangeType: ct, EventID: event, ChangeKey: key}
	}
	if err := store.Enqueue(ctx, []db.InboxItem{
		change(&updated, "AAMkE", "ck-7"), // the echo
		change(&updated, "AAMkE", "ck-8"), // a newer version
		change(&updated, "AAMkS", "ck-7"), // a series: its instances need a round
		change(&deleted, "", ""),
	}); err != nil {
		t.Fatal(err)
	}
	got, echoes, err := store.ClaimInbox(ctx, time.Now().Add(time.Second), time.Minute, 100, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if echoes != 1 || len(got) != 3 {
		t.Fatalf("claimed %d and finished %d echoes, want 3 and 1", len(got), echoes)
	}
	for _, it := range got {
		if it.EventID == "AAMkE" && it.ChangeKey == "ck-7" {
			t.Fatalf("the echo was returned as work: %+v", it)
		}
	}
	var done int
	if err := store.DB().NewRaw("SELECT count(*) FROM inbox WHERE processed_at IS NOT NULL AND event_id = 'AAMkE' AND change_key = 'ck-7'").Scan(ctx, &done); err != nil || done != 1 {
		t.Fatalf("the echo is not marked processed (%d, %v)", done, err)
	}
	if n, _ := store.PendingInbox(ctx); n != 3 {
		t.Fatalf("%d pending, want the 3 claimed", n)
	}
}
