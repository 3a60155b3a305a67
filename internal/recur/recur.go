// Package recur translates between the host's recurrence rules (RFC 5545
// RRULE strings) and Microsoft Graph's patternedRecurrence, both ways. It
// holds no SDK types, so it stays cheap to build and to fuzz; outlook maps
// Rule to the SDK's models.
//
// Graph's shape is documented in api-reference/v1.0/resources/
// patternedrecurrence.md, recurrencepattern.md, recurrencerange.md and
// concepts/outlook-schedule-recurring-events.md. RRULEs are parsed with
// github.com/teambition/rrule-go.
package recur

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/teambition/rrule-go"
)

// MaxLen bounds an RRULE string before it is parsed.
const MaxLen = 512

// MaxCount is the most occurrences a numbered series may have (Outlook
// offers up to 999).
const MaxCount = 999

// Pattern types and range types, as Graph spells them.
const (
	Daily           = "daily"
	Weekly          = "weekly"
	AbsoluteMonthly = "absoluteMonthly"
	RelativeMonthly = "relativeMonthly"
	AbsoluteYearly  = "absoluteYearly"
	RelativeYearly  = "relativeYearly"

	EndDate  = "endDate"
	NoEnd    = "noEnd"
	Numbered = "numbered"
)

// Rule is a patternedRecurrence.
type Rule struct {
	Type           string
	Interval       int
	DaysOfWeek     []time.Weekday
	FirstDayOfWeek time.Weekday
	Index          string // first, second, third, fourth, last (relative types)
	DayOfMonth     int
	Month          int

	RangeType string
	StartDate string // YYYY-MM-DD, the date of the event's start
	EndDate   string // YYYY-MM-DD, for EndDate
	Count     int    // for Numbered
}

// Unsupported says which part of an RRULE Graph cannot express (or which
// part is malformed).
type Unsupported struct {
	Part   string
	Reason string
}

func (u *Unsupported) Error() string { return u.Part + ": " + u.Reason }

var indexes = []string{"", "first", "second", "third", "fourth"}

func unsupported(part, reason string, args ...any) *Unsupported {
	return &Unsupported{Part: part, Reason: fmt.Sprintf(reason, args...)}
}

