package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/internal/hostid"
	"github.com/tehaishokunin/calsync/internal/htmltext"
	"github.com/tehaishokunin/calsync/internal/recur"
)

// Limits on pushed entries.
const (
	MaxSubject    = 255
	MaxLocation   = 255
	MaxBody       = 32 << 10
	MaxCategories = 25
	MaxExternalID = hostid.MaxLen
	MaxReminder   = 4 * 7 * 24 * 60 // 4 weeks, in minutes
	DefaultZone   = "Asia/Tokyo"
)

// Input is a schedule entry as the host sends it.
type Input struct {
	ExternalID      string
	Subject         string
	Body            *string
	Location        *string
	Start, End      string
	TimeZone        *string
	IsAllDay        *bool
	ShowAs          *string // GraphQL enum names: FREE, BUSY, ...
	Categories      []string
	ReminderMinutes *int
	Sensitivity     *string
	BaseVersion     *string
	Force           bool
	// RecurrenceRule makes the entry a recurring series: an RFC 5545
	// RRULE (FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10), its first instance at
	// Start.
	RecurrenceRule *string
}

// Entry is a validated Input.
type Entry struct {
	ExternalID      string
	Subject         string
	Body            string
	Location        string
	Start, End      time.Time // in Zone
	Zone            *time.Location
	IsAllDay        bool
	ShowAs          string // Graph value: busy, free, ...
	Categories      []string
	ReminderMinutes *int
	Sensitivity     string
	BaseVersion     string
	Force           bool
	Recurrence      *recur.Rule // nil for a single event
}

func bad(field, ja, en string) *apperr.Error {
	return apperr.New(apperr.InvalidInput, ja, en).WithField(field)
}

// checkText bounds a text field; allowed lists the control characters it
// may hold (a body keeps its tabs and line breaks; one-line fields none).
func checkText(field, s string, max int, label, allowed string) error {
	if !utf8.ValidString(s) {
		return bad(field, label+" に不正な文字が含まれています。", field+" is not valid UTF-8.")
	}
	if hostid.HasControl(s, allowed) {
		if allowed != "" {
			return bad(field, label+" に制御文字 (タブと改行以外) は使えません。", field+" may not contain control characters other than tab and line breaks.")
		}
		return bad(field, label+" に制御文字は使えません。", field+" may not contain control characters.")
	}
	if utf8.RuneCountInString(s) > max {
		return bad(field, fmt.Sprintf("%s は %d 文字以内で入力してください。", label, max), fmt.Sprintf("%s must be at most %d characters.", field, max))
	}
	return nil
}

var showAsValues = []string{"FREE", "TENTATIVE", "BUSY", "OOF", "WORKING_ELSEWHERE", "UNKNOWN"}
var sensitivityValues = []string{"NORMAL", "PERSONAL", "PRIVATE", "CONFIDENTIAL"}

