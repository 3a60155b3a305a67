package changes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

const co = testenv.Company

func allChanges(t *testing.T, e *testenv.Env) []db.Change {
	t.Helper()
	cs, _, err := e.Store.Changes(context.Background(), co, 0, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// drain processes the inbox until the emulator has nothing left to deliver
// and the inbox is empty.
func drain(t *testing.T, e *testenv.Env) { t.Helper(); e.Drain(t) }

func ownerEdit(t *testing.T, e *testenv.Env, method, path string, body map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	e.Control(t, method, "/_emulator/users/"+e.Mailbox+"/events"+path, body, &out)
	return out
}

func newOutlookEvent(subject string) map[string]any {
	return map[string]any{"subject": subject, "start": map[string]any{"dateTime": "2026-12-03T10:00:00", "timeZone": "Tokyo Standard Time"},
		"end": map[string]any{"dateTime": "2026-12-03T11:00:00", "timeZone": "Tokyo Standard Time"}}
}

func TestOutlookEditsBecomeChanges(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	if n := len(allChanges(t, e)); n != 0 {
		t.Fatalf("%d changes before any edit", n)
	}

	// calsync's own write produces no change.
	p, err := e.Calendar.Upsert(ctx, co, "u1", calendar.Input{ExternalID: "job-1", Subject: "現場A", Start: "2026-12-01T09:00:00+09:00", End: "2026-12-01T12:00:00+09:00"})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("own upsert produced %d changes: %+v", len(cs), cs)
	}

	// The craftsman moves the job in Outlook: one UPDATED with the externalId.
	ownerEdit(t, e, "PATCH", "/"+p.Event.OutlookEventID, map[string]any{"start": map[string]any{"dateTime": "2026-12-01T13:00:00", "timeZone": "Tokyo Standard Time"},
		"end": map[string]any{"dateTime": "2026-12-01T16:00:00", "timeZone": "Tokyo Standard Time"}})
	// An event the user made: CREATED with no externalId.
	mine := ownerEdit(t, e, "POST", "", newOutlookEvent("歯医者"))
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 2 {
		t.Fatalf("%d changes, want 2: %+v", len(cs), cs)
	}
	byID := map[string]db.Change{}
	for _, c := range cs {
		byID[c.OutlookEventID] = c
	}
	up := byID[p.Event.OutlookEventID]
	if up.ChangeType != "UPDATED" || up.ExternalID == nil || *up.ExternalID != "job-1" || !slices.Contains(up.ChangedFields, "start") ||
		!slices.Contains(up.ChangedFields, "end") || slices.Contains(up.ChangedFields, "subject") || eventOf(t, up).Start != "2026-12-01T13:00:00+09:00" {
		t.Fatalf("update change %+v %s", up, up.Event)
	}
	cr := byID[mine["id"].(string)]
	if cr.ChangeType != "CREATED" || cr.ExternalID != nil || !strings.Contains(string(cr.Event), "歯医者") {
		t.Fatalf("created change %+v", cr)
	}

	// Deleting it in Outlook: one DELETED.
	e.Control(t, "DELETE", "/_emulator/users/"+e.Mailbox+"/events/"+mine["id"].(string), nil, nil)
	drain(t, e)
	cs = allChanges(t, e)
	if len(cs) != 3 || cs[2].ChangeType != "DELETED" || cs[2].OutlookEventID != mine["id"] {
		t.Fatalf("after delete: %+v", cs)
	}

	// The host overwrites the Outlook edit: its own write is no change.
	if _, err := e.Calendar.Upsert(ctx, co, "u1", calendar.Input{ExternalID: "job-1", Subject: "現場A", Start: "2026-12-01T13:00:00+09:00", End: "2026-12-01T17:00:00+09:00", Force: true}); err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	if n := len(allChanges(t, e)); n != 3 {
		t.Fatalf("own forced write produced a change: %d", n)
	}
}

func TestDuplicateDroppedAndReplayedNotifications(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	// Dropped: the notification of the first edit never arrives.
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropNotifications", Count: 1}); err != nil {
		t.Fatal(err)
	}
	a := ownerEdit(t, e, "POST", "", newOutlookEvent("A"))
	// Delayed and reordered: B's notification arrives after C's.
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "delayNotifications", MS: 300, Count: 1}); err != nil {
		t.Fatal(err)
	}
	ownerEdit(t, e, "POST", "", newOutlookEvent("B"))
	ownerEdit(t, e, "POST", "", newOutlookEvent("C"))
	drain(t, e)
	if n := len(allChanges(t, e)); n != 3 {
		t.Fatalf("%d changes after 3 creates (one notification dropped)", n)
	}
	// Duplicates: Graph redelivers a notification already processed.
	l, _ := e.Store.Link(context.Background(), co, "u1")
	subs, _ := e.Store.SubscriptionsOfLink(context.Background(), l.ID)
	dup := `{"value":[{"subscriptionId":"` + subs[0].ID + `","clientState":"` + subs[0].ClientState + `","changeType":"created","resource":"Users/x/Events/` + a["id"].(string) + `"}]}`
	for i := 0; i < 3; i++ {
		resp, err := http.Post(e.Hooks.URL+"/webhooks/graph/notifications", "application/json", strings.NewReader(dup))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("duplicate post: %v", err)
		}
		resp.Body.Close()
	}
	drain(t, e)
	if n := len(allChanges(t, e)); n != 3 {
		t.Fatalf("%d changes after duplicate notifications", n)
	}
	// Replays from Graph's delta produce nothing new.
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "replayDelta", Count: 1}); err != nil {
		t.Fatal(err)
	}
	ownerEdit(t, e, "PATCH", "/"+a["id"].(string), map[string]any{"subject": "A2"})
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 4 || cs[3].ChangeType != "UPDATED" {
		t.Fatalf("after replayed round: %+v", cs)
	}
}

