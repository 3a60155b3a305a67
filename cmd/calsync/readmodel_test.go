package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestReadModelOverGraphQL: an event the user made in Outlook is answered
// by calendarAvailability and calendarEvents from the mirror, with no Graph
// request; another company asking about the same user id sees nothing; a
// member may ask only about themself; an unlinked user is provider NONE.
func TestReadModelOverGraphQL(t *testing.T) {
	t.Parallel()
	a, emu := startWithEmulator(t, nil)
	admin := token(t, "acme", "ua", "user_admin")
	svc := token(t, "acme", "host", "service")
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", "taro.yamada@"+demoDomain); r.code() != "" {
		t.Fatal(r.Errors)
	}
	id := ownerCreate(t, emu, "taro.yamada@"+demoDomain, "私用") // 2026-12-03 10:00–11:00 JST
	deadline := time.Now().Add(10 * time.Second)
	for len(pull(t, a, svc)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the Outlook event never reached calsync")
		}
		time.Sleep(50 * time.Millisecond)
	}

	const avail = `query($u: [ID!]!) { calendarAvailability(userIds: $u, start: "2026-12-03T00:00:00+09:00", end: "2026-12-04T00:00:00+09:00") {
		userId provider status syncedAt busy { start end showAs } } }`
	type answer struct {
		UserID, Provider string
		Status           *string
		SyncedAt         *time.Time
		Busy             []struct {
			Start, End time.Time
			ShowAs     string
		}
	}
	ask := func(tok string, users ...string) ([]answer, string) {
		t.Helper()
		r := a.gql(t, tok, avail, map[string]any{"u": users})
		var out []answer
		_ = json.Unmarshal(r.Data["calendarAvailability"], &out)
		return out, r.code()
	}
	before := emu.LastRequestSeq()
	got, code := ask(svc, "u-taro", "u-nobody")
	if code != "" || len(got) != 2 {
		t.Fatalf("availability: %s %+v", code, got)
	}
	taro := got[0]
	if taro.UserID != "u-taro" || taro.Provider != "OFFICE365_OUTLOOK" || taro.Status == nil || *taro.Status != "ACTIVE" || taro.SyncedAt == nil ||
		len(taro.Busy) != 1 || taro.Busy[0].ShowAs != "BUSY" ||
		!taro.Busy[0].Start.Equal(time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC)) || !taro.Busy[0].End.Equal(time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)) {
		t.Fatalf("taro: %+v", taro)
	}
	if n := got[1]; n.UserID != "u-nobody" || n.Provider != "NONE" || n.Status != nil || n.SyncedAt != nil || len(n.Busy) != 0 {
		t.Fatalf("unlinked user: %+v", n)
	}
	if n := emu.LastRequestSeq() - before; n != 0 {
		t.Fatalf("answering availability made %d Graph requests", n)
	}

	const list = `query($u: ID!, $after: String) { calendarEvents(userId: $u, start: "2026-12-01T00:00:00Z", end: "2026-12-10T00:00:00Z", first: 1, after: $after) {
		edges { cursor node { outlookEventId subject showAs type start } } pageInfo { hasNextPage endCursor } } }`
	var conn struct {
		Edges []struct {
			Cursor string
			Node   map[string]any
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
	}
	r := a.gql(t, svc, list, map[string]any{"u": "u-taro"})
	if err := json.Unmarshal(r.Data["calendarEvents"], &conn); err != nil || len(conn.Edges) != 1 {
		t.Fatalf("calendarEvents: %s %+v", r.Data["calendarEvents"], r.Errors)
	}
	if n := conn.Edges[0].Node; n["outlookEventId"] != id || n["subject"] != "私用" || n["showAs"] != "BUSY" || n["type"] != "SINGLE_INSTANCE" || conn.PageInfo.HasNextPage {
		t.Fatalf("event: %+v %+v", n, conn.PageInfo)
	}

	// Another company's caller asking about the same user id sees none of
	// acme's calendar, and acme's cursor is not a cursor there.
	other := token(t, "other-co", "host", "service")
	if got, code := ask(other, "u-taro"); code != "" || len(got) != 1 || got[0].Provider != "NONE" || len(got[0].Busy) != 0 {
		t.Fatalf("another company: %s %+v", code, got)
	}
	r = a.gql(t, other, list, map[string]any{"u": "u-taro"})
	if string(r.Data["calendarEvents"]) != `{"edges":[],"pageInfo":{"hasNextPage":false,"endCursor":null}}` {
		t.Fatalf("another company's events: %s %+v", r.Data["calendarEvents"], r.Errors)
	}
	if r := a.gql(t, other, list, map[string]any{"u": "u-taro", "after": conn.Edges[0].Cursor}); r.code() != "INVALID_INPUT" {
		t.Fatalf("acme's cursor in another company: %+v", r.Errors)
	}

	// A member: themself yes, anyone else (even beside themself) no.
	member := token(t, "acme", "u-taro", "member")
	if got, code := ask(member, "u-taro"); code != "" || len(got) != 1 || len(got[0].Busy) != 1 {
		t.Fatalf("member about themself: %s %+v", code, got)
	}
	if _, code := ask(member, "u-taro", "u-hanako"); code != "FORBIDDEN" {
		t.Fatalf("member about another user: %s", code)
	}

	// Bounds answer INVALID_INPUT naming the field.
	r = a.gql(t, svc, `{ calendarAvailability(userIds: ["u"], start: "2026-12-01T00:00:00Z", end: "2027-02-02T00:00:00Z") { userId } }`, nil)
	if r.code() != "INVALID_INPUT" || r.Errors[0].Extensions["field"] != "end" {
		t.Fatalf("63 days: %+v", r.Errors)
	}
	many := make([]string, 501)
	for i := range many {
		many[i] = "u"
	}
	for _, users := range [][]string{many, {"u\x00"}, {"u-taro", strings.Repeat("u", 100_000)}} {
		if _, code := ask(svc, users...); code != "INVALID_INPUT" {
			t.Fatalf("userIds of %d ids (first %.8q): %s", len(users), users[0], code)
		}
	}
}
