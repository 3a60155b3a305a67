package graphemu_test

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// series creates a recurring event as the mailbox owner would, 13:00–13:30
// Tokyo time from startDate, and returns it.
func (e *env) series(t *testing.T, startDate string, pattern, rng map[string]any) map[string]any {
	t.Helper()
	rng["startDate"] = startDate
	var out map[string]any
	e.do(t, "POST", "/_emulator/users/"+e.user.ID+"/events", "", map[string]any{"subject": "定例",
		"start":      map[string]any{"dateTime": startDate + "T13:00:00", "timeZone": "Tokyo Standard Time"},
		"end":        map[string]any{"dateTime": startDate + "T13:30:00", "timeZone": "Tokyo Standard Time"},
		"recurrence": map[string]any{"pattern": pattern, "range": rng}}, 201, &out)
	return out
}

// instanceDates lists a master's instances in [from, to) as their Tokyo
// dates, through GET /events/{id}/instances.
func (e *env) instanceDates(t *testing.T, id, from, to string) []string {
	t.Helper()
	var out struct {
		Value []map[string]any `json:"value"`
	}
	q := url.Values{"startDateTime": {from + "T00:00:00+09:00"}, "endDateTime": {to + "T00:00:00+09:00"}, "$top": {"1000"}}
	e.do(t, "GET", "/v1.0/users/"+e.user.ID+"/events/"+url.PathEscape(id)+"/instances?"+q.Encode(), e.token, nil, 200, &out,
		"Prefer", `outlook.timezone="Tokyo Standard Time"`, "Prefer", `IdType="ImmutableId"`)
	var dates []string
	for _, v := range out.Value {
		if v["seriesMasterId"] != id || v["recurrence"] != nil {
			t.Errorf("instance %v: seriesMasterId/recurrence wrong", v)
		}
		dates = append(dates, v["start"].(map[string]any)["dateTime"].(string)[:10])
	}
	return dates
}