// TestMissedRecoversDroppedEdits: when Graph cannot deliver change
// notifications it sends a "missed" lifecycle notification on its own
// (concepts/change-notifications-lifecycle-events.md); calsync's resync
// reports each dropped edit once, and a repeated "missed" adds nothing.
func TestMissedRecoversDroppedEdits(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	l := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropNotifications", Count: 5}); err != nil {
		t.Fatal(err)
	}
	ownerEdit(t, e, "POST", "", newOutlookEvent("lost 1"))
	ownerEdit(t, e, "POST", "", newOutlookEvent("lost 2"))
	drain(t, e)
	if n := len(allChanges(t, e)); n != 2 {
		t.Fatalf("Graph's own missed recovered %d of 2 edits", n)
	}
	subs, _ := e.Store.SubscriptionsOfLink(context.Background(), l.ID)
	e.Control(t, "POST", "/_emulator/subscriptions/"+subs[0].ID+"/lifecycle", map[string]any{"lifecycleEvent": "missed"}, nil)
	drain(t, e)
	if n := len(allChanges(t, e)); n != 2 {
		t.Fatalf("%d changes after another missed, want the same 2", n)
	}
}

// TestStaleDeltaTokenFullResync: in every form Graph documents for a
// token it cannot resume (concepts/delta-query-overview.md: 410 with a
// Location header; 40X syncStateNotFound / resyncRequired) and for a token
// it no longer knows at all, calsync starts a full round, reports what
// changed meanwhile once, and does not report an unchanged event again.
func TestStaleDeltaTokenFullResync(t *testing.T) {
	t.Parallel()
	for _, form := range []string{"", "gone", "syncStateNotFound", "resyncRequired", "unknown"} {
		t.Run("form="+form, func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t)
			e.Link(t, "u1", e.Mailbox)
			drain(t, e)
			ownerEdit(t, e, "POST", "", newOutlookEvent("残る予定"))
			gone := ownerEdit(t, e, "POST", "", newOutlookEvent("消える予定"))
			drain(t, e)
			if err := e.Emu.AddFault(graphemu.Fault{Kind: "staleDeltaTokens", Form: form}); err != nil {
				t.Fatal(err)
			}
			if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropNotifications", Count: 1}); err != nil {
				t.Fatal(err)
			}
			e.Control(t, "DELETE", "/_emulator/users/"+e.Mailbox+"/events/"+gone["id"].(string), nil, nil)
			ownerEdit(t, e, "POST", "", newOutlookEvent("新しい予定"))
			drain(t, e)
			cs := allChanges(t, e)
			types := []string{}
			for _, c := range cs {
				types = append(types, c.ChangeType+" "+eventOf(t, c).Subject)
			}
			slices.Sort(types)
			want := []string{"CREATED 新しい予定", "CREATED 残る予定", "CREATED 消える予定", "DELETED "}
			if !slices.Equal(types, want) {
				t.Fatalf("after a stale token (%q): %q", form, types)
			}
		})
	}
}

