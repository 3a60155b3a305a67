package calendar_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

const co = testenv.Company

func ptr[T any](v T) *T { return &v }

func entry(id string) calendar.Input {
	return calendar.Input{ExternalID: id, Subject: "現場A 設備点検", Body: ptr("脚立を持参"), Location: ptr("東京都港区芝公園4-2-8"),
		Start: "2026-12-01T09:00:00+09:00", End: "2026-12-01T12:00:00+09:00", Categories: []string{"手配"}}
}

// stored finds the emulator's copy of the event tagged with externalID.
func stored(t *testing.T, e *testenv.Env, mailbox, externalID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range e.OutlookEvents(t, mailbox) {
		for _, p := range ev["singleValueExtendedProperties"].([]any) {
			pm := p.(map[string]any)
			if pm["id"] == calendar.ExternalIDProperty && pm["value"] == externalID {
				out = append(out, ev)
			}
		}
	}
	return out
}

func graphWrites(e *testenv.Env, since int64) int {
	return e.Requests(since, func(r graphemu.RequestRecord) bool {
		return (r.Method == "POST" || r.Method == "PATCH" || r.Method == "DELETE") && strings.Contains(r.Path, "/events")
	})
}

func TestCreateUpdateNoopDelete(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)

	p, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-1"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Event.OutlookEventID == "" || p.Event.Version == "" || p.WebLink == "" || p.LastSyncedAt == nil || *p.Event.ExternalID != "job-1" {
		t.Fatalf("pushed %+v", p)
	}
	evs := stored(t, e, e.Mailbox, "job-1")
	if len(evs) != 1 || evs[0]["subject"] != "現場A 設備点検" || evs[0]["originalStartTimeZone"] != "Tokyo Standard Time" ||
		evs[0]["transactionId"] == nil || len(evs[0]["attendees"].([]any)) != 0 {
		t.Fatalf("in Outlook: %v", evs)
	}

	since := e.Emu.LastRequestSeq()
	if _, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-1")); err != nil {
		t.Fatal(err)
	}
	if n := graphWrites(e, since); n != 0 {
		t.Fatalf("unchanged upsert made %d Graph writes", n)
	}

	in := entry("job-1")
	in.Subject = "現場A 設備点検（時間変更）"
	since = e.Emu.LastRequestSeq()
	p2, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil || p2.Event.OutlookEventID != p.Event.OutlookEventID || p2.Event.Version == p.Event.Version {
		t.Fatalf("update: %+v %v", p2, err)
	}
	if n := e.Requests(since, func(r graphemu.RequestRecord) bool { return r.Method == "PATCH" }); n != 1 {
		t.Fatalf("%d PATCHes", n)
	}
	if got := stored(t, e, e.Mailbox, "job-1"); got[0]["subject"] != in.Subject || got[0]["location"].(map[string]any)["displayName"] != "東京都港区芝公園4-2-8" {
		t.Fatalf("after update: %v", got[0])
	}
	if g, err := e.Calendar.Get(ctx, co, "u1", "job-1"); err != nil || g.Event.Subject != in.Subject {
		t.Fatalf("get: %+v %v", g, err)
	}

	ok, err := e.Calendar.Delete(ctx, co, "u1", "job-1")
	if err != nil || !ok || len(stored(t, e, e.Mailbox, "job-1")) != 0 {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if ok, err := e.Calendar.Delete(ctx, co, "u1", "job-1"); err != nil || !ok {
		t.Fatalf("second delete: %v %v", ok, err)
	}
	if g, _ := e.Calendar.Get(ctx, co, "u1", "job-1"); g != nil {
		t.Fatal("deleted entry still readable")
	}
}

func TestDeleteOnlyTouchesOwnEvents(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events", map[string]any{"subject": "私用",
		"start": map[string]any{"dateTime": "2026-12-02T10:00:00", "timeZone": "UTC"}, "end": map[string]any{"dateTime": "2026-12-02T11:00:00", "timeZone": "UTC"}}, nil)
	if err := e.Syncer.Resync(ctx, mustLink(t, e, "u1")); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.Calendar.Delete(ctx, co, "u1", "私用"); err != nil || !ok {
		t.Fatalf("%v %v", ok, err)
	}
	if n := len(e.OutlookEvents(t, e.Mailbox)); n != 1 {
		t.Fatalf("the user's own event was touched: %d events left", n)
	}
}

