package changes_test

import (
	"context"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// TestResyncIntervalCatchesLostNotifications (issue 16 §3): with every
// change notification lost — and no "missed" either — Outlook edits still
// reach the host, each once, by the round every link gets within
// CALSYNC_RESYNC_INTERVAL; a link that had a round recently is skipped.
func TestResyncIntervalCatchesLostNotifications(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	link := e.Link(t, "u1", e.Mailbox)
	drain(t, e)
	if err := e.Emu.AddFault(graphemu.Fault{Kind: "dropNotifications", Count: 1000, Silent: true}); err != nil {
		t.Fatal(err)
	}
	first := ownerEdit(t, e, "POST", "", newOutlookEvent("通知の来ない予定"))
	ownerEdit(t, e, "PATCH", "/"+first["id"].(string), map[string]any{"subject": "通知の来ない予定（変更）"})
	second := ownerEdit(t, e, "POST", "", newOutlookEvent("もう一つ"))
	drain(t, e)
	if cs := allChanges(t, e); len(cs) != 0 {
		t.Fatalf("changes arrived although every notification was lost: %+v", cs)
	}

	p := changes.NewPoller(e.Store, e.Syncer, 30*time.Minute, e.Log)
	now := time.Now()
	if n := p.RunOnce(ctx, now); n != 0 {
		t.Fatalf("%d rounds before the interval passed (the link synced when it was made)", n)
	}
	later := now.Add(31 * time.Minute)
	e.Syncer.SetClockForTest(func() time.Time { return later })
	if n := p.RunOnce(ctx, later); n != 1 {
		t.Fatalf("%d rounds once the interval passed, want 1", n)
	}
	cs := allChanges(t, e)
	got := map[string]string{}
	for _, c := range cs {
		got[c.OutlookEventID] = eventOf(t, c).Subject
	}
	if len(cs) != 2 || got[first["id"].(string)] != "通知の来ない予定（変更）" || got[second["id"].(string)] != "もう一つ" {
		t.Fatalf("after the resync round: %v", got)
	}

	// Right after a round the link is not due again.
	before := e.Requests(0, func(graphemu.RequestRecord) bool { return true })
	if n := p.RunOnce(ctx, later.Add(time.Minute)); n != 0 {
		t.Fatalf("%d rounds right after one", n)
	}
	if n := e.Requests(0, func(graphemu.RequestRecord) bool { return true }); n != before {
		t.Errorf("%d Graph calls for a link that just had a round", n-before)
	}
	row, err := e.Store.Link(ctx, testenv.Company, "u1")
	if err != nil || row.ID != link.ID || row.NextPollAt == nil || row.NextPollAt.Sub(later) < 29*time.Minute {
		t.Fatalf("next poll after the round: %+v %v", row, err)
	}
}
