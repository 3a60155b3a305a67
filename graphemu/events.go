package graphemu

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"time"
)

type extProp struct {
	ID    string
	Value string
}

type event struct {
	id            string // ImmutableId
	restID        string
	iCalUID       string
	changeKey     string
	created       time.Time
	modified      time.Time
	transactionID string
	seq           uint64

	subject       string
	bodyType      string
	body          string
	start, end    time.Time
	startTZ       string
	endTZ         string
	isAllDay      bool
	showAs        string
	sensitivity   string
	importance    string
	categories    []string
	reminder      int
	isReminderOn  bool
	location      string
	extProps      []extProp
	organizerName string
	organizerMail string

	// Recurring series (recurrence.go). typ is "" for a single instance,
	// "seriesMaster", "occurrence" or "exception".
	typ           string
	recur         *recurrence
	exceptions    map[string]*event // by instance key: edited instances
	cancelled     map[string]bool   // by instance key: deleted instances
	masterID      string            // of an instance
	masterRestID  string
	originalStart time.Time
}

func newItemID(prefix string) string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return prefix + base64.URLEncoding.EncodeToString(b)
}

func newChangeKey() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "DwAAABYAAAA" + base64.StdEncoding.EncodeToString(b)
}

func newICalUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "040000008200E00074C5B7101A82E00800000000" + strings.ToUpper(hex.EncodeToString(b))
}

var knownEventProps = map[string]bool{
	"subject": true, "body": true, "start": true, "end": true, "isAllDay": true, "showAs": true,
	"sensitivity": true, "importance": true, "categories": true, "reminderMinutesBeforeStart": true,
	"isReminderOn": true, "location": true, "locations": true, "transactionId": true,
	"singleValueExtendedProperties": true, "attendees": true, "responseRequested": true,
	"allowNewTimeProposals": true, "hideAttendees": true, "isOnlineMeeting": true,
	"onlineMeetingProvider": true, "recurrence": true,
}

