package outlook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestWireDecodingMatchesTheSDK checks the fast event decoder against
// kiota's parser and the SDK's model (what every event answer went
// through before) on random documents: for each, both read it or both
// refuse it, and what they read is equal. The documents mix Graph's own
// shapes with nulls, unknown enum values, values of the wrong type,
// times without an offset and recurring series, which the fast decoder
// leaves to kiota.
func TestWireDecodingMatchesTheSDK(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2026))
	fast, events := 0, 5000
	for i := range events {
		doc := randomEvent(rng)
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := sdkEvent(raw)
		got, gotErr := decodeEvent(raw)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("document %d: SDK error %v, decoder error %v\n%s", i, wantErr, gotErr, raw)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("document %d read differently:\n%s\nSDK:     %#v\ndecoder: %#v", i, raw, want, got)
		}
		if _, ok := fastEvent(raw); ok {
			fast++
		}
	}
	// The comparison means something only if the fast decoder took most of
	// them (the rest test the way back to kiota).
	if fast < events/5 || fast == events {
		t.Fatalf("the fast decoder read %d of %d documents: the generator no longer exercises both paths", fast, events)
	}
	t.Logf("%d of %d documents read by the fast decoder", fast, events)

	pages := 0
	for i := range 1000 {
		page := map[string]any{}
		var value []any
		for range rng.IntN(6) {
			if rng.IntN(4) == 0 {
				value = append(value, map[string]any{"id": pick(rng, "AAMkRemoved=", nil), "@removed": pick(rng, map[string]any{"reason": "deleted"}, nil)})
				continue
			}
			value = append(value, randomEvent(rng))
		}
		if rng.IntN(20) == 0 {
			value = append(value, nil)
		}
		page["value"] = value
		if rng.IntN(2) == 0 {
			page["@odata.nextLink"] = "https://graph.microsoft.com/v1.0/users/x/calendarView/delta?$skiptoken=abc"
		} else {
			page["@odata.deltaLink"] = pick(rng, "https://graph.microsoft.com/v1.0/users/x/calendarView/delta?$deltatoken=def", nil)
		}
		raw, err := json.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErr := sdkDeltaPage(raw)
		got, gotErr := decodeDeltaPage(raw)
		if (wantErr == nil) != (gotErr == nil) {
			t.Fatalf("page %d: SDK error %v, decoder error %v\n%s", i, wantErr, gotErr, raw)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("page %d read differently:\n%s\nSDK:     %#v\ndecoder: %#v", i, raw, want, got)
		}
		if wantErr == nil {
			pages++
		}
	}
	if pages == 0 {
		t.Fatal("no page was readable: the comparison tested nothing")
	}
}