func TestForgedNotificationsDoNothing(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	l := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	subs, _ := e.Store.SubscriptionsOfLink(context.Background(), l.ID)
	since := e.Emu.LastRequestSeq()
	for _, body := range []string{
		`{"value":[{"subscriptionId":"` + subs[0].ID + `","clientState":"wrong","changeType":"updated","resource":"Users/x/Events/y"}]}`,
		`{"value":[{"subscriptionId":"00000000-0000-0000-0000-000000000000","clientState":"` + subs[0].ClientState + `","changeType":"updated"}]}`,
	} {
		resp, err := http.Post(e.Hooks.URL+"/webhooks/graph/notifications", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n, _ := e.Store.PendingInbox(context.Background()); n != 0 {
		t.Fatalf("%d forged notifications stored", n)
	}
	drain(t, e)
	if n := e.Requests(since, func(graphemu.RequestRecord) bool { return true }); n != 0 {
		t.Fatalf("forged notifications caused %d Graph calls", n)
	}
	if n := len(allChanges(t, e)); n != 0 {
		t.Fatalf("forged notifications caused %d changes", n)
	}
}

func eventOf(t *testing.T, c db.Change) calendar.Event {
	t.Helper()
	var ev calendar.Event
	if err := json.Unmarshal(c.Event, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestProcessedNotificationsArePruned(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	now := time.Now()
	old, recent := now.Add(-48*time.Hour), now.Add(-time.Hour)
	var items []db.InboxItem
	for i := 0; i < 7000; i++ { // more than one delete batch
		items = append(items, db.InboxItem{Kind: "change", SubscriptionID: "s", NextAttemptAt: now})
	}
	if err := e.Store.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	// 6,900 processed two days ago, 50 an hour ago, 50 still pending.
	for _, u := range []struct {
		at      time.Time
		from, n int
	}{{old, 0, 6900}, {recent, 6900, 50}} {
		if _, err := e.Store.DB().NewRaw("UPDATE inbox SET processed_at = ? WHERE id IN (SELECT id FROM inbox ORDER BY id OFFSET ? LIMIT ?)", u.at, u.from, u.n).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.Worker.Prune(ctx) // default retention: 24 h
	if err != nil || n != 6900 {
		t.Fatalf("pruned %d (%v), want 6900", n, err)
	}
	left, _ := e.Store.DB().NewSelect().Table("inbox").Count(ctx)
	pending, _ := e.Store.PendingInbox(ctx)
	if left != 100 || pending != 50 {
		t.Fatalf("%d rows left (%d pending), want 100 (50)", left, pending)
	}
	e.Worker.KeepProcessed(30 * time.Minute)
	if n, err := e.Worker.Prune(ctx); err != nil || n != 50 {
		t.Fatalf("pruned %d (%v) with 30 min retention, want 50", n, err)
	}
}

func TestWorkerVacuumsTheInboxAfterABurst(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	// A burst of 25,000 notifications for one link: one delta round
	// finishes them all, leaving 25,000 dead row versions.
	floodLink(t, e, 25_000)
	e.Worker.RunOnce(ctx)
	if n, _ := e.Store.PendingInbox(ctx); n != 0 {
		t.Fatalf("%d pending after one round", n)
	}
	if !inboxVacuumed(t, e) {
		t.Fatal("the inbox was not vacuumed after 25,000 notifications were processed")
	}
}

// TestClaimsGoOnWhileTheInboxIsVacuumed: the dispatcher vacuums beside
// its claims, not before the next. A VACUUM after a flood takes 100 ms or
// more, and every new notification of every mailbox waited for it.
func TestClaimsGoOnWhileTheInboxIsVacuumed(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	l := floodLink(t, e, 1)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	e.Worker.HoldVacuumForTest(func() {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	})
	e.Worker.VacuumDueForTest()
	if err := e.Worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			close(release)
			e.Worker.Stop()
		}
	}()
	e.Worker.Wake(l.ID)
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no vacuum began after the first claim")
	}
	// The vacuum is held. A new notification is processed all the same.
	since := e.Emu.LastRequestSeq()
	enqueueChanges(t, e, l, 1)
	e.Worker.Wake(l.ID)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, err := e.Store.PendingInbox(ctx); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a notification waited for the vacuum")
		}
	}
	if rounds := e.Requests(since, func(r graphemu.RequestRecord) bool { return strings.Contains(r.Path, "/delta") }); rounds == 0 {
		t.Fatal("the notification was finished without a delta round")
	}
	// Released, the vacuum runs.
	close(release)
	stopped = true
	defer e.Worker.Stop()
	for deadline := time.Now().Add(10 * time.Second); !inboxVacuumed(t, e); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the held vacuum never ran")
		}
	}
}

