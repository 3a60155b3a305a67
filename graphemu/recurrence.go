package graphemu

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Recurring series, as Microsoft documents them:
//   - api-reference/v1.0/resources/patternedrecurrence.md, recurrencepattern.md
//     and recurrencerange.md: the shape of event.recurrence;
//   - concepts/outlook-schedule-recurring-events.md: which properties each
//     pattern and range type needs, that range.startDate must be the date
//     of the event's start, and that the first occurrence is the first date
//     on or after startDate that fits the pattern (relativeMonthly with
//     several days falls on the first day that satisfies it);
//   - api-reference/v1.0/resources/event.md: /events lists single instances
//     and series masters; an instance has its own id and iCalUId, type
//     occurrence or exception, seriesMasterId and originalStart;
//   - api-reference/v1.0/api/event-list-instances.md: /events/{id}/instances
//     returns a master's occurrences and exceptions in a range;
//   - concepts/delta-query-events.md: calendarView and its delta hold
//     single instances, occurrences and exceptions (never the master).
//
// What Microsoft leaves unsaid, chosen here: an instance's id is the
// master's id, ".", and its original date (stable across series edits that
// keep the date); editing or cancelling an instance changes the master
// (Exchange keeps exceptions inside the master item), so the master gets a
// new changeKey and the change notification names the master, as users
// report of Graph (microsoftgraph/microsoft-graph-docs#5520, pnp/PnP#1894);
// occurrences carry the master's changeKey (as in the List instances
// example); changing the recurrence drops the exceptions and cancellations,
// as Outlook does when a series' pattern is changed.

type recurrencePattern struct {
	typ            string
	interval       int
	daysOfWeek     []time.Weekday
	firstDayOfWeek time.Weekday
	index          string
	dayOfMonth     int
	month          int
}

type recurrenceRange struct {
	typ        string
	startDate  time.Time // a date: midnight UTC
	endDate    time.Time
	number     int
	recurrTZ   string
	hasRecurTZ bool
}

type recurrence struct {
	pattern recurrencePattern
	rng     recurrenceRange
}

var patternTypes = []string{"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
var rangeTypes = []string{"endDate", "noEnd", "numbered"}
var weekIndexes = []string{"first", "second", "third", "fourth", "last"}
var dayNames = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

const dateOnly = "2006-01-02"

// maxExpandDays bounds how far a series is walked, whatever its range: a
// daily series without end is expanded only up to the asked window, and
// never more than this many days from its start.
const maxExpandDays = 100 * 366

func recurErr(format string, args ...any) *inputError {
	return &inputError{code: "ErrorInvalidRequest", msg: fmt.Sprintf(format, args...)}
}

func enumValue(v any, allowed []string, what string) (string, *inputError) {
	s, ok := v.(string)
	if !ok {
		return "", recurErr("The value of %s is not valid.", what)
	}
	for _, a := range allowed {
		if strings.EqualFold(a, s) {
			return a, nil
		}
	}
	return "", &inputError{code: "RequestBodyRead", msg: fmt.Sprintf("Requested value '%s' was not found.", s)}
}

func weekday(v any) (time.Weekday, *inputError) {
	s, err := enumValue(v, dayNames, "dayOfWeek")
	if err != nil {
		return 0, err
	}
	return time.Weekday(slices.Index(dayNames, s)), nil
}

func intValue(v any, what string) (int, *inputError) {
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) {
		return 0, &inputError{code: "RequestBodyRead", msg: fmt.Sprintf("Cannot convert the literal '%v' to the expected type 'Edm.Int32' (%s).", v, what)}
	}
	return int(f), nil
}