// TestWireDecodingOfGraphsExample reads the event of Graph's own example
// answer (api-reference/v1.0/api/event-update.md, trimmed) on the fast
// path and checks each field calsync reads.
func TestWireDecodingOfGraphsExample(t *testing.T) {
	raw := []byte(`{
  "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('cd209b0b-3f83-4c35-82d2-d88a61820480')/events/$entity",
  "@odata.etag": "W/\"ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==\"",
  "id": "AAMkADQwMD",
  "createdDateTime": "2017-10-07T04:59:12.9698856Z",
  "lastModifiedDateTime": "2017-10-07T04:59:13.8017353Z",
  "changeKey": "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==",
  "categories": ["Red category"],
  "originalStartTimeZone": "Tokyo Standard Time",
  "originalEndTimeZone": "Tokyo Standard Time",
  "iCalUId": "040000008200E00074C5B7101A82E00800000000DA2B357D94C6D3010000000000000000100000003A2C1E4C8B2AFF4A9E2E3B56F1D4E1A8",
  "reminderMinutesBeforeStart": 15,
  "isReminderOn": true,
  "hasAttachments": false,
  "subject": "Let's go for lunch",
  "bodyPreview": "Does late morning work for you?",
  "importance": "normal",
  "sensitivity": "normal",
  "isAllDay": false,
  "isCancelled": false,
  "isOrganizer": true,
  "responseRequested": true,
  "seriesMasterId": null,
  "showAs": "busy",
  "type": "singleInstance",
  "webLink": "https://outlook.office365.com/owa/?itemid=AAMkADQwMD&exvsurl=1&path=/calendar/item",
  "onlineMeetingUrl": null,
  "recurrence": null,
  "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
  "body": {"contentType": "html", "content": "<html><body>Does late morning work for you?<br>Bring the plans.</body></html>"},
  "start": {"dateTime": "2017-04-15T11:00:00.0000000", "timeZone": "UTC"},
  "end": {"dateTime": "2017-04-15T12:00:00.0000000", "timeZone": "UTC"},
  "location": {"displayName": "Harry's Bar", "locationType": "default", "uniqueIdType": "unknown"},
  "attendees": [{"type": "required", "status": {"response": "none", "time": "0001-01-01T00:00:00Z"}, "emailAddress": {"name": "Samantha Booth", "address": "samanthab@contoso.com"}}],
  "organizer": {"emailAddress": {"name": "Dana Swope", "address": "danas@contoso.com"}}
}`)
	got, ok := fastEvent(raw)
	if !ok {
		t.Fatal("Graph's example answer was not read by the fast decoder")
	}
	want, err := sdkEvent(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read differently:\nSDK:     %#v\ndecoder: %#v", want, got)
	}
	if got.ID != "AAMkADQwMD" || got.ChangeKey != "ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ==" || got.Subject != "Let's go for lunch" ||
		got.Location != "Harry's Bar" || got.ShowAs != "busy" || got.Type != TypeSingleInstance || got.TimeZone != "Tokyo Standard Time" ||
		got.Start.Format("2006-01-02 15:04") != "2017-04-15 11:00" || got.End.Format("15:04") != "12:00" ||
		got.ReminderMinutes == nil || *got.ReminderMinutes != 15 || got.Body != "Does late morning work for you?\nBring the plans." ||
		got.LastModified.Format("2006-01-02T15:04:05.0000000") != "2017-10-07T04:59:13.8017353" {
		t.Fatalf("fields read wrongly: %#v", got)
	}
}

// pick returns one of vs at random.
func pick(rng *rand.Rand, vs ...any) any { return vs[rng.IntN(len(vs))] }

