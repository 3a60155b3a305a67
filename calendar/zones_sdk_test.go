package calendar_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// outlookStart reads an event's start as Outlook stores it, the way
// calsync reads it back: dateTime in its timeZone (Windows or IANA).
func outlookStart(t *testing.T, ev map[string]any) time.Time {
	t.Helper()
	st, _ := ev["start"].(map[string]any)
	loc, ok := calendar.IANAZone(fmt.Sprint(st["timeZone"]))
	if !ok {
		t.Fatalf("unknown zone in %v", st)
	}
	at, err := time.ParseInLocation("2006-01-02T15:04:05.9999999", fmt.Sprint(st["dateTime"]), loc)
	if err != nil {
		t.Fatalf("%v: %v", st, err)
	}
	return at
}

// TestEveryZoneRoundTripsThroughOutlook pushes an entry in every zone of
// Go's database through the real SDK and reads it back from Outlook: the
// same instant, stored under the zone's Windows name; the few zones Outlook
// cannot hold are refused naming timeZone.
func TestEveryZoneRoundTripsThroughOutlook(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	zones := calendar.GoZonesForTest(t)
	want := map[string]time.Time{}
	refused := 0
	for i := 0; i < len(zones); i += calendar.MaxBulk {
		var ins []calendar.Input
		for _, z := range zones[i:min(i+calendar.MaxBulk, len(zones))] {
			loc, _ := time.LoadLocation(z)
			start := time.Date(2026, 12, 10, 10, 0, 0, 0, loc)
			ins = append(ins, calendar.Input{ExternalID: "tz-" + z, Subject: z, TimeZone: &z,
				Start: start.Format(time.RFC3339), End: start.Add(time.Hour).Format(time.RFC3339)})
			want["tz-"+z] = start
		}
		results, err := e.Calendar.UpsertMany(ctx, co, "u1", ins)
		if err != nil {
			t.Fatal(err)
		}
		for j, r := range results {
			if r.Err != nil {
				if f := apperr.As(r.Err).Field; f != fmt.Sprintf("inputs[%d].timeZone", j) {
					t.Errorf("%s: %v (field %s)", ins[j].ExternalID, r.Err, f)
				}
				delete(want, ins[j].ExternalID)
				refused++
			}
		}
	}
	got := 0
	for _, ev := range e.OutlookEvents(t, e.Mailbox) {
		z := fmt.Sprint(ev["subject"])
		at, ok := want["tz-"+z]
		if !ok {
			continue
		}
		got++
		if s := outlookStart(t, ev); !s.Equal(at) {
			t.Errorf("%s: pushed %s, Outlook holds %s", z, at, s)
		}
		if w, _ := calendar.WindowsZone(z); ev["originalStartTimeZone"] != w {
			t.Errorf("%s stored as %v, want %s", z, ev["originalStartTimeZone"], w)
		}
	}
	if got != len(want) || refused > 6 {
		t.Errorf("%d of %d zones in Outlook, %d refused", got, len(want), refused)
	}
	t.Logf("%d zones round-tripped, %d refused", got, refused)
}

// TestDSTEdges pushes entries that straddle the next clock change in zones
// whose changes are unusual (half-hour DST on Lord Howe, the southern
// hemisphere, a change at midnight in Santiago) and checks instants and
// durations as Outlook holds them.
func TestDSTEdges(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	for _, z := range []string{"Europe/Rome", "America/Vancouver", "Australia/Lord_Howe", "America/Santiago"} {
		loc, _ := time.LoadLocation(z)
		_, change := time.Date(2026, 12, 1, 0, 0, 0, 0, loc).ZoneBounds()
		for k, span := range []struct{ from, to time.Duration }{{-45 * time.Minute, 45 * time.Minute}, {-3 * time.Hour, -time.Hour}, {time.Hour, 3 * time.Hour}} {
			start, end := change.Add(span.from).In(loc), change.Add(span.to).In(loc)
			id := fmt.Sprintf("dst-%s-%d", z, k)
			if _, err := e.Calendar.Upsert(ctx, co, "u1", calendar.Input{ExternalID: id, Subject: id, TimeZone: &z,
				Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339)}); err != nil {
				t.Fatalf("%s: %v", id, err)
			}
			evs := stored(t, e, e.Mailbox, id)
			if len(evs) != 1 {
				t.Fatalf("%s: %d in Outlook", id, len(evs))
			}
			if s := outlookStart(t, evs[0]); !s.Equal(start) {
				t.Errorf("%s (change at %s): pushed %s, Outlook holds %s", id, change, start, s)
			}
			en, _ := evs[0]["end"].(map[string]any)
			ev := map[string]any{"start": en}
			if s := outlookStart(t, ev); !s.Equal(end) {
				t.Errorf("%s: end pushed %s, Outlook holds %s", id, end, s)
			}
		}
	}
}
