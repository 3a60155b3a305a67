package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/db/dbtest"
)

// activeLink stores an active Outlook link of user in company acme.
func activeLink(t *testing.T, store *db.Store, user string) *db.CalendarLink {
	t.Helper()
	addr := user + "@example.co.jp"
	l := &db.CalendarLink{CompanyID: "acme", UserID: user, Provider: db.ProviderOutlook, CalendarID: &addr, Status: db.LinkActive}
	if err := store.SaveLink(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPushStateReadsWhatTheLastHolderCommitted: two replicas push the same
// entry. The second waits in Postgres for the first's lock; once it gets
// it, its read (same round trip as the lock) sees what the first committed
// while it waited, not the state from before it began waiting.
func TestPushStateReadsWhatTheLastHolderCommitted(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	a, b := db.NewStore(pool), db.NewStore(pool) // two replicas: no shared in-process lock
	ctx := context.Background()
	link := activeLink(t, a, "taro")
	ext, v1 := "job-1", "ck-1"
	el := &db.EventLink{CompanyID: "acme", UserID: "taro", LinkID: &link.ID, ExternalID: &ext, OutlookEventID: "AAMk1",
		WrittenChangeKey: &v1, KnownChangeKey: &v1, LastKnown: []byte(`{}`)}
	if err := a.SaveEventLink(ctx, el); err != nil {
		t.Fatal(err)
	}
	keys := []string{"entry\x00acme\x00" + ext}

	st, release, err := a.LockPushState(ctx, keys, "acme", "taro", ext)
	if err != nil {
		t.Fatal(err)
	}
	if st.Link == nil || st.Link.ID != link.ID || st.Event == nil || *st.Event.WrittenChangeKey != v1 || st.Credential != nil {
		t.Fatalf("first read: %+v", st)
	}

	type result struct {
		st  db.PushState
		err error
	}
	second := make(chan result, 1)
	go func() {
		st, release, err := b.LockPushState(ctx, keys, "acme", "taro", ext)
		if err == nil {
			release()
		}
		second <- result{st, err}
	}()
	// Wait until the second replica waits for the lock in Postgres.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := pool.NewRaw("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(ctx, &waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second push never waited for the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case r := <-second:
		t.Fatalf("the second push got the lock while the first held it: %+v", r)
	default:
	}
	v2 := "ck-2"
	st.Event.WrittenChangeKey, st.Event.KnownChangeKey = &v2, &v2
	if err := a.SaveEventLink(ctx, st.Event); err != nil {
		t.Fatal(err)
	}
	release()

	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.st.Event == nil || *r.st.Event.WrittenChangeKey != v2 {
		t.Fatalf("the second push read the entry as it was before it waited: %+v", r.st.Event)
	}

	// Nothing stored: every part is nil, and the lock is still taken and freed.
	st, release, err = b.LockPushState(ctx, []string{"entry\x00other\x00x"}, "other", "nobody", "x")
	if err != nil {
		t.Fatal(err)
	}
	release()
	if st.Link != nil || st.Credential != nil || st.Event != nil {
		t.Fatalf("read something for nothing: %+v", st)
	}
}

// TestVacuumMirrorAfterEnoughWrites: once enough mirror rows were written,
// VacuumMirror vacuums and analyzes the table (seen in pg_class: the table
// counts its rows; whether pages become all-visible depends on the other
// tests' open transactions); below the threshold — the minimum, or a tenth
// of the table — and again right after, it does nothing.
func TestVacuumMirrorAfterEnoughWrites(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	store := db.NewStore(pool)
	ctx := context.Background()
	link := activeLink(t, store, "taro")
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for i := 0; i < 30; i++ {
		s := start.Add(time.Duration(i) * time.Hour)
		el := &db.EventLink{CompanyID: "acme", UserID: "taro", LinkID: &link.ID, OutlookEventID: fmt.Sprintf("AAMk%d", i),
			LastKnown: []byte(`{"start":"` + s.Format(time.RFC3339) + `","end":"` + s.Add(30*time.Minute).Format(time.RFC3339) + `"}`)}
		if err := store.SaveEventLink(ctx, el); err != nil {
			t.Fatal(err)
		}
	}
	counted := func() (rows float64) {
		if err := pool.NewRaw("SELECT reltuples FROM pg_class WHERE oid = 'mirror_events'::regclass").Scan(ctx, &rows); err != nil {
			t.Fatal(err)
		}
		return rows
	}
	if done, err := store.VacuumMirror(ctx, 31); err != nil || done {
		t.Fatalf("vacuumed after 30 of 31 writes: %v %v", done, err)
	}
	if n := counted(); n >= 0 {
		t.Fatalf("the mirror counts %v rows before any vacuum or analyze: the check below proves nothing", n)
	}
	if done, err := store.VacuumMirror(ctx, 30); err != nil || !done {
		t.Fatalf("did not vacuum after 30 writes: %v %v", done, err)
	}
	if n := counted(); n != 30 {
		t.Fatalf("the mirror counts %v rows after the vacuum, want its 30", n)
	}
	if done, err := store.VacuumMirror(ctx, 1); err != nil || done {
		t.Fatalf("vacuumed again with nothing written since: %v %v", done, err)
	}
	// Two writes to a table of 30 rows are under a tenth of it: no vacuum,
	// whatever the minimum; the fourth write reaches it.
	var els []db.EventLink
	if err := pool.NewSelect().Model(&els).Limit(4).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range els[:2] {
		if err := store.SaveEventLink(ctx, &els[i]); err != nil {
			t.Fatal(err)
		}
	}
	if done, err := store.VacuumMirror(ctx, 1); err != nil || done {
		t.Fatalf("vacuumed a 30-row mirror after 2 writes: %v %v", done, err)
	}
	for i := range els[2:] {
		if err := store.SaveEventLink(ctx, &els[2+i]); err != nil {
			t.Fatal(err)
		}
	}
	if done, err := store.VacuumMirror(ctx, 1); err != nil || !done {
		t.Fatalf("did not vacuum a 30-row mirror after 4 writes: %v %v", done, err)
	}
}

// TestMirrorRowRewrittenOnlyWhenItChanges: saving an event link whose
// times and showAs stay (a subject edit) leaves its mirror row's version
// as it was; a new time rewrites it.
func TestMirrorRowRewrittenOnlyWhenItChanges(t *testing.T) {
	t.Parallel()
	pool := dbtest.New(t)
	store := db.NewStore(pool)
	ctx := context.Background()
	link := activeLink(t, store, "taro")
	view := func(subject, start string) []byte {
		return []byte(`{"subject":"` + subject + `","start":"` + start + `","end":"2026-12-07T18:00:00Z","showAs":"BUSY"}`)
	}
	el := &db.EventLink{CompanyID: "acme", UserID: "taro", LinkID: &link.ID, OutlookEventID: "AAMk1", LastKnown: view("作業", "2026-12-07T09:00:00Z")}
	if err := store.SaveEventLink(ctx, el); err != nil {
		t.Fatal(err)
	}
	row := func() (version string, start time.Time) {
		if err := pool.NewRaw("SELECT xmin::text, starts_at FROM mirror_events WHERE event_link_id = ?", el.ID).Scan(ctx, &version, &start); err != nil {
			t.Fatal(err)
		}
		return version, start
	}
	v1, _ := row()
	el.LastKnown = view("作業（変更）", "2026-12-07T09:00:00Z")
	if err := store.SaveEventLink(ctx, el); err != nil {
		t.Fatal(err)
	}
	if v2, _ := row(); v2 != v1 {
		t.Fatalf("a subject edit rewrote the mirror row (version %s → %s)", v1, v2)
	}
	el.LastKnown = view("作業（変更）", "2026-12-07T10:00:00Z")
	if err := store.SaveEventLink(ctx, el); err != nil {
		t.Fatal(err)
	}
	if v3, start := row(); v3 == v1 || !start.Equal(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("a new start left the mirror row as it was: version %s, start %v", v3, start)
	}
}

// TestKnownVersions: Known is true only when every (event, changeKey)
// names a live single event of that link at that version.
func TestKnownVersions(t *testing.T) {
	t.Parallel()
	store := db.NewStore(dbtest.New(t))
	ctx := context.Background()
	save := func(l *db.CalendarLink, id, ck, typ string, deleted bool) {
		el := &db.EventLink{CompanyID: "acme", UserID: l.UserID, LinkID: &l.ID, OutlookEventID: id, KnownChangeKey: &ck, Deleted: deleted,
			LastKnown: []byte(`{"type":"` + typ + `","start":"2026-12-07T09:00:00Z","end":"2026-12-07T10:00:00Z"}`)}
		if err := store.SaveEventLink(ctx, el); err != nil {
			t.Fatal(err)
		}
	}
	taro, hanako := activeLink(t, store, "taro"), activeLink(t, store, "hanako")
	save(taro, "single", "ck1", "SINGLE_INSTANCE", false)
	save(taro, "occurrence", "ck2", "OCCURRENCE", false)
	save(taro, "gone", "ck3", "SINGLE_INSTANCE", true)
	save(hanako, "hers", "ck4", "SINGLE_INSTANCE", false)
	for _, c := range []struct {
		name     string
		link     *db.CalendarLink
		ids, cks []string
		want     bool
	}{
		{"the version held", taro, []string{"single"}, []string{"ck1"}, true},
		{"the same notification twice", taro, []string{"single", "single"}, []string{"ck1", "ck1"}, true},
		{"another version", taro, []string{"single"}, []string{"ck9"}, false},
		{"one of two unknown", taro, []string{"single", "nope"}, []string{"ck1", "ck1"}, false},
		{"an instance of a series", taro, []string{"occurrence"}, []string{"ck2"}, false},
		{"a deleted event", taro, []string{"gone"}, []string{"ck3"}, false},
		{"another link's event", taro, []string{"hers"}, []string{"ck4"}, false},
		{"its own link", hanako, []string{"hers"}, []string{"ck4"}, true},
		{"nothing named", taro, nil, nil, false},
	} {
		if got, err := store.Known(ctx, c.link.ID, c.ids, c.cks); err != nil || got != c.want {
			t.Errorf("%s: Known = %v (%v), want %v", c.name, got, err, c.want)
		}
	}
}
