package outlook

import (
	"time"

	"github.com/microsoft/kiota-abstractions-go/serialization"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/tehaishokunin/calsync/internal/recur"
)

// Event types as Graph names them (api-reference/v1.0/resources/event.md).
const (
	TypeSingleInstance = "singleInstance"
	TypeOccurrence     = "occurrence"
	TypeException      = "exception"
	TypeSeriesMaster   = "seriesMaster"
)

var graphDays = []models.DayOfWeek{models.SUNDAY_DAYOFWEEK, models.MONDAY_DAYOFWEEK, models.TUESDAY_DAYOFWEEK,
	models.WEDNESDAY_DAYOFWEEK, models.THURSDAY_DAYOFWEEK, models.FRIDAY_DAYOFWEEK, models.SATURDAY_DAYOFWEEK}

// recurrenceModel is r as Graph's patternedRecurrence; the range's zone is
// the event's own (recurrenceTimeZone left out, as the docs allow).
func recurrenceModel(r *recur.Rule) (models.PatternedRecurrenceable, error) {
	p := models.NewRecurrencePattern()
	pt, err := models.ParseRecurrencePatternType(r.Type)
	if err != nil || pt == nil {
		return nil, &Error{Op: "building recurrence", Kind: KindBadRequest, Message: "unknown pattern type " + r.Type}
	}
	p.SetTypeEscaped(pt.(*models.RecurrencePatternType))
	p.SetInterval(ptr(int32(r.Interval)))
	switch r.Type {
	case recur.Weekly, recur.RelativeMonthly, recur.RelativeYearly:
		days := make([]models.DayOfWeek, len(r.DaysOfWeek))
		for i, d := range r.DaysOfWeek {
			days[i] = graphDays[d]
		}
		p.SetDaysOfWeek(days)
	}
	if r.Type == recur.Weekly {
		p.SetFirstDayOfWeek(&graphDays[r.FirstDayOfWeek])
	}
	if r.Index != "" {
		if wi, err := models.ParseWeekIndex(r.Index); err == nil && wi != nil {
			p.SetIndex(wi.(*models.WeekIndex))
		}
	}
	if r.DayOfMonth != 0 {
		p.SetDayOfMonth(ptr(int32(r.DayOfMonth)))
	}
	if r.Month != 0 {
		p.SetMonth(ptr(int32(r.Month)))
	}
	rg := models.NewRecurrenceRange()
	rt, err := models.ParseRecurrenceRangeType(r.RangeType)
	if err != nil || rt == nil {
		return nil, &Error{Op: "building recurrence", Kind: KindBadRequest, Message: "unknown range type " + r.RangeType}
	}
	rg.SetTypeEscaped(rt.(*models.RecurrenceRangeType))
	start, err := serialization.ParseDateOnly(r.StartDate)
	if err != nil {
		return nil, &Error{Op: "building recurrence", Kind: KindBadRequest, Message: "bad start date"}
	}
	rg.SetStartDate(start)
	switch r.RangeType {
	case recur.EndDate:
		end, err := serialization.ParseDateOnly(r.EndDate)
		if err != nil {
			return nil, &Error{Op: "building recurrence", Kind: KindBadRequest, Message: "bad end date"}
		}
		rg.SetEndDate(end)
	case recur.Numbered:
		rg.SetNumberOfOccurrences(ptr(int32(r.Count)))
	}
	m := models.NewPatternedRecurrence()
	m.SetPattern(p)
	m.SetRangeEscaped(rg)
	return m, nil
}

// fromRecurrenceModel reads Graph's patternedRecurrence (nil when absent).
func fromRecurrenceModel(m models.PatternedRecurrenceable) *recur.Rule {
	if m == nil || m.GetPattern() == nil || m.GetRangeEscaped() == nil {
		return nil
	}
	p, rg := m.GetPattern(), m.GetRangeEscaped()
	r := &recur.Rule{FirstDayOfWeek: time.Sunday}
	if t := p.GetTypeEscaped(); t != nil {
		r.Type = t.String()
	}
	r.Interval = int(deref32(p.GetInterval()))
	for _, d := range p.GetDaysOfWeek() {
		r.DaysOfWeek = append(r.DaysOfWeek, weekday(d))
	}
	if d := p.GetFirstDayOfWeek(); d != nil {
		r.FirstDayOfWeek = weekday(*d)
	}
	switch r.Type {
	case recur.RelativeMonthly, recur.RelativeYearly:
		r.Index = "first"
		if i := p.GetIndex(); i != nil {
			r.Index = i.String()
		}
	}
	switch r.Type {
	case recur.AbsoluteMonthly, recur.AbsoluteYearly:
		r.DayOfMonth = int(deref32(p.GetDayOfMonth()))
	}
	switch r.Type {
	case recur.AbsoluteYearly, recur.RelativeYearly:
		r.Month = int(deref32(p.GetMonth()))
	}
	if t := rg.GetTypeEscaped(); t != nil {
		r.RangeType = t.String()
	}
	if d := rg.GetStartDate(); d != nil {
		r.StartDate = d.String()
	}
	switch r.RangeType {
	case recur.EndDate:
		if d := rg.GetEndDate(); d != nil {
			r.EndDate = d.String()
		}
	case recur.Numbered:
		r.Count = int(deref32(rg.GetNumberOfOccurrences()))
	}
	return r
}

func weekday(d models.DayOfWeek) time.Weekday {
	for i, g := range graphDays {
		if g == d {
			return time.Weekday(i)
		}
	}
	return time.Sunday
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}