// TestRecurrencePatterns expands each pattern and range type as
// concepts/outlook-schedule-recurring-events.md describes, including its
// two worked examples.
func TestRecurrencePatterns(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, c := range []struct {
		name, startDate string
		pattern, rng    map[string]any
		from, to        string
		want            []string
	}{
		{"doc: every Monday until the end of 2017 ends on Dec 25", "2017-09-04",
			map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []string{"Monday"}},
			map[string]any{"type": "endDate", "endDate": "2017-12-31"}, "2017-12-01", "2018-02-01",
			[]string{"2017-12-04", "2017-12-11", "2017-12-18", "2017-12-25"}},
		{"doc: first Thursday of every other month from Aug 29 starts in September", "2017-08-29",
			map[string]any{"type": "relativeMonthly", "interval": 2, "daysOfWeek": []string{"Thursday"}, "index": "first"},
			map[string]any{"type": "noEnd"}, "2017-08-01", "2018-02-01",
			[]string{"2017-09-07", "2017-11-02", "2018-01-04"}},
		{"daily every 3 days, 4 times", "2026-12-01",
			map[string]any{"type": "daily", "interval": 3}, map[string]any{"type": "numbered", "numberOfOccurrences": 4},
			"2026-11-01", "2027-02-01", []string{"2026-12-01", "2026-12-04", "2026-12-07", "2026-12-10"}},
		{"every other week, Tuesday and Thursday, week from Monday", "2026-12-01",
			map[string]any{"type": "weekly", "interval": 2, "daysOfWeek": []string{"tuesday", "thursday"}, "firstDayOfWeek": "monday"},
			map[string]any{"type": "numbered", "numberOfOccurrences": 5}, "2026-11-01", "2027-02-01",
			[]string{"2026-12-01", "2026-12-03", "2026-12-15", "2026-12-17", "2026-12-29"}},
		{"the 31st falls on the last day of shorter months", "2027-01-31",
			map[string]any{"type": "absoluteMonthly", "interval": 1, "dayOfMonth": 31},
			map[string]any{"type": "numbered", "numberOfOccurrences": 3}, "2027-01-01", "2027-06-01",
			[]string{"2027-01-31", "2027-02-28", "2027-03-31"}},
		{"last Friday of the month", "2026-12-01",
			map[string]any{"type": "relativeMonthly", "interval": 1, "daysOfWeek": []string{"friday"}, "index": "last"},
			map[string]any{"type": "endDate", "endDate": "2027-02-28"}, "2026-12-01", "2027-06-01",
			[]string{"2026-12-25", "2027-01-29", "2027-02-26"}},
		{"second Thursday or Friday", "2026-12-01",
			map[string]any{"type": "relativeMonthly", "interval": 1, "daysOfWeek": []string{"thursday", "friday"}, "index": "second"},
			map[string]any{"type": "numbered", "numberOfOccurrences": 2}, "2026-12-01", "2027-06-01",
			[]string{"2026-12-04", "2027-01-07"}}, // Dec: Thu 3, Fri 4; Jan: Fri 1, Thu 7
		{"April 15 every year", "2026-04-15",
			map[string]any{"type": "absoluteYearly", "interval": 1, "dayOfMonth": 15, "month": 4},
			map[string]any{"type": "numbered", "numberOfOccurrences": 2}, "2026-01-01", "2029-01-01",
			[]string{"2026-04-15", "2027-04-15"}},
		{"last Wednesday of November", "2026-11-01",
			map[string]any{"type": "relativeYearly", "interval": 1, "daysOfWeek": []string{"wednesday"}, "index": "last", "month": 11},
			map[string]any{"type": "endDate", "endDate": "2028-12-31"}, "2026-01-01", "2030-01-01",
			[]string{"2026-11-25", "2027-11-24", "2028-11-29"}},
		{"daily without end is bounded by the asked range", "2000-01-01",
			map[string]any{"type": "daily", "interval": 1}, map[string]any{"type": "noEnd"}, "2026-12-01", "2026-12-04",
			[]string{"2026-12-01", "2026-12-02", "2026-12-03"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev := e.series(t, c.startDate, c.pattern, c.rng)
			if ev["type"] != "seriesMaster" || ev["recurrence"] == nil {
				t.Fatalf("created %v", ev)
			}
			if got := e.instanceDates(t, ev["id"].(string), c.from, c.to); !slices.Equal(got, c.want) {
				t.Errorf("instances %v, want %v", got, c.want)
			}
		})
	}
}

// TestRecurrenceRefused: a pattern missing what its type requires, or a
// range whose startDate is not the event's start date, is a 400.
func TestRecurrenceRefused(t *testing.T) {
	t.Parallel()
	e := start(t)
	for name, rec := range map[string]map[string]any{
		"weekly without days": {"pattern": map[string]any{"type": "weekly", "interval": 1}, "range": map[string]any{"type": "noEnd", "startDate": "2026-12-01"}},
		"unknown type":        {"pattern": map[string]any{"type": "hourly", "interval": 1}, "range": map[string]any{"type": "noEnd", "startDate": "2026-12-01"}},
		"zero interval":       {"pattern": map[string]any{"type": "daily", "interval": 0}, "range": map[string]any{"type": "noEnd", "startDate": "2026-12-01"}},
		"startDate elsewhere": {"pattern": map[string]any{"type": "daily", "interval": 1}, "range": map[string]any{"type": "noEnd", "startDate": "2026-12-05"}},
		"numbered without n":  {"pattern": map[string]any{"type": "daily", "interval": 1}, "range": map[string]any{"type": "numbered", "startDate": "2026-12-01"}},
		"end before start":    {"pattern": map[string]any{"type": "daily", "interval": 1}, "range": map[string]any{"type": "endDate", "startDate": "2026-12-01", "endDate": "2026-11-01"}},
	} {
		var out map[string]any
		e.do(t, "POST", "/v1.0/users/"+e.user.ID+"/events", e.token, map[string]any{"subject": name,
			"start":      map[string]any{"dateTime": "2026-12-01T13:00:00", "timeZone": "Tokyo Standard Time"},
			"end":        map[string]any{"dateTime": "2026-12-01T13:30:00", "timeZone": "Tokyo Standard Time"},
			"recurrence": rec}, 400, &out)
		if out["error"] == nil {
			t.Errorf("%s: %v", name, out)
		}
	}
}

