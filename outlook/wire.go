package outlook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoft/kiota-abstractions-go/serialization"
	jsonserialization "github.com/microsoft/kiota-serialization-json-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// Events are sent through the SDK's request adapter as usual — the same
// middleware, authentication, retries and OData error mapping — but their
// answers are read as bytes (SendPrimitive "[]byte", the SDK's way of
// taking a body as it is) and decoded here with encoding/json into the
// fields calsync reads. kiota's reader builds a tree of the whole
// document and then a model with a backing store, a map of field
// deserialisers per object: in a profile of single pushes it was about a
// third of a millisecond of CPU per event, more than half of the SDK's
// share of the push. Anything the fast decoder does not take plainly (a
// recurring series' pattern, a value of an unexpected type, a time kiota
// would read differently, a null inside a list) is read by kiota's own
// parser instead, so every answer reads exactly as it did before
// (TestWireDecodingMatchesTheSDK compares the two on random documents).

// graphErrors maps every failed answer to the SDK's ODataError, as the
// SDK's own request builders do.
var graphErrors = abstractions.ErrorMappings{"XXX": odataerrors.CreateODataErrorFromDiscriminatorValue}

// errEmptyAnswer is a 2xx answer without the body an event call returns.
var errEmptyAnswer = errors.New("graph answered without a body")

// sendRaw sends ri through the SDK and returns the answer's body.
func (s *Session) sendRaw(ctx context.Context, ri *abstractions.RequestInformation) ([]byte, error) {
	res, err := s.adapter.SendPrimitive(ctx, ri, "[]byte", graphErrors)
	if err != nil {
		return nil, err
	}
	raw, _ := res.([]byte)
	if len(raw) == 0 {
		return nil, errEmptyAnswer
	}
	return raw, nil
}

// sendEvent sends ri through the SDK and decodes the event it answers.
func (s *Session) sendEvent(ctx context.Context, ri *abstractions.RequestInformation) (Event, error) {
	raw, err := s.sendRaw(ctx, ri)
	if err != nil {
		return Event{}, err
	}
	return decodeEvent(raw)
}

// wireDateTime is Graph's dateTimeTimeZone.
type wireDateTime struct {
	DateTime *string `json:"dateTime"`
}

// wireEvent is the part of Graph's event resource (resources/event.md)
// that Event holds.
type wireEvent struct {
	ID        *string `json:"id"`
	ChangeKey *string `json:"changeKey"`
	ICalUID   *string `json:"iCalUId"`
	Subject   *string `json:"subject"`
	Body      *struct {
		ContentType *string `json:"contentType"`
		Content     *string `json:"content"`
	} `json:"body"`
	Location *struct {
		DisplayName *string `json:"displayName"`
	} `json:"location"`
	Start                         *wireDateTime `json:"start"`
	End                           *wireDateTime `json:"end"`
	OriginalStartTimeZone         *string       `json:"originalStartTimeZone"`
	IsAllDay                      *bool         `json:"isAllDay"`
	ShowAs                        *string       `json:"showAs"`
	Sensitivity                   *string       `json:"sensitivity"`
	Categories                    []*string     `json:"categories"`
	ReminderMinutesBeforeStart    *int32        `json:"reminderMinutesBeforeStart"`
	IsReminderOn                  *bool         `json:"isReminderOn"`
	SingleValueExtendedProperties []*struct {
		ID    *string `json:"id"`
		Value *string `json:"value"`
	} `json:"singleValueExtendedProperties"`
	LastModifiedDateTime *string         `json:"lastModifiedDateTime"`
	TransactionID        *string         `json:"transactionId"`
	WebLink              *string         `json:"webLink"`
	Type                 *string         `json:"type"`
	SeriesMasterID       *string         `json:"seriesMasterId"`
	OriginalStart        *string         `json:"originalStart"`
	Recurrence           json.RawMessage `json:"recurrence"`
}

// decodeEvent reads one event as Graph writes it: the fast decoder when it
// can, kiota's parser when it cannot (see above).
func decodeEvent(raw []byte) (Event, error) {
	if e, ok := fastEvent(raw); ok {
		return e, nil
	}
	return sdkEvent(raw)
}

// sdkEvent reads an event through kiota's JSON parser and the SDK's model.
func sdkEvent(raw []byte) (Event, error) {
	m, err := sdkRead[models.Eventable](raw, models.CreateEventFromDiscriminatorValue)
	if err != nil {
		return Event{}, err
	}
	return fromModel(m), nil
}

// sdkRead reads raw through kiota's JSON parser into the SDK model that
// factory makes, as the SDK's request builders do.
func sdkRead[T any](raw []byte, factory serialization.ParsableFactory) (T, error) {
	var zero T
	node, err := jsonserialization.NewJsonParseNode(raw)
	if err != nil {
		return zero, err
	}
	v, err := node.GetObjectValue(factory)
	if err != nil {
		return zero, err
	}
	m, ok := v.(T)
	if !ok {
		return zero, errEmptyAnswer // null, or not the model asked for
	}
	return m, nil
}