func mustLink(t *testing.T, e *testenv.Env, user string) int64 {
	l, err := e.Store.Link(context.Background(), co, user)
	if err != nil || l == nil {
		t.Fatal(err)
	}
	return l.ID
}

func TestLostResponseMakesNoDuplicate(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropResponse", Count: 1}); err != nil {
		t.Fatal(err)
	}
	p, err := e.Calendar.Upsert(context.Background(), co, "u1", entry("job-lost"))
	if err != nil {
		t.Fatal(err)
	}
	evs := stored(t, e, e.Mailbox, "job-lost")
	if len(evs) != 1 || evs[0]["id"] != p.Event.OutlookEventID {
		t.Fatalf("%d events in Outlook for one entry", len(evs))
	}
}

func TestAdoptionAfterLostLink(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	p, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-2"))
	if err != nil {
		t.Fatal(err)
	}
	// A database restored from before the push: the event link is gone.
	if _, err := e.Store.DB().NewDelete().Table("event_links").Where("external_id = 'job-2'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	in := entry("job-2")
	in.Subject = "現場A（変更）"
	p2, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Event.OutlookEventID != p.Event.OutlookEventID || len(stored(t, e, e.Mailbox, "job-2")) != 1 {
		t.Fatalf("adoption made a duplicate: %s vs %s", p2.Event.OutlookEventID, p.Event.OutlookEventID)
	}
	if stored(t, e, e.Mailbox, "job-2")[0]["subject"] != "現場A（変更）" {
		t.Fatal("adopted event not updated")
	}
}

func TestTimeZonesAndAllDay(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)

	in := entry("tz-tokyo")
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	ev := stored(t, e, e.Mailbox, "tz-tokyo")[0]
	if ev["start"].(map[string]any)["dateTime"] != "2026-12-01T00:00:00.0000000" || ev["originalStartTimeZone"] != "Tokyo Standard Time" {
		t.Fatalf("Tokyo event stored as %v / %v", ev["start"], ev["originalStartTimeZone"])
	}

	// New York across the 2026-03-08 change to daylight saving time.
	ny := calendar.Input{ExternalID: "tz-ny", Subject: "DST", Start: "2026-03-07T09:00:00-05:00", End: "2026-03-09T09:00:00-04:00", TimeZone: ptr("America/New_York")}
	p, err := e.Calendar.Upsert(ctx, co, "u1", ny)
	if err != nil {
		t.Fatal(err)
	}
	ev = stored(t, e, e.Mailbox, "tz-ny")[0]
	if ev["start"].(map[string]any)["dateTime"] != "2026-03-07T14:00:00.0000000" || ev["end"].(map[string]any)["dateTime"] != "2026-03-09T13:00:00.0000000" ||
		ev["originalStartTimeZone"] != "Eastern Standard Time" {
		t.Fatalf("New York event stored as %v .. %v (%v)", ev["start"], ev["end"], ev["originalStartTimeZone"])
	}
	if p.Event.Start != "2026-03-07T09:00:00-05:00" || p.Event.End != "2026-03-09T09:00:00-04:00" || p.Event.TimeZone != "America/New_York" {
		t.Fatalf("host view %s .. %s %s", p.Event.Start, p.Event.End, p.Event.TimeZone)
	}

	allDay := calendar.Input{ExternalID: "allday", Subject: "終日作業", Start: "2026-12-24", End: "2026-12-26", IsAllDay: ptr(true)}
	if _, err := e.Calendar.Upsert(ctx, co, "u1", allDay); err != nil {
		t.Fatal(err)
	}
	ev = stored(t, e, e.Mailbox, "allday")[0]
	// Midnight to midnight in Tokyo: 15:00 UTC the day before.
	if ev["isAllDay"] != true || ev["start"].(map[string]any)["dateTime"] != "2026-12-23T15:00:00.0000000" || ev["end"].(map[string]any)["dateTime"] != "2026-12-25T15:00:00.0000000" {
		t.Fatalf("all-day stored as %v .. %v", ev["start"], ev["end"])
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	cases := []struct {
		name  string
		mod   func(*calendar.Input)
		field string
	}{
		{"end before start", func(in *calendar.Input) { in.End = "2026-12-01T08:00:00+09:00" }, "input.end"},
		{"no offset", func(in *calendar.Input) { in.Start = "2026-12-01T09:00:00" }, "input.start"},
		{"unknown zone", func(in *calendar.Input) { in.TimeZone = ptr("Mars/Olympus") }, "input.timeZone"},
		{"subject too long", func(in *calendar.Input) { in.Subject = strings.Repeat("あ", 256) }, "input.subject"},
		{"no subject", func(in *calendar.Input) { in.Subject = " " }, "input.subject"},
		{"all-day with times", func(in *calendar.Input) { in.IsAllDay = ptr(true) }, "input.start"},
		{"bad showAs", func(in *calendar.Input) { in.ShowAs = ptr("SLEEPING") }, "input.showAs"},
		{"no external id", func(in *calendar.Input) { in.ExternalID = "" }, "input.externalId"},
	}
	for _, c := range cases {
		in := entry("v-1")
		c.mod(&in)
		_, err := e.Calendar.Upsert(context.Background(), co, "u1", in)
		if ae := apperr.As(err); ae.Code != apperr.InvalidInput || ae.Field != c.field {
			t.Errorf("%s: %v (field %q)", c.name, err, ae.Field)
		}
	}
	if _, err := e.Calendar.Upsert(context.Background(), co, "nobody", entry("x")); apperr.CodeOf(err) != apperr.NotLinked {
		t.Errorf("unlinked user: %v", err)
	}
}

func TestConflictAndForce(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	p, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-c"))
	if err != nil {
		t.Fatal(err)
	}
	// The craftsman moves the event in Outlook; sync-back has not run yet.
	e.Control(t, "PATCH", "/_emulator/users/"+e.Mailbox+"/events/"+p.Event.OutlookEventID, map[string]any{"subject": "Outlook で変更"}, nil)
	in := entry("job-c")
	in.Subject = "ホスト側で変更"
	_, err = e.Calendar.Upsert(ctx, co, "u1", in)
	ae := apperr.As(err)
	if ae.Code != apperr.Conflict || ae.Extra["outlookVersion"] == "" {
		t.Fatalf("want CONFLICT, got %v", err)
	}
	ov, _ := ae.Extra["outlookEvent"].(calendar.Event)
	if ov.Subject != "Outlook で変更" {
		t.Fatalf("conflict carries %+v", ae.Extra["outlookEvent"])
	}
	// A plain retry still conflicts; one based on the Outlook version wins.
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("second plain upsert: %v", err)
	}
	in.BaseVersion = ptr(ae.Extra["outlookVersion"].(string))
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatalf("upsert based on the Outlook version: %v", err)
	}
	// force overwrites another Outlook edit.
	e.Control(t, "PATCH", "/_emulator/users/"+e.Mailbox+"/events/"+p.Event.OutlookEventID, map[string]any{"subject": "また Outlook で"}, nil)
	in.Subject, in.BaseVersion, in.Force = "強制上書き", nil, true
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatalf("force: %v", err)
	}
	if got := stored(t, e, e.Mailbox, "job-c")[0]["subject"]; got != "強制上書き" {
		t.Fatalf("after force: %v", got)
	}
}