// TestSeriesInViewAndDelta: /events holds the master; calendarView and its
// delta hold the instances with their own ids; editing one instance makes
// it an exception, deleting one removes it from the view (@removed), and a
// series edit changes the other instances but not the exception.
func TestSeriesInViewAndDelta(t *testing.T) {
	t.Parallel()
	e := start(t)
	master := e.series(t, "2026-12-01", map[string]any{"type": "daily", "interval": 1}, map[string]any{"type": "numbered", "numberOfOccurrences": 4})
	mid := master["id"].(string)
	base := "/v1.0/users/" + e.user.ID
	imm := []string{"Prefer", `IdType="ImmutableId"`}
	type page struct {
		Value     []map[string]any `json:"value"`
		DeltaLink string           `json:"@odata.deltaLink"`
	}
	var events page
	e.do(t, "GET", base+"/events", e.token, nil, 200, &events, imm...)
	if len(events.Value) != 1 || events.Value[0]["type"] != "seriesMaster" {
		t.Fatalf("/events: %v", events.Value)
	}
	window := url.Values{"startDateTime": {"2026-11-01T00:00:00Z"}, "endDateTime": {"2027-01-01T00:00:00Z"}}
	var view page
	e.do(t, "GET", base+"/calendarView?"+window.Encode(), e.token, nil, 200, &view, imm...)
	var delta page
	e.do(t, "GET", base+"/calendarView/delta?"+window.Encode(), e.token, nil, 200, &delta, imm...)
	for name, p := range map[string]page{"calendarView": view, "delta": delta} {
		ids := map[string]bool{}
		for _, v := range p.Value {
			if v["type"] != "occurrence" || v["seriesMasterId"] != mid || v["originalStart"] == nil || v["id"] == mid {
				t.Errorf("%s: %v", name, v)
			}
			ids[v["id"].(string)] = true
		}
		if len(ids) != 4 {
			t.Errorf("%s: %d distinct instances, want 4", name, len(ids))
		}
	}
	second, third := delta.Value[1]["id"].(string), delta.Value[2]["id"].(string)
	var exc map[string]any
	e.do(t, "PATCH", base+"/events/"+url.PathEscape(second), e.token, map[string]any{"subject": "moved"}, 200, &exc, imm...)
	if exc["type"] != "exception" || exc["id"] != second || exc["subject"] != "moved" {
		t.Fatalf("patched instance: %v", exc)
	}
	e.do(t, "DELETE", base+"/events/"+url.PathEscape(third), e.token, nil, 204, nil)
	e.do(t, "GET", base+"/events/"+url.PathEscape(third), e.token, nil, 404, nil)
	e.do(t, "PATCH", base+"/events/"+url.PathEscape(mid), e.token, map[string]any{"subject": "定例 (新)"}, 200, nil)

	link, _ := url.Parse(delta.DeltaLink)
	var next page
	e.do(t, "GET", base+"/calendarView/delta?"+link.RawQuery, e.token, nil, 200, &next, imm...)
	got := map[string]string{}
	for _, v := range next.Value {
		if _, removed := v["@removed"]; removed {
			got[v["id"].(string)] = "removed"
			continue
		}
		got[v["id"].(string)] = v["subject"].(string)
	}
	if got[third] != "removed" || got[second] != "moved" || len(got) != 4 {
		t.Errorf("next round: %v", got)
	}
	for id, subject := range got {
		if id != second && id != third && !strings.HasPrefix(subject, "定例 (新)") {
			t.Errorf("occurrence %s kept subject %q after the series edit", id, subject)
		}
	}
	// Deleting the master removes every instance.
	e.do(t, "DELETE", base+"/events/"+url.PathEscape(mid), e.token, nil, 204, nil)
	link, _ = url.Parse(next.DeltaLink)
	var last page
	e.do(t, "GET", base+"/calendarView/delta?"+link.RawQuery, e.token, nil, 200, &last, imm...)
	if len(last.Value) != 3 {
		t.Errorf("after deleting the series: %v", last.Value)
	}
}
