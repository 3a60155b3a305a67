package outlook

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/tehaishokunin/calsync/internal/htmltext"
	"github.com/tehaishokunin/calsync/internal/recur"
)

// Event is the subset of a Graph event calsync reads and writes.
type Event struct {
	ID        string // ImmutableId
	ChangeKey string
	ICalUID   string

	Subject  string
	Body     string // plain text (sent as HTML, read back from HTML)
	Location string
	// Start and End carry the wall time in their own location; TimeZone is
	// the zone name sent to Graph (a Windows name such as "Tokyo Standard
	// Time"). In events read back, Start/End are UTC and TimeZone is the
	// event's original start time zone.
	Start, End      time.Time
	TimeZone        string
	IsAllDay        bool
	ShowAs          string // free, tentative, busy, oof, workingElsewhere, unknown
	Sensitivity     string // normal, personal, private, confidential
	Categories      []string
	ReminderMinutes *int

	// ExtendedProperties maps a single-value extended property id
	// ("String {guid} Name x") to its value.
	ExtendedProperties map[string]string
	LastModified       time.Time
	TransactionID      string
	WebLink            string

	// Recurring series: Type is one of the Type* constants; an instance
	// (occurrence or exception) names its SeriesMasterID and
	// OriginalStart; a series master carries its Recurrence, which is also
	// what a create or a "recurrence" PATCH sends.
	Type           string
	SeriesMasterID string
	OriginalStart  time.Time
	Recurrence     *recur.Rule
}

const graphDateTime = "2006-01-02T15:04:05.0000000"

// dateTimeTZ is t as Graph's dateTimeTimeZone: its wall time in zone. A
// wall time that happens twice (the hour repeated when clocks go back) does
// not say which instant it is, so that one is sent in UTC instead.
func dateTimeTZ(t time.Time, zone string) models.DateTimeTimeZoneable {
	if ambiguous(t) {
		t, zone = t.UTC(), "UTC"
	}
	d := models.NewDateTimeTimeZone()
	d.SetDateTime(ptr(t.Format(graphDateTime)))
	d.SetTimeZone(ptr(zone))
	return d
}

// ambiguous reports whether t's wall time in its location also names
// another instant: an offset in force a day either side would read it as a
// different instant that has that offset too.
func ambiguous(t time.Time) bool {
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	wall := time.Date(y, mo, d, h, mi, sec, t.Nanosecond(), time.UTC)
	_, own := t.Zone()
	for _, near := range []time.Time{t.Add(-26 * time.Hour), t.Add(26 * time.Hour)} {
		_, off := near.Zone()
		if off == own {
			continue
		}
		other := wall.Add(-time.Duration(off) * time.Second)
		if _, o := other.In(t.Location()).Zone(); o == off {
			return true
		}
	}
	return false
}

// toModel builds the Graph body. Only the fields named in fields are set
// (all when fields is nil), so a PATCH sends exactly what changed.
func (e Event) toModel(fields []string) (models.Eventable, error) {
	has := func(f string) bool {
		if fields == nil {
			return true
		}
		for _, x := range fields {
			if x == f {
				return true
			}
		}
		return false
	}
	m := models.NewEvent()
	if has("subject") {
		m.SetSubject(ptr(e.Subject))
	}
	if has("body") {
		// HTML, so the note's line breaks show in Outlook on the web
		// (a text body is shown as one run of text).
		b := models.NewItemBody()
		ct := models.HTML_BODYTYPE
		b.SetContentType(&ct)
		b.SetContent(ptr(htmltext.FromText(e.Body)))
		m.SetBody(b)
	}
	if has("location") {
		l := models.NewLocation()
		l.SetDisplayName(ptr(e.Location))
		m.SetLocation(l)
	}
	if has("start") || has("end") || has("isAllDay") || has("timeZone") {
		m.SetStart(dateTimeTZ(e.Start, e.TimeZone))
		m.SetEnd(dateTimeTZ(e.End, e.TimeZone))
		m.SetIsAllDay(ptr(e.IsAllDay))
	}
	if has("showAs") && e.ShowAs != "" {
		v, err := models.ParseFreeBusyStatus(e.ShowAs)
		if err != nil || v == nil {
			return nil, fmt.Errorf("unknown showAs %q", e.ShowAs)
		}
		m.SetShowAs(v.(*models.FreeBusyStatus))
	}
	if has("sensitivity") && e.Sensitivity != "" {
		v, err := models.ParseSensitivity(e.Sensitivity)
		if err != nil || v == nil {
			return nil, fmt.Errorf("unknown sensitivity %q", e.Sensitivity)
		}
		m.SetSensitivity(v.(*models.Sensitivity))
	}
	if has("categories") {
		c := e.Categories
		if c == nil {
			c = []string{}
		}
		m.SetCategories(c)
	}
	if has("reminderMinutesBeforeStart") && e.ReminderMinutes != nil {
		m.SetReminderMinutesBeforeStart(ptr(int32(*e.ReminderMinutes)))
		m.SetIsReminderOn(ptr(true))
	}
	if has("extendedProperties") && len(e.ExtendedProperties) > 0 {
		var props []models.SingleValueLegacyExtendedPropertyable
		for id, v := range e.ExtendedProperties {
			p := models.NewSingleValueLegacyExtendedProperty()
			p.SetId(ptr(id))
			p.SetValue(ptr(v))
			props = append(props, p)
		}
		m.SetSingleValueExtendedProperties(props)
	}
	if has("recurrence") && e.Recurrence != nil {
		r, err := recurrenceModel(e.Recurrence)
		if err != nil {
			return nil, err
		}
		m.SetRecurrence(r)
	}
	if e.TransactionID != "" && fields == nil {
		m.SetTransactionId(ptr(e.TransactionID))
	}
	return m, nil
}