// parseRecurrence reads event.recurrence; nil means none.
func parseRecurrence(v any) (*recurrence, *inputError) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, recurErr("The recurrence is not a patternedRecurrence.")
	}
	pm, _ := m["pattern"].(map[string]any)
	rm, _ := m["range"].(map[string]any)
	if pm == nil || rm == nil {
		return nil, recurErr("A recurrence needs both a pattern and a range.")
	}
	var r recurrence
	p := &r.pattern
	var err *inputError
	if p.typ, err = enumValue(pm["type"], patternTypes, "pattern.type"); err != nil {
		return nil, err
	}
	if p.interval, err = intValue(pm["interval"], "pattern.interval"); err != nil {
		return nil, err
	}
	if p.interval < 1 || p.interval > 99 {
		return nil, recurErr("The recurrence pattern interval must be between 1 and 99.")
	}
	if days, ok := pm["daysOfWeek"].([]any); ok {
		for _, d := range days {
			wd, err := weekday(d)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(p.daysOfWeek, wd) {
				p.daysOfWeek = append(p.daysOfWeek, wd)
			}
		}
	}
	p.firstDayOfWeek = time.Sunday
	if v, ok := pm["firstDayOfWeek"]; ok && v != nil {
		if p.firstDayOfWeek, err = weekday(v); err != nil {
			return nil, err
		}
	}
	p.index = "first"
	if v, ok := pm["index"]; ok && v != nil {
		if p.index, err = enumValue(v, weekIndexes, "pattern.index"); err != nil {
			return nil, err
		}
	}
	if v, ok := pm["dayOfMonth"]; ok && v != nil {
		if p.dayOfMonth, err = intValue(v, "pattern.dayOfMonth"); err != nil {
			return nil, err
		}
	}
	if v, ok := pm["month"]; ok && v != nil {
		if p.month, err = intValue(v, "pattern.month"); err != nil {
			return nil, err
		}
	}
	switch p.typ {
	case "weekly", "relativeMonthly", "relativeYearly":
		if len(p.daysOfWeek) == 0 {
			return nil, recurErr("The recurrence pattern of type %s requires daysOfWeek.", p.typ)
		}
	}
	switch p.typ {
	case "absoluteMonthly", "absoluteYearly":
		if p.dayOfMonth < 1 || p.dayOfMonth > 31 {
			return nil, recurErr("The recurrence pattern of type %s requires a dayOfMonth between 1 and 31.", p.typ)
		}
	}
	switch p.typ {
	case "absoluteYearly", "relativeYearly":
		if p.month < 1 || p.month > 12 {
			return nil, recurErr("The recurrence pattern of type %s requires a month between 1 and 12.", p.typ)
		}
	}

	g := &r.rng
	if g.typ, err = enumValue(rm["type"], rangeTypes, "range.type"); err != nil {
		return nil, err
	}
	sd, _ := rm["startDate"].(string)
	t, perr := time.Parse(dateOnly, sd)
	if perr != nil {
		return nil, recurErr("The recurrence range requires a startDate (YYYY-MM-DD).")
	}
	g.startDate = t
	switch g.typ {
	case "endDate":
		ed, _ := rm["endDate"].(string)
		t, perr := time.Parse(dateOnly, ed)
		if perr != nil {
			return nil, recurErr("The recurrence range of type endDate requires an endDate (YYYY-MM-DD).")
		}
		if t.Before(g.startDate) {
			return nil, recurErr("The recurrence range endDate must not be before its startDate.")
		}
		g.endDate = t
	case "numbered":
		n, err := intValue(rm["numberOfOccurrences"], "range.numberOfOccurrences")
		if err != nil || n < 1 {
			return nil, recurErr("The recurrence range of type numbered requires a positive numberOfOccurrences.")
		}
		g.number = n
	}
	if tz, ok := rm["recurrenceTimeZone"].(string); ok && tz != "" {
		if _, ok := resolveZone(tz); !ok {
			return nil, errZoneNotSupported(tz)
		}
		g.recurrTZ, g.hasRecurTZ = tz, true
	}
	return &r, nil
}

func (r *recurrence) render(eventZone string) map[string]any {
	days := make([]string, len(r.pattern.daysOfWeek))
	for i, d := range r.pattern.daysOfWeek {
		days[i] = dayNames[d]
	}
	end := "0001-01-01"
	if r.rng.typ == "endDate" {
		end = r.rng.endDate.Format(dateOnly)
	}
	tz := eventZone
	if r.rng.hasRecurTZ {
		tz = r.rng.recurrTZ
	}
	return map[string]any{
		"pattern": map[string]any{
			"type": r.pattern.typ, "interval": r.pattern.interval, "month": r.pattern.month,
			"dayOfMonth": r.pattern.dayOfMonth, "daysOfWeek": days,
			"firstDayOfWeek": dayNames[r.pattern.firstDayOfWeek], "index": r.pattern.index,
		},
		"range": map[string]any{
			"type": r.rng.typ, "startDate": r.rng.startDate.Format(dateOnly), "endDate": end,
			"recurrenceTimeZone": tz, "numberOfOccurrences": r.rng.number,
		},
	}
}

func dateOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func daysBetween(a, b time.Time) int { return int(b.Sub(a).Hours() / 24) }

func daysIn(y int, m time.Month) int { return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// nthInMonth is the date of the pattern's index-th day among daysOfWeek in
// the month (recurrencepattern.md: counted from the first instance in the
// month; "last" the last one).
func (p *recurrencePattern) nthInMonth(y int, m time.Month) time.Time {
	var hits []time.Time
	for d := 1; d <= daysIn(y, m); d++ {
		t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		if slices.Contains(p.daysOfWeek, t.Weekday()) {
			hits = append(hits, t)
		}
	}
	i := slices.Index(weekIndexes, p.index)
	if p.index == "last" || i >= len(hits) {
		return hits[len(hits)-1]
	}
	return hits[i]
}

// fitsDay says whether date d is a day the pattern names, interval aside.
func (p *recurrencePattern) fitsDay(d time.Time) bool {
	switch p.typ {
	case "daily":
		return true
	case "weekly":
		return slices.Contains(p.daysOfWeek, d.Weekday())
	case "absoluteMonthly":
		return d.Day() == min(p.dayOfMonth, daysIn(d.Year(), d.Month()))
	case "relativeMonthly":
		return d.Equal(p.nthInMonth(d.Year(), d.Month()))
	case "absoluteYearly":
		return int(d.Month()) == p.month && d.Day() == min(p.dayOfMonth, daysIn(d.Year(), d.Month()))
	case "relativeYearly":
		return int(d.Month()) == p.month && d.Equal(p.nthInMonth(d.Year(), d.Month()))
	}
	return false
}

// inStep says whether d is a whole number of intervals after anchor, the
// series' first occurrence: the docs' "first Thursday of every other month
// from August 29" falls in September, November, January — counted from the
// first occurrence, not from startDate's month.
func (p *recurrencePattern) inStep(anchor, d time.Time) bool {
	switch p.typ {
	case "daily":
		return daysBetween(anchor, d)%p.interval == 0
	case "weekly":
		weekStart := func(t time.Time) time.Time {
			return t.AddDate(0, 0, -((int(t.Weekday()) - int(p.firstDayOfWeek) + 7) % 7))
		}
		return (daysBetween(weekStart(anchor), weekStart(d))/7)%p.interval == 0
	case "absoluteMonthly", "relativeMonthly":
		return ((d.Year()*12+int(d.Month()))-(anchor.Year()*12+int(anchor.Month())))%p.interval == 0
	default:
		return (d.Year()-anchor.Year())%p.interval == 0
	}
}

// dates calls fn with each date of the series, in order, up to and
// including last, until fn returns false.
func (r *recurrence) dates(last time.Time, fn func(time.Time) bool) {
	n := 0
	var anchor time.Time
	for i, d := 0, r.rng.startDate; i < maxExpandDays && !d.After(last); i, d = i+1, d.AddDate(0, 0, 1) {
		if r.rng.typ == "endDate" && d.After(r.rng.endDate) {
			return
		}
		if !r.pattern.fitsDay(d) {
			continue
		}
		if anchor.IsZero() {
			anchor = d
		}
		if !r.pattern.inStep(anchor, d) {
			continue
		}
		n++
		if r.rng.typ == "numbered" && n > r.rng.number {
			return
		}
		if !fn(d) {
			return
		}
	}
}

// has says whether date d is one of the series' dates.
func (r *recurrence) has(d time.Time) bool {
	found := false
	r.dates(d, func(x time.Time) bool {
		found = x.Equal(d)
		return !found
	})
	return found
}

const instanceSep = "."

func instanceKey(d time.Time) string { return d.Format("20060102") }

// occurrenceAt is the master's occurrence on date d (a key of its series),
// before any exception.
func (ev *event) occurrenceAt(d time.Time) *event {
	loc := ev.start.Location()
	h, mi, s := ev.start.Clock()
	start := time.Date(d.Year(), d.Month(), d.Day(), h, mi, s, ev.start.Nanosecond(), loc)
	key := instanceKey(d)
	occ := ev.clone()
	occ.recur, occ.exceptions, occ.cancelled = nil, nil, nil
	occ.typ, occ.masterID, occ.masterRestID = "occurrence", ev.id, ev.restID
	occ.id, occ.restID = ev.id+instanceSep+key, ev.restID+instanceSep+key
	occ.iCalUID = ev.iCalUID + key
	occ.transactionID = ""
	occ.originalStart = start
	occ.start, occ.end = start, start.Add(ev.end.Sub(ev.start))
	return occ
}

// inView is what a calendar view of [from, to) shows of ev: a series'
// occurrences and exceptions there, or a single event that overlaps it.
func (ev *event) inView(from, to time.Time) []*event {
	switch {
	case ev.recur != nil:
		return ev.instances(from, to)
	case ev.overlaps(from, to):
		return []*event{ev.clone()}
	}
	return nil
}

// instances lists the master's occurrences and exceptions that overlap
// [from, to), in start order.
func (ev *event) instances(from, to time.Time) []*event {
	var out []*event
	last := dateOf(to.In(ev.start.Location()))
	ev.recur.dates(last, func(d time.Time) bool {
		key := instanceKey(d)
		if ev.cancelled[key] || ev.exceptions[key] != nil {
			return true
		}
		if occ := ev.occurrenceAt(d); occ.overlaps(from, to) {
			out = append(out, occ)
		}
		return true
	})
	for _, x := range ev.exceptions {
		if x.overlaps(from, to) {
			out = append(out, x.clone())
		}
	}
	slices.SortFunc(out, func(a, b *event) int { return a.start.Compare(b.start) })
	return out
}

// lookupInstanceLocked resolves an instance id (immutable or REST form) to
// its master and date key; ok is false when id names no live instance.
func lookupInstanceLocked(u *user, id string) (master *event, d time.Time, ok bool) {
	i := strings.LastIndex(id, instanceSep)
	if i < 0 {
		return nil, time.Time{}, false
	}
	master = lookupEventLocked(u, id[:i])
	if master == nil || master.recur == nil {
		return nil, time.Time{}, false
	}
	d, err := time.Parse("20060102", id[i+1:])
	if err != nil {
		return nil, time.Time{}, false
	}
	key := instanceKey(d)
	if master.cancelled[key] {
		return nil, time.Time{}, false
	}
	if master.exceptions[key] == nil && !master.recur.has(d) {
		return nil, time.Time{}, false
	}
	return master, d, true
}

// instanceOn is the current instance of the master on date d.
func (ev *event) instanceOn(d time.Time) *event {
	if x := ev.exceptions[instanceKey(d)]; x != nil {
		return x
	}
	return ev.occurrenceAt(d)
}

// updateInstanceLocked edits one instance of a series: it becomes (or stays)
// an exception, and the master changes with it.
func (e *Emulator) updateInstanceLocked(u *user, master *event, d time.Time, body map[string]any, ifMatch string) (*event, int, *inputError) {
	cur := master.instanceOn(d)
	if !ifMatchOK(ifMatch, cur) {
		return nil, http.StatusPreconditionFailed, &inputError{code: "ErrorIrresolvableConflict",
			msg: "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."}
	}
	next := cur.clone()
	next.typ = "exception"
	delete(body, "transactionId")
	if ierr := next.apply(body, false); ierr != nil {
		return nil, http.StatusBadRequest, ierr
	}
	now := e.now()
	e.seq++
	next.seq, next.changeKey, next.modified = e.seq, newChangeKey(), now
	m := master.clone()
	if m.exceptions == nil {
		m.exceptions = map[string]*event{}
	}
	m.exceptions[instanceKey(d)] = next
	m.seq, m.changeKey, m.modified = e.seq, newChangeKey(), now
	u.events[m.id] = m
	e.notifyLocked(u, m, "updated")
	return next.clone(), http.StatusOK, nil
}

// cancelInstanceLocked deletes one instance of a series: it leaves the
// calendar view, and the master changes.
func (e *Emulator) cancelInstanceLocked(u *user, master *event, d time.Time) {
	m := master.clone()
	key := instanceKey(d)
	delete(m.exceptions, key)
	if m.cancelled == nil {
		m.cancelled = map[string]bool{}
	}
	m.cancelled[key] = true
	e.seq++
	m.seq, m.changeKey, m.modified = e.seq, newChangeKey(), e.now()
	u.events[m.id] = m
	e.notifyLocked(u, m, "updated")
}