func TestThrottledMailboxRecovers(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: e.Mailbox, Count: 2, RetryAfterSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if _, err := e.Calendar.Upsert(context.Background(), co, "u1", entry("job-t")); err != nil {
		t.Fatalf("throttled upsert: %v", err)
	}
	if time.Since(began) < 2*time.Second {
		t.Fatal("did not wait for Retry-After")
	}
	if len(stored(t, e, e.Mailbox, "job-t")) != 1 {
		t.Fatal("event not created")
	}
	// Throttled past the SDK's retries: THROTTLED with a hint.
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: e.Mailbox, Count: 20, RetryAfterSeconds: 1}); err != nil {
		t.Fatal(err)
	}
	in := entry("job-t")
	in.Subject = "changed"
	_, err := e.Calendar.Upsert(context.Background(), co, "u1", in)
	if ae := apperr.As(err); ae.Code != apperr.Throttled || ae.Hint == nil || ae.Extra["retryAfterSeconds"] == nil {
		t.Fatalf("want THROTTLED, got %v", err)
	}
	e.Emu.ClearFaults()
}

func TestBulkUsesBatches(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	var ins []calendar.Input
	day := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	for i := 0; i < 100; i++ {
		s := day.AddDate(0, 0, i)
		ins = append(ins, calendar.Input{ExternalID: fmt.Sprintf("bulk-%03d", i), Subject: fmt.Sprintf("作業 %d", i),
			Start: s.Format(time.RFC3339), End: s.Add(2 * time.Hour).Format(time.RFC3339)})
	}
	ins = append(ins, calendar.Input{ExternalID: "bulk-bad", Subject: "bad", Start: "tomorrow", End: "later"})
	since := e.Emu.LastRequestSeq()
	results, err := e.Calendar.UpsertMany(context.Background(), co, "u1", ins)
	if err != nil {
		t.Fatal(err)
	}
	ok := 0
	for _, r := range results[:100] {
		if r.Err == nil && r.Pushed != nil && r.Pushed.Event.OutlookEventID != "" {
			ok++
		}
	}
	if ok != 100 || results[100].Err == nil || apperr.As(results[100].Err).Field != "inputs[100].start" {
		t.Fatalf("%d ok; bad item: %v", ok, results[100].Err)
	}
	batches := e.Requests(since, func(r graphemu.RequestRecord) bool { return r.Path == "/v1.0/$batch" })
	if batches != 5 {
		t.Fatalf("%d batch calls for 100 events, want 5", batches)
	}
	if n := len(e.OutlookEvents(t, e.Mailbox)); n != 100 {
		t.Fatalf("%d events in Outlook", n)
	}
	// Re-sending the same 100 changes nothing.
	since = e.Emu.LastRequestSeq()
	if _, err := e.Calendar.UpsertMany(context.Background(), co, "u1", ins[:100]); err != nil {
		t.Fatal(err)
	}
	if n := e.Requests(since, func(graphemu.RequestRecord) bool { return true }); n != 0 {
		t.Fatalf("unchanged bulk made %d Graph calls", n)
	}
}

