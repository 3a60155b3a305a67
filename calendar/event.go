package calendar

import (
	"slices"
	"strings"
	"time"

	"github.com/tehaishokunin/calsync/internal/schedule"
	"github.com/tehaishokunin/calsync/outlook"
)

// FromOutlook converts an event read from Graph (UTC times, original zone
// name) into the host's view in the event's own zone.
func FromOutlook(e outlook.Event, externalID *string) Event {
	loc, ok := schedule.IANAZone(e.TimeZone)
	zone := "UTC"
	if ok {
		zone = loc.String()
	} else {
		loc = time.UTC
	}
	out := Event{
		ExternalID: externalID, OutlookEventID: e.ID, ICalUID: e.ICalUID, Subject: e.Subject, Body: strings.TrimSpace(e.Body),
		Location: e.Location, TimeZone: zone, IsAllDay: e.IsAllDay, ShowAs: schedule.EnumName(e.ShowAs), Sensitivity: schedule.EnumName(e.Sensitivity),
		Categories: slices.Clone(e.Categories), ReminderMinutes: e.ReminderMinutes, Version: e.ChangeKey,
		Type: schedule.EnumName(e.Type), SeriesID: e.SeriesMasterID,
	}
	if e.Type == "" {
		out.Type = schedule.SingleInstance
	}
	if e.Recurrence != nil {
		out.RecurrenceRule = e.Recurrence.RRULE(loc)
	}
	if out.Categories == nil {
		out.Categories = []string{}
	}
	if !e.LastModified.IsZero() {
		t := e.LastModified
		out.LastModifiedAt = &t
	}
	if e.IsAllDay {
		out.Start, out.End = e.Start.In(loc).Format(schedule.DateLayout), e.End.In(loc).Format(schedule.DateLayout)
	} else {
		out.Start, out.End = e.Start.In(loc).Format(time.RFC3339), e.End.In(loc).Format(time.RFC3339)
	}
	return out
}