func TestStreamsCatchUpWithoutANotify(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := changes.NewFeed(e.Store, 200*time.Millisecond, cursor.NewCodec([]byte("k")), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := feed.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer feed.Stop()
	stream, err := feed.Stream(ctx, co, "")
	if err != nil {
		t.Fatal(err)
	}
	// LISTEN is up, and the stream has read twice since (the connect wakes
	// every stream once; two reads later that wake-up is spent): from here
	// only a poll can bring what follows.
	wait := func(what string, cond func() bool) {
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: LISTEN made %d times, %d reads", what, feed.Listens(), feed.Reads())
			}
		}
	}
	wait("LISTEN", func() bool { return feed.Listens() == 1 })
	since := feed.Reads()
	wait("two reads after LISTEN", func() bool { return feed.Reads() >= since+2 })
	reads := feed.Reads()
	// A change recorded without its NOTIFY (as if the LISTEN connection
	// was down): the feed's periodic re-check still delivers it.
	if _, err := e.Store.DB().NewInsert().Model(&db.Change{CompanyID: co, UserID: "u1", OutlookEventID: "AAMk-silent", ChangeType: "CREATED", ChangedFields: []string{}}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-stream:
		if c.OutlookEventID != "AAMk-silent" {
			t.Fatalf("got %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream never caught up without a NOTIFY")
	}
	if feed.Listens() != 1 || feed.Reads() <= reads {
		t.Fatalf("delivered by a reconnect (%d LISTENs), not by the poll", feed.Listens())
	}
}