var showAsValues = []string{"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}
var sensitivityValues = []string{"normal", "personal", "private", "confidential"}
var importanceValues = []string{"low", "normal", "high"}

// inputError is a 400 with Graph's code and message.
type inputError struct{ code, msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) *inputError {
	return &inputError{code: "ErrorInvalidRequest", msg: fmt.Sprintf(format, args...)}
}

// apply sets the fields present in body on ev. create says whether this is
// a POST (subject/start/end defaults apply).
func (ev *event) apply(body map[string]any, create bool) *inputError {
	for k := range body {
		if strings.HasPrefix(k, "@odata.") || knownEventProps[k] {
			continue
		}
		return &inputError{code: "RequestBodyRead", msg: fmt.Sprintf("The property '%s' does not exist on type 'microsoft.graph.event'. Make sure to only use property names that are defined by the type or mark the type as open type.", k)}
	}
	str := func(k string) (string, bool, *inputError) {
		v, ok := body[k]
		if !ok || v == nil {
			return "", ok, nil
		}
		s, isStr := v.(string)
		if !isStr {
			return "", true, &inputError{code: "RequestBodyRead", msg: fmt.Sprintf("Cannot convert the literal '%v' to the expected type 'Edm.String'.", v)}
		}
		return s, true, nil
	}
	enum := func(k string, allowed []string, dst *string) *inputError {
		s, ok, err := str(k)
		if err != nil || !ok {
			return err
		}
		for _, a := range allowed {
			if strings.EqualFold(a, s) {
				*dst = a
				return nil
			}
		}
		return &inputError{code: "RequestBodyRead", msg: fmt.Sprintf("Requested value '%s' was not found.", s)}
	}
	if s, ok, err := str("subject"); err != nil {
		return err
	} else if ok {
		ev.subject = s
	}
	if v, ok := body["body"].(map[string]any); ok {
		ct, _ := v["contentType"].(string)
		content, _ := v["content"].(string)
		if ct == "" {
			ct = "text"
		}
		ev.bodyType, ev.body = strings.ToLower(ct), content
	}
	if v, ok := body["location"].(map[string]any); ok {
		ev.location, _ = v["displayName"].(string)
	}
	if err := enum("showAs", showAsValues, &ev.showAs); err != nil {
		return err
	}
	if err := enum("sensitivity", sensitivityValues, &ev.sensitivity); err != nil {
		return err
	}
	if err := enum("importance", importanceValues, &ev.importance); err != nil {
		return err
	}
	if v, ok := body["categories"].([]any); ok {
		ev.categories = ev.categories[:0]
		for _, c := range v {
			if s, ok := c.(string); ok {
				ev.categories = append(ev.categories, s)
			}
		}
	}
	if v, ok := body["reminderMinutesBeforeStart"].(float64); ok {
		ev.reminder = int(v)
	}
	if v, ok := body["isReminderOn"].(bool); ok {
		ev.isReminderOn = v
	}
	if v, ok := body["isAllDay"].(bool); ok {
		ev.isAllDay = v
	}
	if v, ok := body["start"]; ok {
		t, tz, ierr := parseDateTimeTimeZone(v)
		if ierr != nil {
			if ierr.code == "TimeZoneNotSupportedException" {
				return ierr
			}
			return badInput("The value for 'start' is not a valid dateTimeTimeZone (dateTime and a known timeZone are required).")
		}
		ev.start, ev.startTZ = t, tz
	}
	if v, ok := body["end"]; ok {
		t, tz, ierr := parseDateTimeTimeZone(v)
		if ierr != nil {
			if ierr.code == "TimeZoneNotSupportedException" {
				return ierr
			}
			return badInput("The value for 'end' is not a valid dateTimeTimeZone (dateTime and a known timeZone are required).")
		}
		ev.end, ev.endTZ = t, tz
	}
	if v, has := body["recurrence"]; has {
		if ev.typ == "occurrence" || ev.typ == "exception" {
			return badInput("The recurrence of an instance of a series can't be set; update its series master.")
		}
		r, ierr := parseRecurrence(v)
		if ierr != nil {
			return ierr
		}
		if r != nil && ev.start.IsZero() {
			return badInput("Your request can't be completed. The start and end of the event are required.")
		}
		if r != nil && !r.rng.startDate.Equal(dateOf(ev.start)) {
			return badInput("The recurrence range startDate %s must be the date of the event's start (%s).", r.rng.startDate.Format(dateOnly), ev.start.Format(dateOnly))
		}
		// A new pattern starts the series afresh: edited and cancelled
		// instances of the old one are dropped, as Outlook does.
		ev.recur, ev.exceptions, ev.cancelled = r, nil, nil
		ev.typ = ""
		if r != nil {
			ev.typ = "seriesMaster"
		}
	} else if _, moved := body["start"]; moved && ev.recur != nil {
		// The series moves with its master's start.
		ev.recur.rng.startDate = dateOf(ev.start)
		if ev.recur.rng.typ == "endDate" && ev.recur.rng.endDate.Before(ev.recur.rng.startDate) {
			return badInput("The recurrence range endDate must not be before its startDate.")
		}
	}
	if create {
		if ev.start.IsZero() || ev.end.IsZero() {
			return badInput("Your request can't be completed. The start and end of the event are required.")
		}
	}
	if ev.end.Before(ev.start) {
		return &inputError{code: "ErrorInvalidRequest", msg: "The start time of the event must be before its end time."}
	}
	if ev.isAllDay {
		if !isMidnight(ev.start) || !isMidnight(ev.end) || !ev.end.After(ev.start) {
			return badInput("Your request can't be completed. If the event is an all-day event, both the start and end of the event must be set to midnight and at least a day apart.")
		}
	}
	if v, ok := body["singleValueExtendedProperties"].([]any); ok {
		for _, x := range v {
			m, _ := x.(map[string]any)
			id, _ := m["id"].(string)
			val, _ := m["value"].(string)
			if id == "" {
				return badInput("An extended property id is required.")
			}
			found := false
			for i := range ev.extProps {
				if sameExtPropID(ev.extProps[i].ID, id) {
					ev.extProps[i].Value, found = val, true
				}
			}
			if !found {
				ev.extProps = append(ev.extProps, extProp{ID: id, Value: val})
			}
		}
	}
	return nil
}

func isMidnight(t time.Time) bool {
	return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// sameExtPropID compares extended property ids as Exchange does: case
// insensitive, with runs of spaces collapsed.
func sameExtPropID(a, b string) bool {
	return strings.EqualFold(strings.Join(strings.Fields(a), " "), strings.Join(strings.Fields(b), " "))
}

// renderOpts say how a response shows an event.
type renderOpts struct {
	immutable bool
	zone      *time.Location
	zoneName  string
	// expand, when non-nil, selects the extended properties to include.
	expand func(extProp) bool
}

func (ev *event) idFor(immutable bool) string {
	if immutable {
		return ev.id
	}
	return ev.restID
}

func (ev *event) render(o renderOpts) map[string]any {
	zone, zoneName := o.zone, o.zoneName
	if zone == nil {
		zone, zoneName = time.UTC, "UTC"
	}
	categories := ev.categories
	if categories == nil {
		categories = []string{}
	}
	content, preview := ev.body, ev.body
	if ev.bodyType == "html" {
		content, preview = exchangeDocument(ev.body), htmlPreview(ev.body)
	}
	if r := []rune(preview); len(r) > 255 {
		preview = string(r[:255])
	}
	m := map[string]any{
		"@odata.etag":                fmt.Sprintf("W/\"%s\"", ev.changeKey),
		"id":                         ev.idFor(o.immutable),
		"createdDateTime":            ev.created.UTC().Format(time.RFC3339Nano),
		"lastModifiedDateTime":       ev.modified.UTC().Format(time.RFC3339Nano),
		"changeKey":                  ev.changeKey,
		"categories":                 categories,
		"transactionId":              nullable(ev.transactionID),
		"originalStartTimeZone":      ev.startTZ,
		"originalEndTimeZone":        ev.endTZ,
		"iCalUId":                    ev.iCalUID,
		"uid":                        ev.iCalUID,
		"reminderMinutesBeforeStart": ev.reminder,
		"isReminderOn":               ev.isReminderOn,
		"hasAttachments":             false,
		"subject":                    ev.subject,
		"bodyPreview":                preview,
		"importance":                 ev.importance,
		"sensitivity":                ev.sensitivity,
		"isAllDay":                   ev.isAllDay,
		"isCancelled":                false,
		"isOrganizer":                true,
		"responseRequested":          true,
		"seriesMasterId":             nil,
		"originalStart":              nil,
		"showAs":                     ev.showAs,
		"type":                       "singleInstance",
		"webLink":                    "https://outlook.office365.com/owa/?itemid=" + ev.restID + "&exvsurl=1&path=/calendar/item",
		"onlineMeetingUrl":           nil,
		"isOnlineMeeting":            false,
		"onlineMeetingProvider":      "unknown",
		"allowNewTimeProposals":      true,
		"isDraft":                    false,
		"hideAttendees":              false,
		"recurrence":                 nil,
		"onlineMeeting":              nil,
		"occurrenceId":               nil,
		"responseStatus":             map[string]any{"response": "organizer", "time": "0001-01-01T00:00:00Z"},
		"body":                       map[string]any{"contentType": ev.bodyType, "content": content},
		"start":                      map[string]any{"dateTime": ev.start.In(zone).Format(graphDateTime), "timeZone": zoneName},
		"end":                        map[string]any{"dateTime": ev.end.In(zone).Format(graphDateTime), "timeZone": zoneName},
		"location": map[string]any{
			"displayName": ev.location, "locationType": "default", "uniqueIdType": "unknown",
			"address": map[string]any{}, "coordinates": map[string]any{},
		},
		"locations": []any{},
		"attendees": []any{},
		"organizer": map[string]any{"emailAddress": map[string]any{"name": ev.organizerName, "address": ev.organizerMail}},
	}
	switch ev.typ {
	case "seriesMaster":
		m["type"] = "seriesMaster"
		m["recurrence"] = ev.recur.render(ev.startTZ)
	case "occurrence", "exception":
		m["type"] = ev.typ
		m["seriesMasterId"] = ev.masterRestID
		if o.immutable {
			m["seriesMasterId"] = ev.masterID
		}
		m["originalStart"] = ev.originalStart.UTC().Format(time.RFC3339)
		m["transactionId"] = nil
	}
	if ev.location != "" {
		m["locations"] = []any{map[string]any{"displayName": ev.location, "locationType": "default", "uniqueIdType": "unknown"}}
	}
	if o.expand != nil {
		props := []any{}
		for _, p := range ev.extProps {
			if o.expand(p) {
				props = append(props, map[string]any{"id": p.ID, "value": p.Value})
			}
		}
		m["singleValueExtendedProperties"] = props
	}
	return m
}

// exchangeDocument wraps an HTML body as Exchange answers it: a whole
// document, whatever fragment was sent (api-reference/v1.0/api/event-get.md
// shows the shape).
func exchangeDocument(fragment string) string {
	if strings.Contains(strings.ToLower(fragment), "<html") {
		return fragment
	}
	return "<html>\r\n<head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>\r\n<body>\r\n" +
		fragment + "\r\n</body>\r\n</html>\r\n"
}

var tags = regexp.MustCompile(`<[^>]*>`)

// htmlPreview is bodyPreview of an HTML body: its text, tags dropped.
func htmlPreview(s string) string {
	s = tags.ReplaceAllString(strings.ReplaceAll(s, "<br>", " "), "")
	return strings.Join(strings.Fields(html.UnescapeString(s)), " ")
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (ev *event) clone() *event {
	c := *ev
	c.categories = slices.Clone(ev.categories)
	c.extProps = slices.Clone(ev.extProps)
	if ev.recur != nil {
		r := *ev.recur
		r.pattern.daysOfWeek = slices.Clone(r.pattern.daysOfWeek)
		c.recur = &r
	}
	if ev.exceptions != nil {
		c.exceptions = make(map[string]*event, len(ev.exceptions))
		for k, x := range ev.exceptions {
			c.exceptions[k] = x
		}
	}
	if ev.cancelled != nil {
		c.cancelled = make(map[string]bool, len(ev.cancelled))
		for k := range ev.cancelled {
			c.cancelled[k] = true
		}
	}
	return &c
}

func (ev *event) overlaps(start, end time.Time) bool {
	return ev.start.Before(end) && ev.end.After(start)
}
