package changes_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// nextWeekday is the next day after now that falls on wd, at 10:00 Tokyo.
func nextWeekday(wd time.Weekday) time.Time {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	d := time.Now().In(tokyo).AddDate(0, 0, 1)
	for d.Weekday() != wd {
		d = d.AddDate(0, 0, 1)
	}
	return time.Date(d.Year(), d.Month(), d.Day(), 10, 0, 0, 0, tokyo)
}

func seriesBody(subject string, start time.Time, pattern, rng map[string]any) map[string]any {
	rng["startDate"] = start.Format("2006-01-02")
	f := func(t time.Time) map[string]any {
		return map[string]any{"dateTime": t.Format("2006-01-02T15:04:05"), "timeZone": "Tokyo Standard Time"}
	}
	return map[string]any{"subject": subject, "start": f(start), "end": f(start.Add(time.Hour)),
		"recurrence": map[string]any{"pattern": pattern, "range": rng}}
}

func changesSince(t *testing.T, e *testenv.Env, n int) []db.Change {
	t.Helper()
	return allChanges(t, e)[n:]
}

// TestOutlookSeriesReachTheHostAsInstances: a series made in Outlook
// reaches the host as one CREATED per instance in the window, each with
// its series' id and rule; editing one instance is one UPDATED (now an
// EXCEPTION), cancelling one is one DELETED, and a series edit reports the
// instances it changed — not the exception, not the cancelled one.
func TestOutlookSeriesReachTheHostAsInstances(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)

	start := nextWeekday(time.Tuesday)
	master := ownerEdit(t, e, "POST", "", seriesBody("週次定例", start,
		map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []string{"tuesday"}, "firstDayOfWeek": "sunday"},
		map[string]any{"type": "numbered", "numberOfOccurrences": 5}))
	mid := master["id"].(string)
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 5 {
		t.Fatalf("%d changes for a 5-instance series, want 5", len(cs))
	}
	ids := map[string]bool{}
	for i, c := range cs {
		v := eventOf(t, c)
		if c.ChangeType != "CREATED" || v.Type != calendar.Occurrence || v.SeriesID != mid || v.RecurrenceRule != "FREQ=WEEKLY;BYDAY=TU;COUNT=5" || c.ExternalID != nil {
			t.Fatalf("change %d: %+v %+v", i, c, v)
		}
		if want := start.AddDate(0, 0, 7*i).Format(time.RFC3339); v.Start != want {
			t.Errorf("instance %d starts %s, want %s", i, v.Start, want)
		}
		ids[c.OutlookEventID] = true
	}
	if len(ids) != 5 || ids[mid] {
		t.Fatalf("instance ids %v (master %s)", ids, mid)
	}

	second, third := cs[1].OutlookEventID, cs[2].OutlookEventID
	ownerEdit(t, e, "PATCH", "/"+second, map[string]any{"subject": "週次定例 (時間変更)"})
	drain(t, e)
	got := changesSince(t, e, 5)
	if len(got) != 1 || got[0].OutlookEventID != second || got[0].ChangeType != "UPDATED" || !slices.Equal(got[0].ChangedFields, []string{"subject"}) ||
		eventOf(t, got[0]).Type != calendar.Exception {
		t.Fatalf("after editing one instance: %+v", got)
	}

	e.Control(t, "DELETE", "/_emulator/users/"+e.Mailbox+"/events/"+third, nil, nil)
	drain(t, e)
	got = changesSince(t, e, 6)
	if len(got) != 1 || got[0].OutlookEventID != third || got[0].ChangeType != "DELETED" {
		t.Fatalf("after cancelling one instance: %+v", got)
	}

	ownerEdit(t, e, "PATCH", "/"+mid, map[string]any{"location": map[string]any{"displayName": "本社 3F"}})
	drain(t, e)
	got = changesSince(t, e, 7)
	if len(got) != 3 {
		t.Fatalf("a series edit reported %d changes, want 3 (5 − the exception − the cancelled): %+v", len(got), got)
	}
	for _, c := range got {
		if c.OutlookEventID == second || c.OutlookEventID == third || c.ChangeType != "UPDATED" || !slices.Equal(c.ChangedFields, []string{"location"}) {
			t.Errorf("series edit change %+v", c)
		}
	}

	// Deleting the series: one DELETED per instance still known (the
	// cancelled one was reported already), settled by one look-up of the
	// master rather than one per instance.
	since := e.Emu.LastRequestSeq()
	e.Control(t, "DELETE", "/_emulator/users/"+e.Mailbox+"/events/"+mid, nil, nil)
	drain(t, e)
	got = changesSince(t, e, 10)
	if len(got) != 4 {
		t.Fatalf("deleting the series reported %d changes, want 4: %+v", len(got), got)
	}
	for _, c := range got {
		if c.ChangeType != "DELETED" || c.OutlookEventID == third || c.OutlookEventID == mid {
			t.Errorf("series deletion change %+v", c)
		}
	}
	gets := 0
	for _, r := range e.Emu.Requests(since) {
		if r.Method == "GET" && strings.Contains(r.Path, "/events/") {
			gets++
		}
	}
	if gets > 2 {
		t.Errorf("%d event look-ups to settle a deleted series of 4 known instances, want at most 2", gets)
	}
}