func parseGraphTime(d models.DateTimeTimeZoneable) time.Time {
	if d == nil {
		return time.Time{}
	}
	return parseGraphTimeString(d.GetDateTime())
}

// parseGraphTimeString reads a dateTimeTimeZone's dateTime (UTC, as
// calsync asks for with Prefer: outlook.timezone); zero when absent or
// unreadable.
func parseGraphTimeString(s *string) time.Time {
	if s == nil {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.9999999", time.RFC3339Nano} {
		if t, err := time.ParseInLocation(layout, *s, time.UTC); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// bodyText is an event body as calsync holds it: plain text with \n line
// breaks, converted from HTML when Graph sent HTML.
func bodyText(content string, html bool) string {
	text := htmltext.NormalizeNewlines(content)
	if html {
		text = htmltext.ToText(text)
	}
	return text
}

func fromModel(m models.Eventable) Event {
	e := Event{
		ID:             deref(m.GetId()),
		ChangeKey:      deref(m.GetChangeKey()),
		ICalUID:        deref(m.GetICalUId()),
		Subject:        deref(m.GetSubject()),
		Start:          parseGraphTime(m.GetStart()),
		End:            parseGraphTime(m.GetEnd()),
		TimeZone:       deref(m.GetOriginalStartTimeZone()),
		IsAllDay:       deref(m.GetIsAllDay()),
		Categories:     m.GetCategories(),
		TransactionID:  deref(m.GetTransactionId()),
		WebLink:        deref(m.GetWebLink()),
		Type:           TypeSingleInstance,
		SeriesMasterID: deref(m.GetSeriesMasterId()),
		Recurrence:     fromRecurrenceModel(m.GetRecurrence()),
	}
	if t := m.GetTypeEscaped(); t != nil {
		e.Type = t.String()
	}
	if v := m.GetOriginalStart(); v != nil {
		e.OriginalStart = v.UTC()
	}
	if b := m.GetBody(); b != nil {
		ct := b.GetContentType()
		e.Body = bodyText(deref(b.GetContent()), ct != nil && *ct == models.HTML_BODYTYPE)
	}
	if l := m.GetLocation(); l != nil {
		e.Location = deref(l.GetDisplayName())
	}
	if v := m.GetShowAs(); v != nil {
		e.ShowAs = v.String()
	}
	if v := m.GetSensitivity(); v != nil {
		e.Sensitivity = v.String()
	}
	if v := m.GetReminderMinutesBeforeStart(); v != nil && deref(m.GetIsReminderOn()) {
		e.ReminderMinutes = ptr(int(*v))
	}
	if v := m.GetLastModifiedDateTime(); v != nil {
		e.LastModified = v.UTC()
	}
	if props := m.GetSingleValueExtendedProperties(); len(props) > 0 {
		e.ExtendedProperties = map[string]string{}
		for _, p := range props {
			if p == nil {
				continue // a null in the list (kiota keeps it): nothing to read
			}
			e.ExtendedProperties[deref(p.GetId())] = deref(p.GetValue())
		}
	}
	return e
}

func expandProperty(propID string) []string {
	if propID == "" {
		return nil
	}
	return []string{"singleValueExtendedProperties($filter=id eq '" + odataQuote(propID) + "')"}
}

func odataQuote(s string) string { return strings.ReplaceAll(s, "'", "''") }

// CreateEvent creates ev in the mailbox's default calendar. With
// ev.TransactionID set, a retry after a lost response returns the event the
// first attempt made instead of a duplicate.
func (s *Session) CreateEvent(ctx context.Context, mailbox string, ev Event) (Event, error) {
	release, err := s.acquire(ctx, mailbox)
	if err != nil {
		return Event{}, err
	}
	defer release()
	m, err := ev.toModel(nil)
	if err != nil {
		return Event{}, &Error{Op: "creating event", Kind: KindBadRequest, Message: err.Error()}
	}
	var propID string
	for id := range ev.ExtendedProperties {
		propID = id
	}
	cfg := &users.ItemEventsRequestBuilderPostRequestConfiguration{Headers: headers()}
	ri, err := s.usersRoot().ByUserId(mailbox).Events().ToPostRequestInformation(ctx, m, cfg)
	if err != nil {
		return Event{}, classify("creating event", err)
	}
	out, err := s.sendEvent(ctx, ri)
	if err != nil {
		return Event{}, classify("creating event", err)
	}
	if out.ExtendedProperties == nil && propID != "" {
		out.ExtendedProperties = map[string]string{propID: ev.ExtendedProperties[propID]}
	}
	return out, nil
}

// GetEvent reads one event, with the extended property propID when set.
func (s *Session) GetEvent(ctx context.Context, mailbox, id, propID string) (Event, error) {
	release, err := s.acquire(ctx, mailbox)
	if err != nil {
		return Event{}, err
	}
	defer release()
	ri, err := s.usersRoot().ByUserId(mailbox).Events().ByEventId(id).ToGetRequestInformation(ctx, &users.ItemEventsEventItemRequestBuilderGetRequestConfiguration{
		Headers:         headers(),
		QueryParameters: &users.ItemEventsEventItemRequestBuilderGetQueryParameters{Expand: expandProperty(propID)},
	})
	if err != nil {
		return Event{}, classify("getting event", err)
	}
	ev, err := s.sendEvent(ctx, ri)
	return ev, classify("getting event", err)
}

// UpdateEvent PATCHes the named fields of ev. With ifMatch (a changeKey)
// set, Graph refuses with KindConflict when the event changed since.
func (s *Session) UpdateEvent(ctx context.Context, mailbox, id string, ev Event, fields []string, ifMatch string) (Event, error) {
	release, err := s.acquire(ctx, mailbox)
	if err != nil {
		return Event{}, err
	}
	defer release()
	if fields == nil {
		fields = []string{}
	}
	m, err := ev.toModel(fields)
	if err != nil {
		return Event{}, &Error{Op: "updating event", Kind: KindBadRequest, Message: err.Error()}
	}
	h := headers()
	if ifMatch != "" {
		h.Add("If-Match", `W/"`+ifMatch+`"`)
	}
	ri, err := s.usersRoot().ByUserId(mailbox).Events().ByEventId(id).ToPatchRequestInformation(ctx, m, &users.ItemEventsEventItemRequestBuilderPatchRequestConfiguration{Headers: h})
	if err != nil {
		return Event{}, classify("updating event", err)
	}
	out, err := s.sendEvent(ctx, ri)
	return out, classify("updating event", err)
}

// DeleteEvent deletes an event; deleting one that is already gone is
// KindNotFound, which callers may treat as success.
func (s *Session) DeleteEvent(ctx context.Context, mailbox, id string) error {
	release, err := s.acquire(ctx, mailbox)
	if err != nil {
		return err
	}
	defer release()
	err = s.usersRoot().ByUserId(mailbox).Events().ByEventId(id).Delete(ctx, &users.ItemEventsEventItemRequestBuilderDeleteRequestConfiguration{Headers: headers()})
	return classify("deleting event", err)
}

// FindEventsByProperty lists events whose single-value extended property
// propID equals value (how a lost event link is re-found).
func (s *Session) FindEventsByProperty(ctx context.Context, mailbox, propID, value string) ([]Event, error) {
	release, err := s.acquire(ctx, mailbox)
	if err != nil {
		return nil, err
	}
	defer release()
	filter := fmt.Sprintf("singleValueExtendedProperties/any(ep: ep/id eq '%s' and ep/value eq '%s')", odataQuote(propID), odataQuote(value))
	res, err := s.usersRoot().ByUserId(mailbox).Events().Get(ctx, &users.ItemEventsRequestBuilderGetRequestConfiguration{
		Headers: headers(),
		QueryParameters: &users.ItemEventsRequestBuilderGetQueryParameters{
			Filter: &filter,
			Expand: expandProperty(propID),
			Top:    ptr(int32(10)),
		},
	})
	if err != nil {
		return nil, classify("finding events", err)
	}
	var out []Event
	for _, m := range res.GetValue() {
		out = append(out, fromModel(m))
	}
	return out, nil
}