// TestDuplicateTransactionIdRecovers: a create whose answers were all lost
// made the event; the entry then changes and is pushed in bulk (which does
// not look for tagged events first), so the create reuses its
// transactionId with another body and Exchange answers 400
// ErrorDuplicateTransactionId. calsync finds the event by its externalId
// and overwrites it: one event, the new version.
func TestDuplicateTransactionIdRecovers(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropResponse", Count: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-dup")); err == nil {
		t.Fatal("a push whose every answer was lost succeeded")
	}
	if n := len(stored(t, e, e.Mailbox, "job-dup")); n != 1 {
		t.Fatalf("%d events after the lost create", n)
	}
	in := entry("job-dup")
	in.Subject = "現場A（時間変更）"
	since := e.Emu.LastRequestSeq()
	results, err := e.Calendar.UpsertMany(ctx, co, "u1", []calendar.Input{in})
	if err != nil || results[0].Err != nil {
		t.Fatalf("bulk push after the lost create: %v %v", err, results[0].Err)
	}
	dup := e.Requests(since, func(r graphemu.RequestRecord) bool { return r.Status == 400 })
	evs := stored(t, e, e.Mailbox, "job-dup")
	if len(evs) != 1 || evs[0]["subject"] != "現場A（時間変更）" || evs[0]["id"] != results[0].Pushed.Event.OutlookEventID {
		t.Fatalf("after recovery: %d events %v", len(evs), evs)
	}
	if dup != 1 {
		t.Errorf("%d requests answered 400, want the one duplicate create", dup)
	}
	// The same through a single push whose create meets the duplicate.
	if _, err := e.Store.DB().NewDelete().Table("event_links").Where("external_id = 'job-dup'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	in.Subject = "現場A（再変更）"
	results, err = e.Calendar.UpsertMany(ctx, co, "u1", []calendar.Input{in})
	if err != nil || results[0].Err != nil {
		t.Fatalf("second recovery: %v %v", err, results[0].Err)
	}
	if evs := stored(t, e, e.Mailbox, "job-dup"); len(evs) != 1 || evs[0]["subject"] != "現場A（再変更）" {
		t.Fatalf("after the second recovery: %v", evs)
	}
}

