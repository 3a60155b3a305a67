package recur

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var tokyo, _ = time.LoadLocation("Asia/Tokyo")

// 2026-12-01 is a Tuesday.
var tue = time.Date(2026, 12, 1, 9, 0, 0, 0, tokyo)

func TestParseMapsToGraph(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		rule  string
		start time.Time
		want  Rule
		back  string
	}{
		{"FREQ=DAILY", tue, Rule{Type: Daily, Interval: 1, FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=DAILY"},
		{"RRULE:FREQ=DAILY;INTERVAL=3;COUNT=10", tue, Rule{Type: Daily, Interval: 3, FirstDayOfWeek: time.Monday, RangeType: Numbered, Count: 10, StartDate: "2026-12-01"}, "FREQ=DAILY;INTERVAL=3;COUNT=10"},
		{"FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR", tue, Rule{Type: Weekly, Interval: 1, DaysOfWeek: []time.Weekday{1, 2, 3, 4, 5}, FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"},
		{"FREQ=WEEKLY", tue, Rule{Type: Weekly, Interval: 1, DaysOfWeek: []time.Weekday{time.Tuesday}, FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=WEEKLY;BYDAY=TU"},
		{"FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU;UNTIL=20270331T000000Z", tue, Rule{Type: Weekly, Interval: 2, DaysOfWeek: []time.Weekday{2, 4}, FirstDayOfWeek: time.Sunday, RangeType: EndDate, EndDate: "2027-03-31", StartDate: "2026-12-01"}, "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU;UNTIL=20270331T145959Z"},
		{"FREQ=MONTHLY", tue, Rule{Type: AbsoluteMonthly, Interval: 1, DayOfMonth: 1, FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=MONTHLY;BYMONTHDAY=1"},
		{"FREQ=MONTHLY;BYDAY=1TU", tue, Rule{Type: RelativeMonthly, Interval: 1, DaysOfWeek: []time.Weekday{2}, Index: "first", FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=MONTHLY;BYDAY=1TU"},
		{"FREQ=MONTHLY;BYDAY=-1TU;COUNT=3", time.Date(2026, 12, 29, 9, 0, 0, 0, tokyo), Rule{Type: RelativeMonthly, Interval: 1, DaysOfWeek: []time.Weekday{2}, Index: "last", FirstDayOfWeek: time.Monday, RangeType: Numbered, Count: 3, StartDate: "2026-12-29"}, "FREQ=MONTHLY;BYDAY=-1TU;COUNT=3"},
		{"FREQ=MONTHLY;BYDAY=TU,WE;BYSETPOS=1", tue, Rule{Type: RelativeMonthly, Interval: 1, DaysOfWeek: []time.Weekday{2, 3}, Index: "first", FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=MONTHLY;BYDAY=TU,WE;BYSETPOS=1"},
		{"FREQ=YEARLY", tue, Rule{Type: AbsoluteYearly, Interval: 1, Month: 12, DayOfMonth: 1, FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=1"},
		{"FREQ=YEARLY;BYMONTH=12;BYDAY=1TU", tue, Rule{Type: RelativeYearly, Interval: 1, Month: 12, DaysOfWeek: []time.Weekday{2}, Index: "first", FirstDayOfWeek: time.Monday, RangeType: NoEnd, StartDate: "2026-12-01"}, "FREQ=YEARLY;BYMONTH=12;BYDAY=1TU"},
	} {
		got, err := Parse(c.rule, c.start)
		if err != nil {
			t.Errorf("%s: %v", c.rule, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.rule, got, c.want)
		}
		back := got.RRULE(tokyo)
		if back != c.back {
			t.Errorf("%s written back as %s, want %s", c.rule, back, c.back)
		}
		again, err := Parse(back, c.start)
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%s does not round-trip: %+v, %v", back, again, err)
		}
	}
}

func TestParseNamesWhatGraphCannotSay(t *testing.T) {
	t.Parallel()
	for rule, part := range map[string]string{
		"FREQ=HOURLY":                         "FREQ=HOURLY",
		"FREQ=MINUTELY":                       "FREQ=MINUTELY",
		"FREQ=DAILY;BYHOUR=9,17":              "BYHOUR",
		"FREQ=MONTHLY;BYDAY=TU;BYSETPOS=1,3":  "BYSETPOS",
		"FREQ=MONTHLY;BYMONTHDAY=1,15":        "BYMONTHDAY",
		"FREQ=MONTHLY;BYMONTHDAY=-1":          "BYMONTHDAY",
		"FREQ=MONTHLY;BYDAY=TU":               "BYDAY",
		"FREQ=MONTHLY;BYDAY=5TU":              "BYDAY",
		"FREQ=MONTHLY;BYDAY=1TU,2WE":          "BYDAY",
		"FREQ=WEEKLY;BYDAY=2TU":               "BYDAY",
		"FREQ=YEARLY;BYMONTH=1,7":             "BYMONTH",
		"FREQ=YEARLY;BYWEEKNO=20":             "BYWEEKNO",
		"FREQ=YEARLY;BYYEARDAY=100":           "BYYEARDAY",
		"FREQ=DAILY;COUNT=2;UNTIL=20271231":   "COUNT",
		"FREQ=DAILY;COUNT=5000":               "COUNT",
		"FREQ=DAILY;INTERVAL=100":             "INTERVAL",
		"FREQ=WEEKLY;BYDAY=MO":                "RRULE", // the start is a Tuesday
		"FREQ=DAILY;UNTIL=20261101":           "UNTIL",
		"DTSTART=20261201T000000Z;FREQ=DAILY": "DTSTART",
		"FREQ=DAILY\nRDATE:20261205":          "RRULE",
		"FREQ=SOMETIMES":                      "RRULE",
		"":                                    "RRULE",
	} {
		_, err := Parse(rule, tue)
		var u *Unsupported
		if !errors.As(err, &u) || u.Part != part {
			t.Errorf("%q: %v, want part %s", rule, err, part)
		}
	}
	long := "FREQ=DAILY;" + string(make([]byte, MaxLen))
	if _, err := Parse(long, tue); err == nil {
		t.Error("an over-long rule was accepted")
	}
}

// FuzzParse: no input panics, and whatever is accepted writes back to a
// rule that parses to the same recurrence.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"FREQ=DAILY", "FREQ=WEEKLY;BYDAY=TU,TH;INTERVAL=2", "FREQ=MONTHLY;BYDAY=-1TU", "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=1;COUNT=3", "FREQ=MONTHLY;BYDAY=TU,WE;BYSETPOS=1;UNTIL=20271231T000000Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s, tue)
		if err != nil {
			return
		}
		again, err := Parse(r.RRULE(tokyo), tue)
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.RRULE(tokyo), again, err)
		}
	})
}