// TestStreamsShareOneReadPerWakeUp: a company's 200 streams (for every
// user and for one) cost one feed read per wake-up, not one each.
func TestStreamsShareOneReadPerWakeUp(t *testing.T) {
	t.Parallel()
	hostileRows.Record(t, "4. one read per company per wake-up", "200 live streams of one company (half for one user), two changes, one wake-up",
		"every stream gets its changes (per-user streams only theirs); the feed is read from Postgres once")
	e := testenv.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	feed := changes.NewFeed(e.Store, time.Hour, cursor.NewCodec([]byte("k")), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var streams []<-chan changes.Change
	for i := 0; i < 200; i++ {
		user := ""
		if i%2 == 1 {
			user = "u1"
		}
		s, err := feed.Stream(ctx, co, user)
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, s)
	}
	for _, user := range []string{"u2", "u1"} {
		if _, err := e.Store.DB().NewInsert().Model(&db.Change{CompanyID: co, UserID: user, OutlookEventID: "AAMk-" + user, ChangeType: "CREATED", ChangedFields: []string{}}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := feed.Reads()
	feed.Publish(co) // no LISTEN running: Publish's NOTIFY reaches nobody, so wake directly too
	feed.WakeForTest(co)
	for i, s := range streams {
		want := []string{"AAMk-u2", "AAMk-u1"}
		if i%2 == 1 {
			want = want[1:]
		}
		for _, w := range want {
			select {
			case c := <-s:
				if c.OutlookEventID != w {
					t.Fatalf("stream %d got %s, want %s", i, c.OutlookEventID, w)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("stream %d never got %s", i, w)
			}
		}
	}
	if n := feed.Reads() - before; n != 1 {
		t.Errorf("200 streams read the feed %d times for one wake-up, want 1", n)
	}
	// Hostile user ids are refused before any read.
	if _, err := feed.Stream(ctx, co, "u\x00"); err == nil {
		t.Error("a NUL user id was accepted")
	}
}

func outlookEventAt(subject string, start time.Time) map[string]any {
	f := func(t time.Time) map[string]any {
		return map[string]any{"dateTime": t.UTC().Format("2006-01-02T15:04:05"), "timeZone": "UTC"}
	}
	return map[string]any{"subject": subject, "start": f(start), "end": f(start.Add(time.Hour))}
}

// TestMovesOutOfTheWindowAreNotDeletions: calendarView delta says @removed
// for an event moved outside the window (api-reference/v1.0/api/event-delta.md);
// calsync reports it as UPDATED with its new times, reports a real deletion
// as DELETED, and reports nothing for events that only aged out as the
// window slid forward.
func TestMovesOutOfTheWindowAreNotDeletions(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	link := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	now := time.Now().UTC().Truncate(time.Hour)
	moving := ownerEdit(t, e, "POST", "", outlookEventAt("移動する予定", now.Add(48*time.Hour)))
	aging := ownerEdit(t, e, "POST", "", outlookEventAt("過ぎていく予定", now.Add(5*24*time.Hour)))
	deleted := ownerEdit(t, e, "POST", "", outlookEventAt("消える予定", now.Add(60*24*time.Hour)))
	drain(t, e)
	if n := len(allChanges(t, e)); n != 3 {
		t.Fatalf("%d changes after three creates", n)
	}

	far := now.AddDate(2, 0, 0)
	ownerEdit(t, e, "PATCH", "/"+moving["id"].(string), map[string]any{"start": map[string]any{"dateTime": far.Format("2006-01-02T15:04:05"), "timeZone": "UTC"},
		"end": map[string]any{"dateTime": far.Add(time.Hour).Format("2006-01-02T15:04:05"), "timeZone": "UTC"}})
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 4 || cs[3].OutlookEventID != moving["id"] || cs[3].ChangeType != "UPDATED" || !slices.Contains(cs[3].ChangedFields, "start") {
		t.Fatalf("after moving out of the window: %+v", cs[len(cs)-1])
	}
	if got, _ := time.Parse(time.RFC3339, eventOf(t, cs[3]).Start); !got.Equal(far) {
		t.Errorf("moved event reported at %s, want %s", eventOf(t, cs[3]).Start, far)
	}

	// Deleted in Outlook while its notification is lost; then the window
	// slides 40 days: the event that aged out is not reported, the deleted
	// one is.
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropNotifications", Count: 10}); err != nil {
		t.Fatal(err)
	}
	e.Control(t, "DELETE", "/_emulator/users/"+e.Mailbox+"/events/"+deleted["id"].(string), nil, nil)
	e.Syncer.SetClockForTest(func() time.Time { return time.Now().Add(40 * 24 * time.Hour) })
	if _, err := e.Syncer.Sync(context.Background(), link.ID, false); err != nil {
		t.Fatal(err)
	}
	cs = allChanges(t, e)
	if len(cs) != 5 || cs[4].OutlookEventID != deleted["id"] || cs[4].ChangeType != "DELETED" {
		t.Fatalf("after the window slid: %+v", cs[4:])
	}
	for _, c := range cs {
		if c.OutlookEventID == aging["id"] && c.ChangeType != "CREATED" {
			t.Errorf("an event that aged out was reported: %+v", c)
		}
	}
}

// TestUnrulyDeliveryReportsTheSame: with notifications delivered by
// concurrent POSTs, out of order and some twice, every Outlook edit is
// still reported exactly once.
func TestUnrulyDeliveryReportsTheSame(t *testing.T) {
	t.Parallel()
	e := testenv.NewWith(t, graphemu.Options{Unruly: true})
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	var ids []string
	for i := 0; i < 10; i++ {
		ev := ownerEdit(t, e, "POST", "", newOutlookEvent(fmt.Sprintf("予定 %d", i)))
		ids = append(ids, ev["id"].(string))
	}
	drain(t, e)
	for _, id := range ids[:5] {
		ownerEdit(t, e, "PATCH", "/"+id, map[string]any{"subject": "変更 " + id[len(id)-6:]})
	}
	drain(t, e)
	for _, id := range ids[7:] {
		e.Control(t, "DELETE", "/_emulator/users/"+e.Mailbox+"/events/"+id, nil, nil)
	}
	drain(t, e)
	count := map[string]int{}
	for _, c := range allChanges(t, e) {
		count[c.ChangeType]++
	}
	if count["CREATED"] != 10 || count["UPDATED"] != 5 || count["DELETED"] != 3 || len(count) != 3 {
		t.Fatalf("reported %v, want 10 CREATED, 5 UPDATED, 3 DELETED", count)
	}
}

// TestReauthorizationOnGraphsOwnInitiative: Graph challenges a subscription
// on its own and holds its change notifications until the app reauthorizes
// or renews it (concepts/change-notifications-lifecycle-events.md); calsync
// renews, and the edit made meanwhile is reported once.
func TestReauthorizationOnGraphsOwnInitiative(t *testing.T) {
	t.Parallel()
	e := testenv.NewWith(t, graphemu.Options{Unruly: true, ReauthorizeAfter: 2 * time.Second})
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	time.Sleep(2100 * time.Millisecond)
	since := e.Emu.LastRequestSeq()
	ownerEdit(t, e, "POST", "", newOutlookEvent("待たされた予定"))
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 1 || cs[0].ChangeType != "CREATED" {
		t.Fatalf("after a reauthorization challenge: %+v", cs)
	}
	if n := e.Requests(since, func(r graphemu.RequestRecord) bool {
		return r.Method == "PATCH" && strings.HasPrefix(r.Path, "/v1.0/subscriptions/")
	}); n < 1 {
		t.Errorf("the subscription was not renewed (%d PATCHes)", n)
	}
}

// TestSubscriptionRemovedByGraphLosesNothing: Graph removes the
// subscription on its own (here: the app's Calendars permission was
// revoked; the access token calsync holds keeps its roles until it
// expires, as in Entra ID) and says so with subscriptionRemoved; calsync
// makes a new one and resyncs, and an edit made around it is reported
// once.
func TestSubscriptionRemovedByGraphLosesNothing(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	l := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	old, _ := e.Store.SubscriptionsOfLink(context.Background(), l.ID)
	e.Control(t, "PATCH", "/_emulator/tenants/"+testenv.TenantID+"/apps/"+testenv.ClientID, map[string]any{"roles": []string{"User.Read.All"}}, nil)
	ownerEdit(t, e, "POST", "", newOutlookEvent("取り消しの間の予定"))
	drain(t, e)
	subs, _ := e.Store.SubscriptionsOfLink(context.Background(), l.ID)
	if len(subs) != 1 || len(old) != 1 || subs[0].ID == old[0].ID {
		t.Fatalf("subscriptions before %v, after %v", old, subs)
	}
	ownerEdit(t, e, "POST", "", newOutlookEvent("再作成後の予定"))
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 2 || cs[0].ChangeType != "CREATED" || cs[1].ChangeType != "CREATED" {
		t.Fatalf("changes: %+v", cs)
	}
}

// TestEchoOfAPushNeedsNoRound: the notification for calsync's own write
// names (resourceData @odata.etag) the version calsync just recorded. The
// replica that made the write answers it without storing it
// (internal/echoes); another replica stores it, and its worker finishes it
// without a delta round. An Outlook edit right after names another version:
// it is stored and reported as before.
func TestEchoOfAPushNeedsNoRound(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	l := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	deltas := func(since int64) int {
		n := 0
		for _, r := range e.Emu.Requests(since) {
			if strings.Contains(r.Path, "/delta") {
				n++
			}
		}
		return n
	}
	// stored counts the link's inbox rows naming versions among cks.
	stored := func(cks ...string) int {
		var n int
		if err := e.Store.DB().NewRaw("SELECT count(*) FROM inbox WHERE link_id = ? AND change_key IN (?)", l.ID, bun.In(cks)).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	since := e.Emu.LastRequestSeq()
	p, err := e.Calendar.Upsert(ctx, co, "u1", calendar.Input{ExternalID: "job-echo", Subject: "現場E", Start: "2026-12-01T09:00:00+09:00", End: "2026-12-01T10:00:00+09:00"})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	p2, err := e.Calendar.Upsert(ctx, co, "u1", calendar.Input{ExternalID: "job-echo", Subject: "現場E（変更）", Start: "2026-12-01T09:00:00+09:00", End: "2026-12-01T10:00:00+09:00"})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, e) // every notification the emulator owes has been answered
	if n := deltas(since); n != 0 {
		t.Fatalf("the echoes of a create and an update cost %d delta requests", n)
	}
	if n := stored(p.Event.Version, p2.Event.Version); n != 0 {
		t.Fatalf("%d echoes of this replica's own writes were stored", n)
	}
	// A bulk push's echoes alike.
	many, err := e.Calendar.UpsertMany(ctx, co, "u1", []calendar.Input{
		{ExternalID: "job-echo-2", Subject: "現場F", Start: "2026-12-02T09:00:00+09:00", End: "2026-12-02T10:00:00+09:00"},
		{ExternalID: "job-echo", Subject: "現場E（再変更）", Start: "2026-12-01T09:00:00+09:00", End: "2026-12-01T10:00:00+09:00"}})
	if err != nil || many[0].Err != nil || many[1].Err != nil {
		t.Fatalf("bulk push: %v %+v", err, many)
	}
	drain(t, e)
	if n, d := stored(many[0].Pushed.Event.Version, many[1].Pushed.Event.Version), deltas(since); n != 0 || d != 0 {
		t.Fatalf("a bulk push's echoes: %d stored, %d delta requests", n, d)
	}
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("calsync's own writes came back as %+v", cs)
	}
	p2 = many[1].Pushed
	// Another replica did not make the write: it stores the echo (as
	// Enqueue here), and the claim finishes it without a round.
	var sub string
	if err := e.Store.DB().NewRaw("SELECT id FROM graph_subscriptions WHERE link_id = ?", l.ID).Scan(ctx, &sub); err != nil {
		t.Fatal(err)
	}
	ct, res := "updated", "Users/x/Events/"+p2.Event.OutlookEventID
	if err := e.Store.Enqueue(ctx, []db.InboxItem{{Kind: "change", SubscriptionID: sub, LinkID: &l.ID, ChangeType: &ct, Resource: &res,
		EventID: p2.Event.OutlookEventID, ChangeKey: p2.Event.Version, NextAttemptAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	if n := deltas(since); n != 0 || e.Worker.Skipped() != 1 {
		t.Fatalf("another replica's echo cost %d delta requests (%d notifications skipped, want 1)", n, e.Worker.Skipped())
	}
	// The user's edit right after is a version calsync does not know.
	edited := ownerEdit(t, e, "PATCH", "/"+p.Event.OutlookEventID, map[string]any{"subject": "鍵は管理室"})
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 1 || cs[0].ChangeType != "UPDATED" || deltas(since) == 0 {
		t.Fatalf("the Outlook edit after the echo: %+v (delta requests %d)", cs, deltas(since))
	}
	if ck, _ := edited["changeKey"].(string); ck == "" || stored(ck) == 0 {
		t.Fatalf("the Outlook edit's notification (changeKey %q) was not stored", ck)
	}
}

// floodLink links u1, drains, and stores n change notifications for it, as
// a burst on one mailbox does.
func floodLink(t *testing.T, e *testenv.Env, n int) *db.CalendarLink {
	t.Helper()
	l := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	enqueueChanges(t, e, l, n)
	return l
}

// enqueueChanges stores n change notifications for l, as the receiver
// does (of the env's first subscription).
func enqueueChanges(t *testing.T, e *testenv.Env, l *db.CalendarLink, n int) {
	t.Helper()
	ctx := context.Background()
	var sub string
	if err := e.Store.DB().NewRaw("SELECT id FROM graph_subscriptions LIMIT 1").Scan(ctx, &sub); err != nil {
		t.Fatal(err)
	}
	items := make([]db.InboxItem, n)
	for j := range items {
		ct, res := "updated", "Users/x/Events/y"
		items[j] = db.InboxItem{Kind: "change", SubscriptionID: sub, LinkID: &l.ID, ChangeType: &ct, Resource: &res, NextAttemptAt: time.Now()}
	}
	if err := e.Store.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
}

// inboxVacuumed says whether the inbox was ever vacuumed by hand (not by
// autovacuum).
func inboxVacuumed(t *testing.T, e *testenv.Env) bool {
	t.Helper()
	var vacuumed *time.Time
	if err := e.Store.DB().NewRaw("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'inbox' AND schemaname = current_schema()").Scan(context.Background(), &vacuumed); err != nil {
		t.Fatal(err)
	}
	return vacuumed != nil
}

// inboxAttempts counts the link's rows by attempts.
func inboxAttempts(t *testing.T, e *testenv.Env, link int64) map[int]int {
	t.Helper()
	var rows []struct {
		Attempts int `bun:"attempts"`
		N        int `bun:"n"`
	}
	if err := e.Store.DB().NewRaw("SELECT attempts, count(*) AS n FROM inbox WHERE link_id = ? GROUP BY attempts", link).Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, r := range rows {
		out[r.Attempts] = r.N
	}
	return out
}

// TestFloodIsLeasedSparingly: a flood of 2,000 notifications on one link
// is one delta round; the claim leases only a few of its rows (a lease is
// a row write), and the round finishes them all.
func TestFloodIsLeasedSparingly(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	l := floodLink(t, e, 2000)
	since := e.Emu.LastRequestSeq()
	if n := e.Worker.RunOnce(ctx); n == 0 || n > 64 {
		t.Fatalf("the claim took %d rows of the flood, want a few", n)
	}
	if n, _ := e.Store.PendingInbox(ctx); n != 0 {
		t.Fatalf("%d pending after the round", n)
	}
	if n := len(e.Emu.Requests(since)); n != 1 {
		t.Fatalf("%d Graph requests for the flood, want one delta round", n)
	}
	got := inboxAttempts(t, e, l.ID)
	if got[1] == 0 || got[1] > 64 || got[0]+got[1] != 2000 {
		t.Fatalf("rows by attempts %v: want all 2000, a few of them leased", got)
	}
}

// TestFailedRoundDefersTheWholeFlood: when the round fails, the link's
// notifications the claim did not lease wait with the leased ones; they
// do not start one failing round after another against a mailbox Graph is
// throttling.
func TestFailedRoundDefersTheWholeFlood(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	l := floodLink(t, e, 500)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: e.Mailbox, Count: 100, RetryAfterSeconds: 30}); err != nil {
		t.Fatal(err)
	}
	since := e.Emu.LastRequestSeq()
	if n := e.Worker.RunOnce(ctx); n == 0 {
		t.Fatal("nothing claimed")
	}
	for i := 0; i < 3; i++ {
		if n := e.Worker.RunOnce(ctx); n != 0 {
			t.Fatalf("claim %d after the failed round took %d rows", i+2, n)
		}
	}
	if n := len(e.Emu.Requests(since)); n != 1 {
		t.Fatalf("%d Graph requests, want the one failed round", n)
	}
	var due int
	if err := e.Store.DB().NewRaw("SELECT count(*) FROM inbox WHERE link_id = ? AND processed_at IS NULL AND next_attempt_at <= now()", l.ID).Scan(ctx, &due); err != nil {
		t.Fatal(err)
	}
	if pending, _ := e.Store.PendingInbox(ctx); pending != 500 || due != 0 {
		t.Fatalf("%d pending, %d due: want all 500 kept and none due before the retry", pending, due)
	}
	e.Emu.ClearFaults()
}

// TestHeldWakesLoseNothing: under a stream of notifications for one
// mailbox, wakes for a link whose round is in flight or resting start no
// claim, and every notification is still processed: the end of the round
// or of the rest looks again.
func TestHeldWakesLoseNothing(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	l := floodLink(t, e, 1)
	var sub string
	if err := e.Store.DB().NewRaw("SELECT id FROM graph_subscriptions LIMIT 1").Scan(ctx, &sub); err != nil {
		t.Fatal(err)
	}
	since := e.Emu.LastRequestSeq()
	if err := e.Worker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Worker.Stop()
	e.Worker.Wake(l.ID)
	const n = 300
	began := time.Now()
	for i := 0; i < n; i++ {
		ct, res := "updated", "Users/x/Events/y"
		if err := e.Store.Enqueue(ctx, []db.InboxItem{{Kind: "change", SubscriptionID: sub, LinkID: &l.ID, ChangeType: &ct, Resource: &res, NextAttemptAt: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		e.Worker.Wake(l.ID)
	}
	posted := time.Since(began)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending, err := e.Store.PendingInbox(ctx)
		if err == nil && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d notifications still pending", pending, n+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e.Worker.HeldWakes() == 0 {
		t.Fatal("no wake was held back while the link's rounds ran")
	}
	// Two rounds at once, then one per 100 ms while the stream lasted, and
	// the one that takes the rest.
	rounds := e.Requests(since, func(r graphemu.RequestRecord) bool { return strings.Contains(r.Path, "/delta") })
	if most := 4 + int(posted/(100*time.Millisecond)); rounds == 0 || rounds > most {
		t.Fatalf("%d delta requests for %d notifications over %v, want 1 to %d", rounds, n+1, posted, most)
	}
}