// TestDailySeriesWithoutEndIsBoundedByTheWindow: an endless daily series
// reaches the host as the instances inside the sync window, no more.
func TestDailySeriesWithoutEndIsBoundedByTheWindow(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	start := nextWeekday(time.Monday).AddDate(-1, 0, 0) // a year ago: long before the window
	ownerEdit(t, e, "POST", "", seriesBody("毎日の朝礼", start, map[string]any{"type": "daily", "interval": 1}, map[string]any{"type": "noEnd"}))
	drain(t, e)
	cs := allChanges(t, e)
	// The window is 30 days back and 365 ahead: 395 or 396 daily instances.
	if len(cs) < 394 || len(cs) > 396 {
		t.Fatalf("%d instances reported for an endless daily series, want the window's ~395", len(cs))
	}
	limit := time.Now().Add(366 * 24 * time.Hour)
	for _, c := range cs {
		if s, _ := time.Parse(time.RFC3339, eventOf(t, c).Start); s.After(limit) || s.Before(time.Now().Add(-31*24*time.Hour)) {
			t.Fatalf("instance outside the window: %s", eventOf(t, c).Start)
		}
	}
}

// TestHostPushedSeries: the host pushes a recurring entry; its own series
// and its own edits of it are no change; an Outlook user's edit of one
// instance is reported with the entry's externalId; changing the rule
// updates the series, removing it makes one single event again, and
// deleting the entry removes the series — none of which the host hears
// back as Outlook changes.
func TestHostPushedSeries(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	start := nextWeekday(time.Wednesday)
	rule := "FREQ=WEEKLY;BYDAY=WE;COUNT=3"
	in := calendar.Input{ExternalID: "job-series", Subject: "定期点検", Start: start.Format(time.RFC3339), End: start.Add(2 * time.Hour).Format(time.RFC3339), RecurrenceRule: &rule}
	p, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	if p.Event.Type != calendar.SeriesMaster || p.Event.RecurrenceRule != rule {
		t.Fatalf("pushed %+v", p.Event)
	}
	var stored struct {
		Value []map[string]any `json:"value"`
	}
	e.Control(t, "GET", "/_emulator/users/"+e.Mailbox+"/events", nil, &stored)
	if len(stored.Value) != 1 || stored.Value[0]["type"] != "seriesMaster" {
		t.Fatalf("Outlook holds %v", stored.Value)
	}
	pat := stored.Value[0]["recurrence"].(map[string]any)["pattern"].(map[string]any)
	if pat["type"] != "weekly" || !slices.Equal(pat["daysOfWeek"].([]any), []any{"wednesday"}) {
		t.Errorf("recurrence sent as %v", stored.Value[0]["recurrence"])
	}
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("the host's own series came back as %d changes: %+v", len(cs), cs)
	}

	// The host moves the series an hour later: its own edit, no change.
	later := start.Add(time.Hour)
	in.Start, in.End = later.Format(time.RFC3339), later.Add(2*time.Hour).Format(time.RFC3339)
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("the host's own series edit came back as %d changes: %+v", len(cs), cs)
	}

	// A craftsman edits the second visit in Outlook: reported with the
	// entry's externalId, as an EXCEPTION of the pushed series.
	instances := instanceRows(t, e, p.Event.OutlookEventID)
	if len(instances) != 3 {
		t.Fatalf("calsync knows %d instances of the pushed series, want 3", len(instances))
	}
	second := instances[1]
	ownerEdit(t, e, "PATCH", "/"+second, map[string]any{"subject": "定期点検 (鍵は管理室)"})
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 1 || cs[0].OutlookEventID != second || cs[0].ExternalID == nil || *cs[0].ExternalID != "job-series" ||
		eventOf(t, cs[0]).Type != calendar.Exception || eventOf(t, cs[0]).SeriesID != p.Event.OutlookEventID {
		t.Fatalf("after an Outlook edit of one visit: %+v", cs)
	}

	// The host, having seen it, extends the series to five visits.
	got, err := e.Calendar.Get(ctx, co, "u1", "job-series")
	if err != nil {
		t.Fatal(err)
	}
	rule = "FREQ=WEEKLY;BYDAY=WE;COUNT=5"
	in.BaseVersion = &got.Event.Version
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	if n := len(allChanges(t, e)); n != 1 {
		t.Fatalf("the host's rule change came back as changes: %+v", allChanges(t, e)[1:])
	}
	if n := len(instanceRows(t, e, p.Event.OutlookEventID)); n != 5 {
		t.Errorf("%d instances after extending to 5", n)
	}

	// Without a rule the entry is one event again.
	in.RecurrenceRule, in.BaseVersion = nil, nil
	single, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	e.Control(t, "GET", "/_emulator/users/"+e.Mailbox+"/events", nil, &stored)
	if len(stored.Value) != 1 || stored.Value[0]["type"] != "singleInstance" || stored.Value[0]["id"] != single.Event.OutlookEventID || single.Event.Type != calendar.SingleInstance {
		t.Fatalf("after removing the rule Outlook holds %v", stored.Value)
	}
	drain(t, e)
	if n := len(allChanges(t, e)); n != 1 {
		t.Fatalf("replacing the series came back as changes: %+v", allChanges(t, e)[1:])
	}

	// A rule Outlook cannot express is refused, naming the part; nothing changes.
	bad := "FREQ=HOURLY;COUNT=3"
	in.RecurrenceRule = &bad
	_, err = e.Calendar.Upsert(ctx, co, "u1", in)
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.InvalidInput || ae.Field != "input.recurrenceRule" || !strings.Contains(ae.Message.EN, "FREQ=HOURLY") {
		t.Fatalf("FREQ=HOURLY: %v", err)
	}
	e.Control(t, "GET", "/_emulator/users/"+e.Mailbox+"/events", nil, &stored)
	if len(stored.Value) != 1 || stored.Value[0]["id"] != single.Event.OutlookEventID {
		t.Fatalf("a refused push changed Outlook: %v", stored.Value)
	}
}