// fastEvent decodes raw with encoding/json, or says it cannot match what
// kiota would read.
func fastEvent(raw []byte) (Event, bool) {
	var w wireEvent
	if isNull(raw) || json.Unmarshal(raw, &w) != nil || (len(w.Recurrence) > 0 && !isNull(w.Recurrence)) {
		return Event{}, false
	}
	e := Event{
		ID: deref(w.ID), ChangeKey: deref(w.ChangeKey), ICalUID: deref(w.ICalUID), Subject: deref(w.Subject),
		TimeZone: deref(w.OriginalStartTimeZone), IsAllDay: deref(w.IsAllDay), TransactionID: deref(w.TransactionID),
		WebLink: deref(w.WebLink), Type: TypeSingleInstance, SeriesMasterID: deref(w.SeriesMasterID),
	}
	if w.Start != nil {
		e.Start = parseGraphTimeString(w.Start.DateTime)
	}
	if w.End != nil {
		e.End = parseGraphTimeString(w.End.DateTime)
	}
	if w.Categories != nil {
		e.Categories = make([]string, len(w.Categories))
		for i, c := range w.Categories {
			if c == nil {
				return Event{}, false
			}
			e.Categories[i] = *c
		}
	}
	if w.Type != nil {
		if t, _ := models.ParseEventType(*w.Type); t != nil {
			e.Type = t.(*models.EventType).String()
		}
	}
	var ok bool
	if e.OriginalStart, ok = offsetTime(w.OriginalStart); !ok {
		return Event{}, false
	}
	if e.LastModified, ok = offsetTime(w.LastModifiedDateTime); !ok {
		return Event{}, false
	}
	if w.Body != nil {
		html := false
		if w.Body.ContentType != nil {
			ct, _ := models.ParseBodyType(*w.Body.ContentType)
			html = ct != nil && *ct.(*models.BodyType) == models.HTML_BODYTYPE
		}
		e.Body = bodyText(deref(w.Body.Content), html)
	}
	if w.Location != nil {
		e.Location = deref(w.Location.DisplayName)
	}
	if w.ShowAs != nil {
		if v, _ := models.ParseFreeBusyStatus(*w.ShowAs); v != nil {
			e.ShowAs = v.(*models.FreeBusyStatus).String()
		}
	}
	if w.Sensitivity != nil {
		if v, _ := models.ParseSensitivity(*w.Sensitivity); v != nil {
			e.Sensitivity = v.(*models.Sensitivity).String()
		}
	}
	if w.ReminderMinutesBeforeStart != nil && deref(w.IsReminderOn) {
		e.ReminderMinutes = ptr(int(*w.ReminderMinutesBeforeStart))
	}
	if len(w.SingleValueExtendedProperties) > 0 {
		e.ExtendedProperties = make(map[string]string, len(w.SingleValueExtendedProperties))
		for _, p := range w.SingleValueExtendedProperties {
			if p == nil {
				return Event{}, false
			}
			e.ExtendedProperties[deref(p.ID)] = deref(p.Value)
		}
	}
	return e, true
}

// isNull reports whether raw is JSON's null.
func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// offsetTime reads an Edm.DateTimeOffset (lastModifiedDateTime,
// originalStart) in UTC, as fromModel does; false when kiota would read it
// otherwise: a value without an offset (kiota adds the local zone's) or one
// it refuses.
func offsetTime(s *string) (time.Time, bool) {
	if s == nil {
		return time.Time{}, true
	}
	if len(*s) == 19 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// wireDeltaPage is a calendarView delta answer (api/event-delta.md).
type wireDeltaPage struct {
	Value     []json.RawMessage `json:"value"`
	NextLink  *string           `json:"@odata.nextLink"`
	DeltaLink *string           `json:"@odata.deltaLink"`
}

// wireRemoved tells a removed entry (with @removed) from a changed one.
type wireRemoved struct {
	ID      *string         `json:"id"`
	Removed json.RawMessage `json:"@removed"`
}

// decodeDeltaPage reads a delta page: its entries one by one (each through
// decodeEvent), or the whole page through kiota when the page itself is
// not plain.
func decodeDeltaPage(raw []byte) (DeltaPage, error) {
	var w wireDeltaPage
	if err := json.Unmarshal(raw, &w); err != nil {
		return sdkDeltaPage(raw)
	}
	page := DeltaPage{NextLink: deref(w.NextLink), DeltaLink: deref(w.DeltaLink)}
	for _, item := range w.Value {
		var r wireRemoved
		if isNull(item) || json.Unmarshal(item, &r) != nil {
			return sdkDeltaPage(raw)
		}
		if len(r.Removed) > 0 && !isNull(r.Removed) {
			page.Removed = append(page.Removed, deref(r.ID))
			continue
		}
		e, err := decodeEvent(item)
		if err != nil {
			return sdkDeltaPage(raw)
		}
		page.Changed = append(page.Changed, e)
	}
	return page, nil
}