// Parse maps an RRULE (with or without the "RRULE:" prefix, no DTSTART) for
// an event starting at start (in the event's zone) to Graph's shape. start
// must itself be an occurrence of the rule: RFC 5545 counts DTSTART as the
// first instance while Graph starts at the first date that fits the
// pattern, so a start off the pattern would not mean the same series.
func Parse(s string, start time.Time) (Rule, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLen {
		return Rule{}, unsupported("RRULE", "longer than %d characters", MaxLen)
	}
	if strings.ContainsAny(s, "\r\n") {
		return Rule{}, unsupported("RRULE", "only one RRULE line is accepted (no DTSTART, RDATE or EXDATE)")
	}
	body := strings.TrimPrefix(strings.TrimPrefix(s, "RRULE:"), "rrule:")
	for _, kv := range strings.Split(body, ";") {
		k, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(strings.TrimSpace(k), "DTSTART") {
			return Rule{}, unsupported("DTSTART", "the start comes from the entry's start, not from the rule")
		}
	}
	opt, err := rrule.StrToROptionInLocation(strings.ToUpper(body), start.Location())
	if err != nil {
		return Rule{}, unsupported("RRULE", "%v", err)
	}
	r := Rule{Interval: max(opt.Interval, 1), FirstDayOfWeek: goWeekday(opt.Wkst), StartDate: start.Format(time.DateOnly)}
	if opt.Interval < 0 || opt.Interval > 99 {
		return Rule{}, unsupported("INTERVAL", "must be between 1 and 99")
	}
	for part, set := range map[string]bool{
		"BYHOUR": len(opt.Byhour) > 0, "BYMINUTE": len(opt.Byminute) > 0, "BYSECOND": len(opt.Bysecond) > 0,
		"BYYEARDAY": len(opt.Byyearday) > 0, "BYWEEKNO": len(opt.Byweekno) > 0, "BYEASTER": len(opt.Byeaster) > 0,
	} {
		if set {
			return Rule{}, unsupported(part, "Outlook recurrences cannot express it")
		}
	}
	if len(opt.Bysetpos) > 1 {
		return Rule{}, unsupported("BYSETPOS", "only one position is supported")
	}
	if len(opt.Bymonthday) > 1 {
		return Rule{}, unsupported("BYMONTHDAY", "only one day of the month is supported")
	}
	if len(opt.Bymonth) > 1 {
		return Rule{}, unsupported("BYMONTH", "only one month is supported")
	}
	if len(opt.Bymonthday) == 1 && (opt.Bymonthday[0] < 1 || opt.Bymonthday[0] > 31) {
		return Rule{}, unsupported("BYMONTHDAY", "must be between 1 and 31 (counting from the end is not supported)")
	}
	days, ordinal, err := weekdays(opt.Byweekday)
	if err != nil {
		return Rule{}, err
	}
	switch opt.Freq {
	case rrule.DAILY:
		if len(opt.Bymonthday) > 0 || len(opt.Bymonth) > 0 || len(opt.Bysetpos) > 0 {
			return Rule{}, unsupported("FREQ=DAILY", "cannot be combined with BYMONTHDAY, BYMONTH or BYSETPOS")
		}
		r.Type = Daily
		if len(days) > 0 {
			// "Every weekday": Graph says it as weekly on those days.
			if ordinal != 0 || r.Interval != 1 {
				return Rule{}, unsupported("BYDAY", "with FREQ=DAILY only plain days and INTERVAL=1 are supported")
			}
			r.Type, r.DaysOfWeek = Weekly, days
		}
	case rrule.WEEKLY:
		if len(opt.Bymonthday) > 0 || len(opt.Bymonth) > 0 || len(opt.Bysetpos) > 0 {
			return Rule{}, unsupported("FREQ=WEEKLY", "cannot be combined with BYMONTHDAY, BYMONTH or BYSETPOS")
		}
		if ordinal != 0 {
			return Rule{}, unsupported("BYDAY", "a position (such as 2TU) needs FREQ=MONTHLY or FREQ=YEARLY")
		}
		r.Type, r.DaysOfWeek = Weekly, days
		if len(days) == 0 {
			r.DaysOfWeek = []time.Weekday{start.Weekday()}
		}
	case rrule.MONTHLY, rrule.YEARLY:
		yearly := opt.Freq == rrule.YEARLY
		if !yearly && len(opt.Bymonth) > 0 {
			return Rule{}, unsupported("BYMONTH", "needs FREQ=YEARLY")
		}
		if yearly {
			r.Month = int(start.Month())
			if len(opt.Bymonth) == 1 {
				r.Month = opt.Bymonth[0]
			}
		}
		switch {
		case len(days) > 0 && len(opt.Bymonthday) > 0:
			return Rule{}, unsupported("BYMONTHDAY", "cannot be combined with BYDAY")
		case len(days) > 0:
			pos := ordinal
			if len(opt.Bysetpos) == 1 {
				if ordinal != 0 {
					return Rule{}, unsupported("BYSETPOS", "cannot be combined with a BYDAY position")
				}
				pos = opt.Bysetpos[0]
			}
			switch {
			case pos == -1:
				r.Index = "last"
			case pos >= 1 && pos <= 4:
				r.Index = indexes[pos]
			case pos == 0:
				return Rule{}, unsupported("BYDAY", "needs a position (such as 2TU, -1FR, or BYSETPOS) with FREQ=MONTHLY or FREQ=YEARLY")
			default:
				return Rule{}, unsupported("BYDAY", "positions 1 to 4 and -1 (last) are supported, not %d", pos)
			}
			r.Type, r.DaysOfWeek = RelativeMonthly, days
			if yearly {
				r.Type = RelativeYearly
			}
		default:
			if len(opt.Bysetpos) > 0 {
				return Rule{}, unsupported("BYSETPOS", "needs BYDAY")
			}
			r.DayOfMonth = start.Day()
			if len(opt.Bymonthday) == 1 {
				r.DayOfMonth = opt.Bymonthday[0]
			}
			r.Type = AbsoluteMonthly
			if yearly {
				r.Type = AbsoluteYearly
			}
		}
	default:
		return Rule{}, unsupported("FREQ="+opt.Freq.String(), "only DAILY, WEEKLY, MONTHLY and YEARLY are supported")
	}

	switch {
	case opt.Count != 0 && !opt.Until.IsZero():
		return Rule{}, unsupported("COUNT", "cannot be combined with UNTIL")
	case opt.Count < 0 || opt.Count > MaxCount:
		return Rule{}, unsupported("COUNT", "must be between 1 and %d", MaxCount)
	case opt.Count > 0:
		r.RangeType, r.Count = Numbered, opt.Count
	case !opt.Until.IsZero():
		end := opt.Until.In(start.Location())
		if end.Before(start) {
			return Rule{}, unsupported("UNTIL", "is before the entry's start")
		}
		r.RangeType, r.EndDate = EndDate, end.Format(time.DateOnly)
	default:
		r.RangeType = NoEnd
	}

	// The entry's start must be the rule's first instance (see above).
	opt.Dtstart = start
	opt.Count, opt.Until = 1, time.Time{}
	if rr, err := rrule.NewRRule(*opt); err != nil || len(rr.All()) != 1 || !rr.All()[0].Equal(start) {
		return Rule{}, unsupported("RRULE", "the entry's start (%s) is not one of the rule's dates; start the entry on its first occurrence", start.Format("2006-01-02 Mon"))
	}
	return r, nil
}

