package schedule

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzValidate: no input panics validation, and what it accepts keeps the
// rules (an end after the start, bounded texts, a zone Outlook stores with
// the same clock).
func FuzzValidate(f *testing.F) {
	f.Add("job-1", "現場A 設備点検", "2026-12-01T09:00:00+09:00", "2026-12-01T12:00:00+09:00", "Asia/Tokyo", false, "BUSY")
	f.Add("job-2", "終日", "2026-12-24", "2026-12-26", "America/New_York", true, "FREE")
	f.Add("", "", "", "", "", false, "")
	f.Add("x", "s", "2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00", "America/New_York", false, "WORKING_ELSEWHERE")
	f.Fuzz(func(t *testing.T, id, subject, start, end, zone string, allDay bool, showAs string) {
		in := Input{ExternalID: id, Subject: subject, Start: start, End: end, TimeZone: &zone, IsAllDay: &allDay, ShowAs: &showAs}
		e, err := Validate(in, "input.")
		if err != nil {
			return
		}
		if !e.End.After(e.Start) || e.ExternalID == "" || strings.TrimSpace(e.Subject) == "" || utf8.RuneCountInString(e.Subject) > MaxSubject {
			t.Fatalf("accepted %+v", e)
		}
		if !e.IsAllDay && e.End.Sub(e.Start) > 60*24*time.Hour {
			t.Fatalf("accepted a %v entry", e.End.Sub(e.Start))
		}
		if !KeepsClock(e.Zone.String(), e.Start, e.End) {
			t.Fatalf("accepted zone %q, which Outlook would shift", e.Zone)
		}
		_ = e.View()
	})
}