// Validate checks an Input and resolves its times; every error names the
// field at fault (prefixed with prefix, e.g. "input." or "inputs[3].").
func Validate(in Input, prefix string) (Entry, error) {
	f := func(name string) string { return prefix + name }
	e := Entry{ExternalID: strings.TrimSpace(in.ExternalID), Subject: strings.TrimSpace(in.Subject), Force: in.Force,
		ShowAs: "busy", Sensitivity: "normal", ReminderMinutes: in.ReminderMinutes}
	if e.ExternalID == "" {
		return Entry{}, bad(f("externalId"), "externalId を指定してください。", "externalId is required.")
	}
	if err := hostid.Check(f("externalId"), e.ExternalID); err != nil {
		return Entry{}, err
	}
	if e.Subject == "" {
		return Entry{}, bad(f("subject"), "件名を入力してください。", "subject is required.")
	}
	if err := checkText(f("subject"), e.Subject, MaxSubject, "件名", ""); err != nil {
		return Entry{}, err
	}
	if in.Body != nil {
		// One spelling of a line break and of a space, as Outlook gives
		// them back, so an unchanged note never reads as changed.
		e.Body = strings.ReplaceAll(htmltext.NormalizeNewlines(*in.Body), "\u00a0", " ")
		if err := checkText(f("body"), e.Body, MaxBody, "本文", "\t\r\n"); err != nil {
			return Entry{}, err
		}
	}
	if in.Location != nil {
		e.Location = strings.TrimSpace(*in.Location)
		if err := checkText(f("location"), e.Location, MaxLocation, "場所", ""); err != nil {
			return Entry{}, err
		}
	}
	zone := DefaultZone
	if in.TimeZone != nil && strings.TrimSpace(*in.TimeZone) != "" {
		zone = strings.TrimSpace(*in.TimeZone)
	}
	if len(zone) > 64 || hostid.HasControl(zone, "") {
		return Entry{}, bad(f("timeZone"), "タイムゾーンは IANA 名（例: Asia/Tokyo）で指定してください。", "timeZone must be an IANA name such as Asia/Tokyo.")
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return Entry{}, bad(f("timeZone"), "タイムゾーン "+zone+" は不明です（IANA 名、例: Asia/Tokyo）。", "Unknown time zone "+zone+" (use an IANA name such as Asia/Tokyo).")
	}
	if _, ok := WindowsZone(zone); !ok {
		return Entry{}, bad(f("timeZone"), "タイムゾーン "+zone+" には Outlook (Windows) で対応するものがありません。近い地域のタイムゾーンか UTC を指定してください。",
			"Time zone "+zone+" has no Windows equivalent, so Outlook cannot store it; use a nearby zone or UTC.")
	}
	e.Zone = loc
	if in.IsAllDay != nil {
		e.IsAllDay = *in.IsAllDay
	}
	if e.IsAllDay {
		if e.Start, err = time.ParseInLocation(dateLayout, in.Start, loc); err != nil {
			return Entry{}, bad(f("start"), "終日予定の start は日付（YYYY-MM-DD）で指定してください。", "For an all-day entry, start must be a date (YYYY-MM-DD).")
		}
		if e.End, err = time.ParseInLocation(dateLayout, in.End, loc); err != nil {
			return Entry{}, bad(f("end"), "終日予定の end は日付（YYYY-MM-DD、最終日の翌日）で指定してください。", "For an all-day entry, end must be a date (YYYY-MM-DD, the day after the last day).")
		}
		if !e.End.After(e.Start) {
			return Entry{}, bad(f("end"), "終日予定の end は start より後の日付（最終日の翌日）にしてください。", "For an all-day entry, end must be after start (the day after the last day).")
		}
	} else {
		start, err := time.Parse(time.RFC3339, in.Start)
		if err != nil {
			return Entry{}, bad(f("start"), "start は時差付きの RFC 3339 形式（例: 2026-12-01T09:00:00+09:00）で指定してください。", "start must be RFC 3339 with an offset, e.g. 2026-12-01T09:00:00+09:00.")
		}
		end, err := time.Parse(time.RFC3339, in.End)
		if err != nil {
			return Entry{}, bad(f("end"), "end は時差付きの RFC 3339 形式で指定してください。", "end must be RFC 3339 with an offset.")
		}
		if !end.After(start) {
			return Entry{}, bad(f("end"), "end は start より後にしてください。", "end must be after start.")
		}
		if end.Sub(start) > 60*24*time.Hour {
			return Entry{}, bad(f("end"), "予定の長さは 60 日以内にしてください。", "An entry may last at most 60 days.")
		}
		e.Start, e.End = start.In(loc), end.In(loc)
	}
	if !KeepsClock(zone, e.Start, e.End) {
		w, _ := WindowsZone(zone)
		return Entry{}, bad(f("timeZone"), "タイムゾーン "+zone+" の時差がこの日時で Outlook の "+w+" と異なるため、時刻がずれます。近い地域のタイムゾーンか UTC を指定してください。",
			"Time zone "+zone+" differs from Outlook's "+w+" at this date, so the time would shift; use a nearby zone or UTC.")
	}
	if in.ShowAs != nil {
		if !slices.Contains(showAsValues, *in.ShowAs) {
			return Entry{}, bad(f("showAs"), "showAs が正しくありません。", "Unknown showAs.")
		}
		e.ShowAs = enumIn(*in.ShowAs)
	}
	if in.Sensitivity != nil {
		if !slices.Contains(sensitivityValues, *in.Sensitivity) {
			return Entry{}, bad(f("sensitivity"), "sensitivity が正しくありません。", "Unknown sensitivity.")
		}
		e.Sensitivity = enumIn(*in.Sensitivity)
	}
	if len(in.Categories) > MaxCategories {
		return Entry{}, bad(f("categories"), fmt.Sprintf("分類は %d 個までです。", MaxCategories), fmt.Sprintf("At most %d categories.", MaxCategories))
	}
	for _, c := range in.Categories {
		c = strings.TrimSpace(c)
		if c == "" {
			return Entry{}, bad(f("categories"), "空の分類は指定できません。", "A category may not be empty.")
		}
		if err := checkText(f("categories"), c, 255, "分類", ""); err != nil {
			return Entry{}, err
		}
		e.Categories = append(e.Categories, c)
	}
	if e.Categories == nil {
		e.Categories = []string{}
	}
	if r := in.ReminderMinutes; r != nil && (*r < 0 || *r > MaxReminder) {
		return Entry{}, bad(f("reminderMinutesBeforeStart"), fmt.Sprintf("通知は 0〜%d 分前で指定してください。", MaxReminder), fmt.Sprintf("reminderMinutesBeforeStart must be between 0 and %d.", MaxReminder))
	}
	if in.BaseVersion != nil {
		e.BaseVersion = *in.BaseVersion
	}
	if in.RecurrenceRule != nil && strings.TrimSpace(*in.RecurrenceRule) != "" {
		r, err := recur.Parse(*in.RecurrenceRule, e.Start)
		if err != nil {
			var u *recur.Unsupported
			if !errors.As(err, &u) {
				u = &recur.Unsupported{Part: "RRULE", Reason: err.Error()}
			}
			return Entry{}, apperr.New(apperr.InvalidInput,
				"繰り返しルールの "+u.Part+" は Outlook で表せないか、正しくありません（"+u.Reason+"）。",
				"The recurrence rule's "+u.Part+" cannot be expressed in Outlook or is malformed ("+u.Reason+").").
				WithField(f("recurrenceRule")).WithExtra("part", u.Part)
		}
		e.Recurrence = &r
	}
	return e, nil
}

// View is how the host will see the entry once Outlook holds it (used to
// decide which fields changed since calsync's last write).
func (e Entry) View() Event {
	v := Event{Subject: e.Subject, Body: strings.TrimSpace(e.Body), Location: e.Location, TimeZone: e.Zone.String(), IsAllDay: e.IsAllDay,
		ShowAs: enumOut(e.ShowAs), Sensitivity: enumOut(e.Sensitivity), Categories: e.Categories, ReminderMinutes: e.ReminderMinutes,
		Type: SingleInstance}
	if e.Recurrence != nil {
		v.Type, v.RecurrenceRule = SeriesMaster, e.Recurrence.RRULE(e.Zone)
	}
	if e.IsAllDay {
		v.Start, v.End = e.Start.Format(dateLayout), e.End.Format(dateLayout)
	} else {
		v.Start, v.End = e.Start.Format(time.RFC3339), e.End.Format(time.RFC3339)
	}
	return v
}