// TestBulkRetriesOnlyThrottledSteps: Graph throttles steps of a $batch on
// their own (429 with Retry-After inside the batch answer,
// concepts/json-batching.md); calsync sends only those again after their
// Retry-After, and nothing is made twice.
func TestBulkRetriesOnlyThrottledSteps(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	e.Link(t, "u1", e.Mailbox)
	var ins []calendar.Input
	day := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	for i := 0; i < 20; i++ {
		s := day.AddDate(0, 0, i)
		ins = append(ins, calendar.Input{ExternalID: fmt.Sprintf("thr-%02d", i), Subject: "作業", Start: s.Format(time.RFC3339), End: s.Add(time.Hour).Format(time.RFC3339)})
	}
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "throttle", Mailbox: e.Mailbox, Count: 3, RetryAfterSeconds: 1, Method: "POST"}); err != nil {
		t.Fatal(err)
	}
	since := e.Emu.LastRequestSeq()
	results, err := e.Calendar.UpsertMany(context.Background(), co, "u1", ins)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Errorf("item %d: %v", i, r.Err)
		}
	}
	if n := len(e.OutlookEvents(t, e.Mailbox)); n != 20 {
		t.Errorf("%d events in Outlook for 20 entries", n)
	}
	throttled := e.Requests(since, func(r graphemu.RequestRecord) bool { return r.Status == 429 })
	creates := e.Requests(since, func(r graphemu.RequestRecord) bool { return r.Method == "POST" && strings.HasSuffix(r.Path, "/events") })
	batches := e.Requests(since, func(r graphemu.RequestRecord) bool { return r.Path == "/v1.0/$batch" })
	if throttled != 3 || creates != 23 || batches != 2 {
		t.Errorf("%d steps throttled, %d create steps, %d batch calls; want 3, 23 (20 + the 3 again), 2", throttled, creates, batches)
	}
}

// TestConsentWithdrawnShowsConsentMissing: when the tenant's admin removes
// the app's Calendars permission, the next token has no roles and Graph
// answers 401 NoPermissionsInAccessToken; the push answers CONSENT_MISSING
// (with the hint) and the company's credentials show CONSENT_MISSING.
// Tokens here last two minutes, so the SDK fetches a fresh one for each
// call, as it does an hour after the permission changed.
func TestConsentWithdrawnShowsConsentMissing(t *testing.T) {
	t.Parallel()
	e := testenv.NewWith(t, graphemu.Options{TokenLifetime: 2 * time.Minute, Unruly: true})
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	if _, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-consent")); err != nil {
		t.Fatal(err)
	}
	e.Control(t, "PATCH", "/_emulator/tenants/"+testenv.TenantID+"/apps/"+testenv.ClientID, map[string]any{"roles": []string{}}, nil)
	in := entry("job-consent")
	in.Subject = "現場A 設備点検 (変更)"
	_, err := e.Calendar.Upsert(ctx, co, "u1", in)
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.ConsentMissing || ae.Hint == nil {
		t.Fatalf("push after consent was withdrawn: %v", err)
	}
	s, err := e.Creds.Settings(ctx, co)
	if err != nil || s == nil || s.Status != credentials.StatusConsentMissing {
		t.Fatalf("credentials after consent was withdrawn: %+v %v", s, err)
	}
	if got := stored(t, e, e.Mailbox, "job-consent"); len(got) != 1 || got[0]["subject"] != "現場A 設備点検" {
		t.Errorf("Outlook changed although the push was refused: %v", got)
	}
}