// instanceRows lists, in start order, the Outlook ids of the instances of
// series seriesID that calsync's sync-back knows.
func instanceRows(t *testing.T, e *testenv.Env, seriesID string) []string {
	t.Helper()
	els, err := e.Store.LiveEventLinks(context.Background(), co, "u1")
	if err != nil {
		t.Fatal(err)
	}
	type inst struct{ id, start string }
	var out []inst
	for _, el := range els {
		var v calendar.Event
		if json.Unmarshal(el.LastKnown, &v) == nil && v.SeriesID == seriesID {
			out = append(out, inst{el.OutlookEventID, v.Start})
		}
	}
	slices.SortFunc(out, func(a, b inst) int { return strings.Compare(a.start, b.start) })
	ids := make([]string, len(out))
	for i, x := range out {
		ids[i] = x.id
	}
	return ids
}

// TestASlowRoundDoesNotHoldTheFeed: a round takes the change feed's lock
// (which orders appends across every mailbox) only for its last INSERT and
// commit. Another mailbox's round reports its change while the first is
// still waiting on Graph for its series' master; it used to wait for the
// whole of that round.
func TestASlowRoundDoesNotHoldTheFeed(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	slow := e.Link(t, "u1", e.Mailbox)
	other := e.Link(t, "u2", e.Mailbox2)
	start := nextWeekday(time.Wednesday)
	ownerEdit(t, e, "POST", "", seriesBody("週次点検", start,
		map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []string{"wednesday"}, "firstDayOfWeek": "sunday"},
		map[string]any{"type": "numbered", "numberOfOccurrences": 3}))
	drain(t, e)
	instance := allChanges(t, e)[0].OutlookEventID
	before := len(allChanges(t, e))

	// u1's instance is edited; its round reads the delta and then the
	// series' master, each taking 3 s.
	ownerEdit(t, e, "PATCH", "/"+instance, map[string]any{"subject": "週次点検 (変更)"})
	var mid map[string]any
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox2+"/events", newOutlookEvent("u2 の予定"), &mid)
	since := e.Emu.LastRequestSeq()
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "slow", Mailbox: e.Mailbox, Method: "GET", MS: 3000, Count: 2}); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() {
		_, err := e.Syncer.Sync(ctx, slow.ID, false)
		slowDone <- err
	}()
	// Once its delta is answered, u1's round goes on to the master.
	for deadline := time.Now().Add(10 * time.Second); e.Requests(since, func(r graphemu.RequestRecord) bool {
		return strings.Contains(r.Path, "/delta")
	}) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("u1's delta was never answered")
		}
	}
	time.Sleep(300 * time.Millisecond)
	res, err := e.Syncer.Sync(ctx, other.ID, false)
	if err != nil || res.Changes != 1 {
		t.Fatalf("u2's round: %+v %v, want its one change", res, err)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("u2's round ended only after u1's slow one (%v): it waited for the feed", err)
	default:
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	cs := allChanges(t, e)[before:]
	if len(cs) != 2 || cs[0].UserID != "u2" || cs[1].UserID != "u1" || cs[1].OutlookEventID != instance || cs[0].Cursor >= cs[1].Cursor {
		t.Fatalf("changes after the edits: %+v, want u2's, then u1's instance", cs)
	}
}
