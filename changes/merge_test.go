package changes_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// TestReminderAndMergedEditsReport (issue 16 §1): a reminder switched off
// or dismissed in Outlook is not a change the host hears of; an Outlook
// edit merged under a push the host made before sync-back saw it is still
// reported — that field only, once.
func TestReminderAndMergedEditsReport(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	in := calendar.Input{ExternalID: "job-m", Subject: "現場B", Start: "2026-12-02T09:00:00+09:00", End: "2026-12-02T12:00:00+09:00", ReminderMinutes: func() *int { v := 30; return &v }()}
	p, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	id := p.Event.OutlookEventID
	ownerEdit(t, e, "PATCH", "/"+id, map[string]any{"isReminderOn": false})
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events/"+id+"/dismissReminder", nil, nil)
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("reminder switched off and dismissed were reported: %+v", cs)
	}

	// The craftsman retitles it; before sync-back runs, the dispatcher
	// changes the location. Both stay; the retitle is reported, alone.
	ownerEdit(t, e, "PATCH", "/"+id, map[string]any{"subject": "現場B（裏口から）"})
	loc := "横浜市西区みなとみらい2-2-1"
	in.Location = &loc
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatalf("push over an unseen Outlook edit of another field: %v", err)
	}
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 1 || cs[0].ChangeType != "UPDATED" || !slices.Equal(cs[0].ChangedFields, []string{"subject"}) || cs[0].ExternalID == nil || *cs[0].ExternalID != "job-m" {
		t.Fatalf("after the merged push: %+v", cs)
	}
	if v := eventOf(t, cs[0]); v.Subject != "現場B（裏口から）" || v.Location != loc {
		t.Fatalf("reported event %+v", v)
	}
	// The host takes the reported title; pushing the entry again is then a
	// no-op: no write reaches Graph, nothing is reported.
	in.Subject = "現場B（裏口から）"
	since := e.Requests(0, func(graphemu.RequestRecord) bool { return true })
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	if n := e.Requests(0, func(graphemu.RequestRecord) bool { return true }); n != since {
		t.Errorf("a re-push of what Outlook holds made %d Graph calls", n-since)
	}
	drain(t, e)
	if n := len(allChanges(t, e)); n != 1 {
		t.Fatalf("a re-push produced changes: %d", n)
	}
}

// TestJobNotesKeepTheirLines (issue 16 §4): a multi-line note goes to
// Outlook as HTML with its line breaks, comes back as the same text (so a
// changeKey bump reports nothing and a re-push sends nothing), and an HTML
// body a user writes in Outlook reaches the host as plain text.
func TestJobNotesKeepTheirLines(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	note := "住所: 東京都港区芝公園4-2-8\r\n電話: 03-1234-5678\r\n\r\n持ち物:\r\n  ・脚立\r\n  ・延長コード <10m>"
	in := calendar.Input{ExternalID: "job-note", Subject: "現場C", Body: &note, Start: "2026-12-03T09:00:00+09:00", End: "2026-12-03T12:00:00+09:00"}
	p, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	var stored map[string]any
	for _, ev := range e.OutlookEvents(t, e.Mailbox) {
		if ev["id"] == p.Event.OutlookEventID {
			stored = ev["body"].(map[string]any)
		}
	}
	if stored["contentType"] != "html" || !strings.Contains(stored["content"].(string), "電話: 03-1234-5678<br><br>持ち物:<br>&nbsp;&nbsp;・脚立") ||
		!strings.Contains(stored["content"].(string), "&lt;10m&gt;") {
		t.Fatalf("body sent as %v", stored)
	}
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events/"+p.Event.OutlookEventID+"/dismissReminder", nil, nil)
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("an unchanged note read back as a change: %+v", cs)
	}
	before := e.Requests(0, func(graphemu.RequestRecord) bool { return true })
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	if n := e.Requests(0, func(graphemu.RequestRecord) bool { return true }); n != before {
		t.Errorf("re-pushing the same note made %d Graph calls", n-before)
	}

	mine := ownerEdit(t, e, "POST", "", map[string]any{"subject": "打合せ",
		"body":  map[string]any{"contentType": "html", "content": "<div>場所:&nbsp;本社 3F</div><p>議題<br>・安全&amp;品質</p>"},
		"start": map[string]any{"dateTime": "2026-12-04T10:00:00", "timeZone": "Tokyo Standard Time"},
		"end":   map[string]any{"dateTime": "2026-12-04T11:00:00", "timeZone": "Tokyo Standard Time"}})
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 1 || cs[0].OutlookEventID != mine["id"] || eventOf(t, cs[0]).Body != "場所: 本社 3F\n議題\n・安全&品質" {
		t.Fatalf("a user's HTML body reached the host as %q", eventOf(t, cs[len(cs)-1]).Body)
	}
}

// TestMergedPushIsNotAnEcho: a push merged over an Outlook edit whose own
// notification never came (dropped silently) leaves Outlook at a version
// calsync has not reported. The notification of that write is then the
// only news of the edit: it is not taken for an echo (not even on the
// replica that made the write), and the edit is reported.
func TestMergedPushIsNotAnEcho(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	in := calendar.Input{ExternalID: "job-lost", Subject: "現場L", Start: "2026-12-02T09:00:00+09:00", End: "2026-12-02T12:00:00+09:00"}
	p, err := e.Calendar.Upsert(ctx, co, "u1", in)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	e.Control(t, "POST", "/_emulator/faults", map[string]any{"kind": "dropNotifications", "count": 1, "silent": true}, nil)
	ownerEdit(t, e, "PATCH", "/"+p.Event.OutlookEventID, map[string]any{"subject": "現場L（中止）"})
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("an edit whose notification was lost was reported before any round: %+v", cs)
	}
	loc := "川崎市中原区"
	in.Location = &loc
	if _, err := e.Calendar.Upsert(ctx, co, "u1", in); err != nil {
		t.Fatal(err)
	}
	drain(t, e)
	cs := allChanges(t, e)
	if len(cs) != 1 || !slices.Equal(cs[0].ChangedFields, []string{"subject"}) || eventOf(t, cs[0]).Subject != "現場L（中止）" {
		t.Fatalf("the Outlook edit under the merged push: %+v", cs)
	}
}
