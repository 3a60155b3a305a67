// Package schedule is the host's side of a calendar entry, with no
// Microsoft SDK in it: the schedule entries 手配職人 pushes (validated, their
// zones mapped to Windows names, their rules to Graph's recurrence), the
// view of an event the host receives, and which of its fields changed. It
// is a leaf (cheap to build, fuzzed); package calendar talks to Outlook.
package schedule

import (
	"slices"
	"strings"
	"time"
)

// Event is an Outlook event as the host sees it.
type Event struct {
	ExternalID      *string    `json:"externalId,omitempty"`
	OutlookEventID  string     `json:"outlookEventId"`
	ICalUID         string     `json:"iCalUId,omitempty"`
	Subject         string     `json:"subject"`
	Body            string     `json:"body,omitempty"`
	Location        string     `json:"location,omitempty"`
	Start           string     `json:"start"`
	End             string     `json:"end"`
	TimeZone        string     `json:"timeZone"`
	IsAllDay        bool       `json:"isAllDay"`
	ShowAs          string     `json:"showAs,omitempty"`
	Sensitivity     string     `json:"sensitivity,omitempty"`
	Categories      []string   `json:"categories"`
	ReminderMinutes *int       `json:"reminderMinutesBeforeStart,omitempty"`
	Version         string     `json:"version,omitempty"`
	LastModifiedAt  *time.Time `json:"lastModifiedAt,omitempty"`
	// Type is SINGLE_INSTANCE, SERIES_MASTER (a recurring entry the host
	// pushed), OCCURRENCE or EXCEPTION (an instance of a series: SeriesID
	// is its series' Outlook id). RecurrenceRule is the series' RRULE, on
	// the master and on each instance.
	Type           string `json:"type,omitempty"`
	SeriesID       string `json:"seriesId,omitempty"`
	RecurrenceRule string `json:"recurrenceRule,omitempty"`
}

// Event types as the host sees them.
const (
	SingleInstance = "SINGLE_INSTANCE"
	SeriesMaster   = "SERIES_MASTER"
	Occurrence     = "OCCURRENCE"
	Exception      = "EXCEPTION"
)

// IsInstance says whether v is one instance of a recurring series.
func (v Event) IsInstance() bool { return v.Type == Occurrence || v.Type == Exception }

// EventType is v's type, SINGLE_INSTANCE for views stored before series
// were known.
func (v Event) EventType() string {
	if v.Type == "" {
		return SingleInstance
	}
	return v.Type
}

// DateLayout is how all-day dates are written.
const DateLayout = "2006-01-02"

const dateLayout = DateLayout

// EnumName turns Graph's camelCase enum value into the GraphQL enum name
// (workingElsewhere -> WORKING_ELSEWHERE).
func EnumName(v string) string { return enumOut(v) }

func enumOut(v string) string {
	var b strings.Builder
	for i, r := range v {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// enumIn is the reverse of enumOut.
func enumIn(v string) string {
	parts := strings.Split(strings.ToLower(v), "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// ChangedFields lists the host's fields that differ between two views of
// an event, in a stable order. The reminder is not among them: it is the
// user's own once the event exists (the host's value sets it at creation),
// so a craftsman switching it off is neither a change reported to the host
// nor something a push undoes.
func ChangedFields(before, after Event) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("subject", before.Subject != after.Subject)
	add("start", before.Start != after.Start)
	add("end", before.End != after.End)
	add("timeZone", before.TimeZone != after.TimeZone)
	add("location", before.Location != after.Location)
	add("isAllDay", before.IsAllDay != after.IsAllDay)
	add("showAs", before.ShowAs != after.ShowAs)
	add("body", before.Body != after.Body)
	add("sensitivity", before.Sensitivity != after.Sensitivity)
	add("categories", !slices.Equal(before.Categories, after.Categories))
	add("recurrenceRule", before.RecurrenceRule != after.RecurrenceRule)
	return out
}

// SameAsSeries says whether an occurrence shows what its series master
// (as calsync last wrote or knew it) says: the same fields, and the same
// time of day and length in the same zone. An occurrence of a series the
// host pushed that does is no news to the host.
func SameAsSeries(master, occ Event) bool {
	if master.Subject != occ.Subject || master.Body != occ.Body || master.Location != occ.Location ||
		master.TimeZone != occ.TimeZone || master.IsAllDay != occ.IsAllDay || master.ShowAs != occ.ShowAs ||
		master.Sensitivity != occ.Sensitivity || !slices.Equal(master.Categories, occ.Categories) {
		return false
	}
	if master.IsAllDay {
		ms, e1 := time.Parse(dateLayout, master.Start)
		me, e2 := time.Parse(dateLayout, master.End)
		ost, e3 := time.Parse(dateLayout, occ.Start)
		oe, e4 := time.Parse(dateLayout, occ.End)
		return e1 == nil && e2 == nil && e3 == nil && e4 == nil && me.Sub(ms) == oe.Sub(ost)
	}
	ms, e1 := time.Parse(time.RFC3339, master.Start)
	me, e2 := time.Parse(time.RFC3339, master.End)
	ost, e3 := time.Parse(time.RFC3339, occ.Start)
	oe, e4 := time.Parse(time.RFC3339, occ.End)
	if e1 != nil || e2 != nil || e3 != nil || e4 != nil {
		return false
	}
	mh, mm, msec := ms.Clock()
	oh, om, osec := ost.Clock()
	return mh == oh && mm == om && msec == osec && me.Sub(ms) == oe.Sub(ost)
}

func equalPtr(a, b *int) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Span is the time the event occupies, [start, end) as instants: an
// all-day event covers its dates from midnight in its own zone. ok is
// false for a series master (its instances occupy the time, not the
// series) and for a view whose times do not read.
func (v Event) Span() (start, end time.Time, ok bool) {
	if v.Type == SeriesMaster {
		return time.Time{}, time.Time{}, false
	}
	if v.IsAllDay {
		loc, known := zoneOf(v.TimeZone)
		if !known {
			loc = time.UTC
		}
		s, err1 := time.ParseInLocation(dateLayout, v.Start, loc)
		e, err2 := time.ParseInLocation(dateLayout, v.End, loc)
		if err1 != nil || err2 != nil || e.Before(s) {
			return time.Time{}, time.Time{}, false
		}
		return s, e, true
	}
	s, err1 := time.Parse(time.RFC3339, v.Start)
	e, err2 := time.Parse(time.RFC3339, v.End)
	if err1 != nil || err2 != nil || e.Before(s) {
		return time.Time{}, time.Time{}, false
	}
	return s, e, true
}

// BusyAs is how the event shows in free/busy: its showAs, BUSY when
// Outlook gave none (Graph's default).
func (v Event) BusyAs() string {
	if v.ShowAs == "" {
		return "BUSY"
	}
	return v.ShowAs
}