// TestOutlookSideEditsMergeThreeWay (issue 16 §1): a craftsman switching a
// reminder off or dismissing it changes the event's changeKey but no field
// the host owns, so the dispatcher's next push goes through and keeps the
// craftsman's reminder; an Outlook edit of another field is kept beside the
// host's; only the same field changed on both sides is a CONFLICT, naming it.
func TestOutlookSideEditsMergeThreeWay(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	in := entry("job-r")
	in.ReminderMinutes = ptr(30)
	p, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	id := p.Event.OutlookEventID
	outlookNow := func() map[string]any { return stored(t, e, e.Mailbox, "job-r")[0] }

	e.Control(t, "PATCH", "/_emulator/users/"+e.Mailbox+"/events/"+id, map[string]any{"isReminderOn": false}, nil)
	in.Subject = "現場A 設備点検 (午後に変更)"
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatalf("push after the reminder was switched off: %v", err)
	}
	if ev := outlookNow(); ev["subject"] != in.Subject || ev["isReminderOn"] != false {
		t.Fatalf("after the push: subject %v, reminder on %v", ev["subject"], ev["isReminderOn"])
	}

	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events/"+id+"/dismissReminder", nil, nil)
	in.Location = ptr("東京都港区芝公園4-2-8 B棟")
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatalf("push after the reminder was dismissed: %v", err)
	}

	// The craftsman retitles it; the dispatcher changes only the body.
	e.Control(t, "PATCH", "/_emulator/users/"+e.Mailbox+"/events/"+id, map[string]any{"subject": "点検（鍵は管理室）"}, nil)
	in.Body = ptr("脚立と延長コードを持参")
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatalf("push changing another field than Outlook did: %v", err)
	}
	ev := outlookNow()
	if ev["subject"] != "点検（鍵は管理室）" || !strings.Contains(ev["body"].(map[string]any)["content"].(string), "脚立と延長コードを持参") {
		t.Fatalf("merge lost a side: subject %v, body %v", ev["subject"], ev["body"])
	}

	// Both change the location: CONFLICT naming it, Outlook untouched.
	e.Control(t, "PATCH", "/_emulator/users/"+e.Mailbox+"/events/"+id, map[string]any{"location": map[string]any{"displayName": "本社"}}, nil)
	in.Location = ptr("大阪支店")
	_, err = e.Calendar.Upsert(ctx, co, "u1", in)
	ae := apperr.As(err)
	if ae == nil || ae.Code != apperr.Conflict || fmt.Sprint(ae.Extra["conflictingFields"]) != "[location]" {
		t.Fatalf("same field on both sides: %v %+v", err, ae)
	}
	if ev := outlookNow(); ev["location"].(map[string]any)["displayName"] != "本社" {
		t.Fatalf("a conflicting push changed Outlook: %v", ev["location"])
	}
}

// TestPushStepsAreTimed checks calsync_push_step_seconds: a create and an
// update each count once in every step, and a no-op upsert counts no
// Graph or save step.
func TestPushStepsAreTimed(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	reg := prometheus.NewRegistry()
	e.Calendar.ObserveSteps(reg)

	if _, err := e.Calendar.Upsert(ctx, co, "u1", entry("job-steps")); err != nil {
		t.Fatal(err)
	}
	in := entry("job-steps")
	in.Subject = "現場A（変更）"
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil { // nothing changed
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "calsync_push_step_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "step" {
					counts[l.GetValue()] = m.GetHistogram().GetSampleCount()
					if m.GetHistogram().GetSampleSum() <= 0 {
						t.Errorf("step %s took no time", l.GetValue())
					}
				}
			}
		}
	}
	want := map[string]uint64{"lock_read": 3, "plan": 3, "graph": 2, "save": 2}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("steps counted %v, want %v", counts, want)
	}
}