// randomEvent is a Graph event document with random fields: each present
// or not, mostly well-formed, sometimes null or of the wrong type.
func randomEvent(rng *rand.Rand) map[string]any {
	str := func() any {
		return pick(rng, "", "作業（変更）", "Let's go", `quote " and \ backslash`, "line\r\nbreak", "\u2028sep", "emoji 🗓", nil)
	}
	dateTime := func() any {
		return pick(rng, "2026-12-01T09:00:00.0000000", "2026-12-01T09:00:00", "2026-12-01T09:00:00.1234567",
			"2026-03-29T01:30:00.0000000", "2026-12-01T09:00:00Z", "not a time", "", nil)
	}
	offset := func() any {
		return pick(rng, "2026-12-01T09:00:00Z", "2026-12-01T09:00:00.1234567Z", "2026-12-01T18:00:00+09:00",
			"2026-12-01T09:00:00", "0001-01-01T00:00:00Z", "yesterday", nil,
			"2026-12-02T00:00:00Z", "2027-01-31T23:59:59.9999999Z", "2026-06-01T09:00:00-07:00", "2026-12-03T10:11:12.123Z")
	}
	fields := map[string]func() any{
		"id": str, "changeKey": str, "iCalUId": str, "subject": str, "originalStartTimeZone": str,
		"transactionId": str, "webLink": str, "seriesMasterId": str,
		"body": func() any {
			return pick(rng, map[string]any{"contentType": pick(rng, "html", "text", "HTML", "markdown", nil), "content": pick(rng,
				"<html><body><p>一行目</p><p>二行目 &amp; more</p></body></html>", "plain\r\ntext", "<b>bold</b><br>next", "", nil)}, nil)
		},
		"location": func() any {
			return pick(rng, map[string]any{"displayName": str(), "locationType": "default"}, map[string]any{}, nil)
		},
		"start": func() any { return pick(rng, map[string]any{"dateTime": dateTime(), "timeZone": "UTC"}, nil) },
		"end":   func() any { return pick(rng, map[string]any{"dateTime": dateTime(), "timeZone": "UTC"}, nil) },
		"isAllDay": func() any {
			return pick(rng, true, false, nil)
		},
		"showAs": func() any {
			return pick(rng, "free", "tentative", "busy", "oof", "workingElsewhere", "unknown", "Busy", "elsewhere", nil)
		},
		"sensitivity": func() any { return pick(rng, "normal", "personal", "private", "confidential", "secret", nil) },
		"categories": func() any {
			return pick(rng, []any{"Red category", "現場"}, []any{}, []any{"a", nil}, nil, []any{"Blue category"}, []any{"x", "y", "z"})
		},
		"reminderMinutesBeforeStart": func() any { return pick(rng, 15, 0, 1440, nil, 15.5, 1e10, 5, 30, 60, 120) },
		"isReminderOn":               func() any { return pick(rng, true, false, nil) },
		"singleValueExtendedProperties": func() any {
			return pick(rng, []any{map[string]any{"id": "String {7e2b4f35-2c1d-4a8e-9b61-3f0c5d9e8a17} Name calsyncExternalId", "value": str()}},
				[]any{}, []any{nil}, []any{map[string]any{"id": nil, "value": "v"}}, nil)
		},
		"lastModifiedDateTime": offset,
		"originalStart":        offset,
		"type": func() any {
			return pick(rng, "singleInstance", "occurrence", "exception", "seriesMaster", "other", nil)
		},
		"recurrence": func() any {
			return pick(rng, nil, nil, nil, map[string]any{
				"pattern": map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []any{"monday", "thursday"}, "firstDayOfWeek": "sunday", "index": "first"},
				"range":   map[string]any{"type": "endDate", "startDate": "2026-12-01", "endDate": "2027-03-31", "recurrenceTimeZone": "Tokyo Standard Time"},
			})
		},
		// Fields calsync does not read, always well-formed.
		"@odata.etag": func() any { return `W/"ZlnW4RIAV06KYYwlrfNZvQAALfZeRQ=="` },
		"importance":  func() any { return "normal" },
		"attendees": func() any {
			return []any{map[string]any{"type": "required", "emailAddress": map[string]any{"name": "Samantha Booth", "address": "samanthab@contoso.com"}}}
		},
	}
	doc := map[string]any{}
	for name, value := range fields {
		if rng.IntN(10) < 7 {
			v := value()
			// Values of the wrong type stay rare, so most documents are
			// ones Graph could send.
			if name != "@odata.etag" && name != "importance" && name != "attendees" && rng.IntN(60) == 0 {
				if _, isString := v.(string); isString {
					v = 5
				} else {
					v = fmt.Sprint(v)
				}
			}
			doc[name] = v
		}
	}
	return doc
}

// TestHostileAnswerLengths checks capped on every way an answer can be
// too long: a declared length over the bound fails at the first read, an
// undeclared (chunked) body fails once it passes the bound, and a body of
// exactly the bound is read whole.
func TestHostileAnswerLengths(t *testing.T) {
	const bound = 1000
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for i := 0; i < n; i += 100 {
			_, _ = w.Write(bytes.Repeat([]byte("x"), min(100, n-i)))
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
		}
	}))
	defer srv.Close()
	client := &http.Client{Transport: capped{next: http.DefaultTransport, max: bound}}
	for _, tc := range []struct {
		query string
		ok    bool
	}{
		{"n=1000", true}, {"n=1000&chunked=1", true}, {"n=999&chunked=1", true},
		{"n=1001", false}, {"n=1001&chunked=1", false}, {"n=5000000", false}, {"n=5000000&chunked=1", false},
	} {
		resp, err := client.Get(srv.URL + "/?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "over 1000 bytes")) || len(body) > bound {
			t.Errorf("%s: read %d bytes, error %v", tc.query, len(body), err)
		}
	}
}