func weekdays(in []rrule.Weekday) (days []time.Weekday, ordinal int, err error) {
	for i, w := range in {
		if i > 0 && w.N() != ordinal {
			return nil, 0, unsupported("BYDAY", "every day must have the same position (Outlook picks the first day that fits)")
		}
		ordinal = w.N()
		d := goWeekday(w)
		if !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	return days, ordinal, nil
}

// goWeekday converts rrule-go's weekday (0 = Monday) to time.Weekday.
func goWeekday(w rrule.Weekday) time.Weekday { return time.Weekday((w.Day() + 1) % 7) }

var rruleDays = []string{"SU", "MO", "TU", "WE", "TH", "FR", "SA"}

// RRULE writes r as an RFC 5545 RRULE (without the "RRULE:" prefix); an
// end date becomes UNTIL at the end of that day in loc (the event's zone).
func (r Rule) RRULE(loc *time.Location) string {
	var parts []string
	add := func(k, v string) { parts = append(parts, k+"="+v) }
	days := func(prefix string) string {
		out := make([]string, len(r.DaysOfWeek))
		for i, d := range r.DaysOfWeek {
			out[i] = prefix + rruleDays[d]
		}
		return strings.Join(out, ",")
	}
	pos := "-1"
	if i := slices.Index(indexes, r.Index); i > 0 {
		pos = strconv.Itoa(i)
	}
	switch r.Type {
	case Daily:
		add("FREQ", "DAILY")
	case Weekly:
		add("FREQ", "WEEKLY")
	case AbsoluteMonthly, RelativeMonthly:
		add("FREQ", "MONTHLY")
	case AbsoluteYearly, RelativeYearly:
		add("FREQ", "YEARLY")
	default:
		return ""
	}
	if r.Interval > 1 {
		add("INTERVAL", strconv.Itoa(r.Interval))
	}
	switch r.Type {
	case Weekly:
		add("BYDAY", days(""))
		if r.FirstDayOfWeek != time.Monday && r.Interval > 1 {
			add("WKST", rruleDays[r.FirstDayOfWeek])
		}
	case AbsoluteMonthly:
		add("BYMONTHDAY", strconv.Itoa(r.DayOfMonth))
	case RelativeMonthly:
		if len(r.DaysOfWeek) == 1 {
			add("BYDAY", days(pos))
		} else {
			add("BYDAY", days(""))
			add("BYSETPOS", pos)
		}
	case AbsoluteYearly:
		add("BYMONTH", strconv.Itoa(r.Month))
		add("BYMONTHDAY", strconv.Itoa(r.DayOfMonth))
	case RelativeYearly:
		add("BYMONTH", strconv.Itoa(r.Month))
		if len(r.DaysOfWeek) == 1 {
			add("BYDAY", days(pos))
		} else {
			add("BYDAY", days(""))
			add("BYSETPOS", pos)
		}
	}
	switch r.RangeType {
	case Numbered:
		add("COUNT", strconv.Itoa(r.Count))
	case EndDate:
		if d, err := time.ParseInLocation(time.DateOnly, r.EndDate, loc); err == nil {
			add("UNTIL", d.AddDate(0, 0, 1).Add(-time.Second).UTC().Format("20060102T150405Z"))
		}
	}
	return strings.Join(parts, ";")
}
