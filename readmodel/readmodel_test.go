package readmodel_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/schedule"
	"github.com/tehaishokunin/calsync/internal/testenv"
	"github.com/tehaishokunin/calsync/links"
	"github.com/tehaishokunin/calsync/readmodel"
)

// Zones events are written in, as Outlook names them (Windows names), with
// their IANA twins for writing local times.
var zones = []struct{ windows, iana string }{
	{"Tokyo Standard Time", "Asia/Tokyo"},
	{"Eastern Standard Time", "America/New_York"},
	{"GMT Standard Time", "Europe/London"},
	{"AUS Eastern Standard Time", "Australia/Sydney"},
	{"India Standard Time", "Asia/Kolkata"},
	{"UTC", "UTC"},
}

var showAs = []string{"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"}

// TestMirrorMatchesOutlook is the property test: random single, all-day and
// recurring events in random zones and showAs, then random edits,
// deletions, instance edits and cancellations made in Outlook; after each
// step calendarAvailability and calendarEvents, answered from the mirror,
// must equal a brute-force answer computed from the emulator's own
// calendar view.
func TestMirrorMatchesOutlook(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			e := testenv.New(t)
			rng := rand.New(rand.NewPCG(seed, 17))
			base := time.Now().UTC().Truncate(24 * time.Hour).Add(48 * time.Hour)
			users := map[string]string{"u1": e.Mailbox, "u2": e.Mailbox2}
			for u, mb := range users {
				for range 8 {
					e.Control(t, "POST", "/_emulator/users/"+mb+"/events", randomEvent(rng, base), nil)
				}
				e.Link(t, u, mb) // the first round reads what is already there
			}
			e.Drain(t)
			tok := graphToken(t, e)
			check(t, e, tok, rng, base, users)
			for step := range 4 {
				for _, mb := range users {
					mutate(t, e, tok, rng, base, mb)
				}
				e.Drain(t)
				check(t, e, tok, rng, base, users)
				if step == 2 {
					// A full round rebuilds each mirror from what it sees.
					for u := range users {
						l, _ := e.Store.Link(context.Background(), testenv.Company, u)
						if _, err := e.Syncer.Sync(context.Background(), l.ID, true); err != nil {
							t.Fatal(err)
						}
					}
					check(t, e, tok, rng, base, users)
				}
			}
		})
	}
}

// randomEvent is an Outlook-made event within 14 days of base.
func randomEvent(rng *rand.Rand, base time.Time) map[string]any {
	z := zones[rng.IntN(len(zones))]
	loc, _ := time.LoadLocation(z.iana)
	day := base.AddDate(0, 0, rng.IntN(14)).In(loc)
	ev := map[string]any{"subject": fmt.Sprintf("予定 %d", rng.IntN(1000)), "showAs": showAs[rng.IntN(len(showAs))]}
	local := func(t time.Time) map[string]any {
		return map[string]any{"dateTime": t.Format("2006-01-02T15:04:05"), "timeZone": z.windows}
	}
	switch rng.IntN(4) {
	case 0: // all-day, one to three days
		d := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
		ev["isAllDay"] = true
		ev["start"], ev["end"] = local(d), local(d.AddDate(0, 0, 1+rng.IntN(3)))
	case 1: // a daily or weekly series
		start := time.Date(day.Year(), day.Month(), day.Day(), 6+rng.IntN(12), 15*rng.IntN(4), 0, 0, loc)
		ev["start"], ev["end"] = local(start), local(start.Add(time.Duration(30+15*rng.IntN(8))*time.Minute))
		pattern := map[string]any{"type": "daily", "interval": 1 + rng.IntN(2)}
		if rng.IntN(2) == 0 {
			pattern = map[string]any{"type": "weekly", "interval": 1, "daysOfWeek": []string{strings.ToLower(start.Weekday().String())}}
		}
		ev["recurrence"] = map[string]any{"pattern": pattern,
			"range": map[string]any{"type": "numbered", "startDate": start.Format("2006-01-02"), "numberOfOccurrences": 2 + rng.IntN(4)}}
	default: // timed, sometimes overlapping others, sometimes past midnight
		start := time.Date(day.Year(), day.Month(), day.Day(), rng.IntN(24), 15*rng.IntN(4), 0, 0, loc)
		ev["start"], ev["end"] = local(start), local(start.Add(time.Duration(15+15*rng.IntN(16))*time.Minute))
	}
	return ev
}

// mutate makes a few random Outlook-side changes in one mailbox: new
// events, edits of time and showAs, deletions, and edits or cancellations
// of one instance of a series.
func mutate(t *testing.T, e *testenv.Env, tok string, rng *rand.Rand, base time.Time, mailbox string) {
	t.Helper()
	view := calendarView(t, e, tok, mailbox, base.Add(-24*time.Hour), base.AddDate(0, 0, 40))
	for range 3 {
		switch k := rng.IntN(5); {
		case k == 0 || len(view) == 0:
			e.Control(t, "POST", "/_emulator/users/"+mailbox+"/events", randomEvent(rng, base), nil)
		default:
			v := view[rng.IntN(len(view))]
			path := "/_emulator/users/" + mailbox + "/events/" + v.ID
			switch {
			case k == 1:
				e.Control(t, "DELETE", path, nil, nil) // the event, or one instance of a series
			case k == 2:
				e.Control(t, "PATCH", path, map[string]any{"showAs": showAs[rng.IntN(len(showAs))]}, nil)
			case v.IsAllDay:
				e.Control(t, "PATCH", path, map[string]any{"subject": "moved"}, nil)
			default:
				shift := time.Duration(rng.IntN(9)-4) * 45 * time.Minute
				s, end := v.start().Add(shift), v.end().Add(shift+time.Duration(rng.IntN(3))*15*time.Minute)
				e.Control(t, "PATCH", path, map[string]any{
					"start": map[string]any{"dateTime": s.Format("2006-01-02T15:04:05"), "timeZone": "UTC"},
					"end":   map[string]any{"dateTime": end.Format("2006-01-02T15:04:05"), "timeZone": "UTC"}}, nil)
			}
		}
	}
}

// check compares both answers with brute force over a few ranges: the
// whole span the events live in, and random minute-aligned pieces of it.
func check(t *testing.T, e *testenv.Env, tok string, rng *rand.Rand, base time.Time, users map[string]string) {
	t.Helper()
	ctx := context.Background()
	ranges := [][2]time.Time{{base.Add(-24 * time.Hour), base.AddDate(0, 0, 20)}}
	for range 3 {
		s := base.Add(time.Duration(rng.IntN(14*24*60)) * time.Minute)
		ranges = append(ranges, [2]time.Time{s, s.Add(time.Duration(1+rng.IntN(5*24*60)) * time.Minute)})
	}
	ids := []string{"u1", "nobody", "u2"}
	for _, r := range ranges {
		got, err := e.ReadModel.Availability(ctx, testenv.Company, ids, r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].UserID != "u1" || got[1].UserID != "nobody" || got[2].UserID != "u2" {
			t.Fatalf("answers not in the order asked: %+v", got)
		}
		if got[1].Provider != db.ProviderNone || len(got[1].Busy) != 0 || got[1].Status != nil {
			t.Fatalf("unlinked user: %+v", got[1])
		}
		for _, a := range []readmodel.Availability{got[0], got[2]} {
			view := calendarView(t, e, tok, users[a.UserID], r[0], r[1])
			want := bruteBusy(view, r[0], r[1])
			if !slices.Equal(a.Busy, want) {
				t.Fatalf("busy of %s in %v–%v:\n got %v\nwant %v", a.UserID, r[0], r[1], a.Busy, want)
			}
			if a.Provider != db.ProviderOutlook || a.Status == nil || *a.Status != db.LinkActive || a.SyncedAt == nil {
				t.Fatalf("link facts of %s: %+v", a.UserID, a)
			}
			if l, err := e.Store.Link(ctx, testenv.Company, a.UserID); err != nil || l.LastSyncedAt == nil || !l.LastSyncedAt.Equal(*a.SyncedAt) {
				t.Fatalf("syncedAt of %s is %v, the link's last round %+v (%v)", a.UserID, a.SyncedAt, l, err)
			}
			checkEvents(t, e, a.UserID, view, r[0], r[1])
		}
	}
}

// checkEvents pages through calendarEvents three at a time and compares
// the events (id, times, showAs) with the calendar view.
func checkEvents(t *testing.T, e *testenv.Env, user string, view []viewEvent, start, end time.Time) {
	t.Helper()
	type item struct {
		id     string
		s, e   time.Time
		showAs string
	}
	var got, want []item
	after := ""
	var last time.Time
	for pages := 0; ; pages++ {
		p, err := e.ReadModel.Events(context.Background(), testenv.Company, user, start, end, 3, after)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range p.Events {
			s, en, ok := ev.Span()
			if !ok {
				t.Fatalf("listed event without a span: %+v", ev)
			}
			if s.Before(last) {
				t.Fatalf("events not in start order: %v after %v", s, last)
			}
			last = s
			got = append(got, item{ev.OutlookEventID, s.UTC(), en.UTC(), ev.BusyAs()})
		}
		if !p.HasNext {
			break
		}
		if pages > 200 {
			t.Fatal("paging does not end")
		}
		after = p.EndCursor
	}
	for _, v := range view {
		want = append(want, item{v.ID, v.start(), v.end(), enumName(v.ShowAs)})
	}
	cmp := func(a, b item) int { return strings.Compare(a.id, b.id) }
	slices.SortFunc(got, cmp)
	slices.SortFunc(want, cmp)
	if !slices.Equal(got, want) {
		t.Fatalf("events of %s in %v–%v:\n got %v\nwant %v", user, start, end, got, want)
	}
}

// bruteBusy marks every minute of [start, end) each event of each showAs
// other than free covers, and reads the runs back: the slowest possible
// way to merge, clip and sort.
func bruteBusy(view []viewEvent, start, end time.Time) []readmodel.Busy {
	minutes := int(end.Sub(start) / time.Minute)
	marks := map[string][]bool{}
	for _, v := range view {
		st := enumName(v.ShowAs)
		if st == "FREE" {
			continue
		}
		if marks[st] == nil {
			marks[st] = make([]bool, minutes)
		}
		for m := range minutes {
			at := start.Add(time.Duration(m) * time.Minute)
			if !at.Before(v.start()) && at.Before(v.end()) {
				marks[st][m] = true
			}
		}
	}
	var out []readmodel.Busy
	for st, m := range marks {
		for i := 0; i < minutes; {
			if !m[i] {
				i++
				continue
			}
			j := i
			for j < minutes && m[j] {
				j++
			}
			out = append(out, readmodel.Busy{Start: start.Add(time.Duration(i) * time.Minute), End: start.Add(time.Duration(j) * time.Minute), ShowAs: st})
			i = j
		}
	}
	slices.SortFunc(out, func(a, b readmodel.Busy) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ShowAs, b.ShowAs)
	})
	if out == nil {
		out = []readmodel.Busy{}
	}
	return out
}

func enumName(graph string) string {
	if graph == "" {
		return "BUSY" // Graph's default showAs
	}
	return schedule.EnumName(graph)
}

type viewEvent struct {
	ID       string `json:"id"`
	ShowAs   string `json:"showAs"`
	IsAllDay bool   `json:"isAllDay"`
	Start    struct {
		DateTime string `json:"dateTime"`
	} `json:"start"`
	End struct {
		DateTime string `json:"dateTime"`
	} `json:"end"`
}

func parseUTC(s string) time.Time {
	t, err := time.Parse("2006-01-02T15:04:05.9999999", s)
	if err != nil {
		panic(err)
	}
	return t
}

func (v viewEvent) start() time.Time { return parseUTC(v.Start.DateTime) }
func (v viewEvent) end() time.Time   { return parseUTC(v.End.DateTime) }

// graphToken is an app token from the emulator's identity endpoint, for
// reading the calendar view as Graph serves it.
func graphToken(t *testing.T, e *testenv.Env) string {
	t.Helper()
	form := url.Values{"client_id": {testenv.ClientID}, "client_secret": {testenv.Secret},
		"scope": {"https://graph.microsoft.com/.default"}, "grant_type": {"client_credentials"}}
	resp, err := e.Emu.Client().PostForm(e.Emu.URL+"/"+testenv.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("token: %v (%d)", err, resp.StatusCode)
	}
	return out.AccessToken
}

// calendarView is the mailbox's calendar view of [start, end) in UTC, every
// page.
func calendarView(t *testing.T, e *testenv.Env, tok, mailbox string, start, end time.Time) []viewEvent {
	t.Helper()
	next := e.Emu.URL + "/v1.0/users/" + mailbox + "/calendarView?" + url.Values{
		"startDateTime": {start.Format(time.RFC3339)}, "endDateTime": {end.Format(time.RFC3339)}, "$top": {"100"}}.Encode()
	var out []viewEvent
	for next != "" {
		req, _ := http.NewRequest("GET", next, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Prefer", `IdType="ImmutableId"`) // the ids calsync keeps
		resp, err := e.Emu.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Value []viewEvent `json:"value"`
			Next  string      `json:"@odata.nextLink"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("calendarView: %v (%d)", err, resp.StatusCode)
		}
		out, next = append(out, page.Value...), page.Next
	}
	return out
}

// TestMirrorFollowsTheLink: unlinking drops the user's mirror (the answer
// becomes provider NONE and the rows go), relinking rebuilds it from the
// first round, and linking to another mailbox shows only that one's events.
func TestMirrorFollowsTheLink(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(24 * time.Hour).Add(72 * time.Hour)
	at := func(h int) map[string]any {
		return map[string]any{"dateTime": base.Add(time.Duration(h) * time.Hour).Format("2006-01-02T15:04:05"), "timeZone": "UTC"}
	}
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events", map[string]any{"subject": "taro", "start": at(9), "end": at(10)}, nil)
	e.Control(t, "POST", "/_emulator/users/"+e.Mailbox2+"/events", map[string]any{"subject": "hanako", "start": at(13), "end": at(15), "showAs": "oof"}, nil)
	l := e.Link(t, "u1", e.Mailbox)
	e.Drain(t)
	busy := func() []readmodel.Busy {
		t.Helper()
		a, err := e.ReadModel.Availability(ctx, testenv.Company, []string{"u1"}, base, base.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return a[0].Busy
	}
	want := []readmodel.Busy{{Start: base.Add(9 * time.Hour), End: base.Add(10 * time.Hour), ShowAs: "BUSY"}}
	if got := busy(); !slices.Equal(got, want) {
		t.Fatalf("linked: %v, want %v", got, want)
	}
	rows := func() int {
		var n int
		if err := e.Store.DB().NewRaw("SELECT count(*) FROM mirror_events WHERE link_id = ?", l.ID).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if rows() != 1 {
		t.Fatalf("%d mirror rows, want 1", rows())
	}

	if _, err := e.Links.Set(ctx, testenv.Company, "admin", linksInput("u1", db.ProviderNone, "")); err != nil {
		t.Fatal(err)
	}
	if got := busy(); len(got) != 0 || rows() != 0 {
		t.Fatalf("after unlink: busy %v, %d mirror rows", got, rows())
	}
	a, _ := e.ReadModel.Availability(ctx, testenv.Company, []string{"u1"}, base, base.Add(time.Hour))
	if a[0].Provider != db.ProviderNone || a[0].Status != nil || a[0].SyncedAt != nil {
		t.Fatalf("unlinked answer: %+v", a[0])
	}

	e.Link(t, "u1", e.Mailbox)
	e.Drain(t)
	if got := busy(); !slices.Equal(got, want) {
		t.Fatalf("relinked: %v, want %v", got, want)
	}

	e.Link(t, "u1", e.Mailbox2)
	e.Drain(t)
	want = []readmodel.Busy{{Start: base.Add(13 * time.Hour), End: base.Add(15 * time.Hour), ShowAs: "OOF"}}
	if got := busy(); !slices.Equal(got, want) {
		t.Fatalf("linked to another mailbox: %v, want %v", got, want)
	}
}

// TestBusyMergesAndClips pins the merge rules on a hand-made calendar:
// same showAs overlapping or touching merge, different ones do not, FREE
// is never busy, an all-day event covers its day in its own zone, the
// answer is clipped to the range, and an event of no length is listed but
// never busy.
func TestBusyMergesAndClips(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(96 * time.Hour)
	utc := func(h, m int) map[string]any {
		return map[string]any{"dateTime": day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Format("2006-01-02T15:04:05"), "timeZone": "UTC"}
	}
	mk := func(subject string, s, en map[string]any, extra map[string]any) {
		ev := map[string]any{"subject": subject, "start": s, "end": en}
		for k, v := range extra {
			ev[k] = v
		}
		e.Control(t, "POST", "/_emulator/users/"+e.Mailbox+"/events", ev, nil)
	}
	mk("a", utc(9, 0), utc(10, 0), nil)
	mk("b touches a", utc(10, 0), utc(11, 0), nil)
	mk("c overlaps b", utc(10, 30), utc(12, 0), nil)
	mk("tentative inside", utc(9, 30), utc(9, 45), map[string]any{"showAs": "tentative"})
	mk("free", utc(13, 0), utc(14, 0), map[string]any{"showAs": "free"})
	mk("no length", utc(14, 45), utc(14, 45), nil)
	mk("starts before the range", utc(-2, 0), utc(1, 0), map[string]any{"showAs": "oof"})
	tokyoDay := day.AddDate(0, 0, 1).Format("2006-01-02")
	tokyoNext := day.AddDate(0, 0, 2).Format("2006-01-02")
	mk("all-day in Tokyo", map[string]any{"dateTime": tokyoDay + "T00:00:00", "timeZone": "Tokyo Standard Time"},
		map[string]any{"dateTime": tokyoNext + "T00:00:00", "timeZone": "Tokyo Standard Time"}, map[string]any{"isAllDay": true, "showAs": "workingElsewhere"})
	e.Link(t, "u1", e.Mailbox)
	e.Drain(t)

	a, err := e.ReadModel.Availability(ctx, testenv.Company, []string{"u1", "u1"}, day, day.Add(36*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	h := func(x float64) time.Time { return day.Add(time.Duration(x * float64(time.Hour))) }
	want := []readmodel.Busy{
		{Start: h(0), End: h(1), ShowAs: "OOF"},
		{Start: h(9), End: h(12), ShowAs: "BUSY"},
		{Start: h(9.5), End: h(9.75), ShowAs: "TENTATIVE"},
		{Start: h(15), End: h(24 + 15), ShowAs: "WORKING_ELSEWHERE"}, // Tokyo's day: 15:00 UTC to 15:00 UTC
	}
	want[3].End = h(36) // clipped
	if len(a) != 2 || !slices.Equal(a[0].Busy, want) || !slices.Equal(a[1].Busy, want) {
		t.Fatalf("busy:\n got %v\nwant %v", a, want)
	}
	p, err := e.ReadModel.Events(ctx, testenv.Company, "u1", h(14.5), h(15.5), 0, "")
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, ev := range p.Events {
		subjects = append(subjects, ev.Subject)
	}
	if !slices.Equal(subjects, []string{"no length", "all-day in Tokyo"}) {
		t.Fatalf("events 14:30–15:30: %v", subjects)
	}
}

// TestBadQuestions: every bound answers INVALID_INPUT naming its field.
func TestBadQuestions(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	now := time.Now().UTC()
	many := make([]string, readmodel.MaxUsers+1)
	for i := range many {
		many[i] = fmt.Sprint("u", i)
	}
	cases := []struct {
		name  string
		err   error
		field string
	}{
		{"501 users", availErr(e.ReadModel.Availability(ctx, testenv.Company, many, now, now.Add(time.Hour))), "userIds"},
		{"63 days", availErr(e.ReadModel.Availability(ctx, testenv.Company, []string{"u1"}, now, now.Add(63*24*time.Hour))), "end"},
		{"end before start", availErr(e.ReadModel.Availability(ctx, testenv.Company, []string{"u1"}, now, now.Add(-time.Hour))), "end"},
		{"empty range", availErr(e.ReadModel.Availability(ctx, testenv.Company, []string{"u1"}, now, now)), "end"},
		{"control character", availErr(e.ReadModel.Availability(ctx, testenv.Company, []string{"u\x00"}, now, now.Add(time.Hour))), "userIds"},
		{"long id", availErr(e.ReadModel.Availability(ctx, testenv.Company, []string{strings.Repeat("x", 201)}, now, now.Add(time.Hour))), "userIds"},
		{"first 0..200", pageErr(e.ReadModel.Events(ctx, testenv.Company, "u1", now, now.Add(time.Hour), 201, "")), "first"},
		{"negative first", pageErr(e.ReadModel.Events(ctx, testenv.Company, "u1", now, now.Add(time.Hour), -1, "")), "first"},
		{"forged cursor", pageErr(e.ReadModel.Events(ctx, testenv.Company, "u1", now, now.Add(time.Hour), 10, "abc.def")), "after"},
		{"cursor without dot", pageErr(e.ReadModel.Events(ctx, testenv.Company, "u1", now, now.Add(time.Hour), 10, "abc")), "after"},
		{"huge cursor", pageErr(e.ReadModel.Events(ctx, testenv.Company, "u1", now, now.Add(time.Hour), 10, strings.Repeat("a.", 5000))), "after"},
		{"events: 63 days", pageErr(e.ReadModel.Events(ctx, testenv.Company, "u1", now, now.Add(63*24*time.Hour), 10, "")), "end"},
	}
	for _, c := range cases {
		ae := apperr.As(c.err)
		if c.err == nil || ae.Code != apperr.InvalidInput || ae.Field != c.field {
			t.Errorf("%s: %v (field %q), want INVALID_INPUT on %s", c.name, c.err, ae.Field, c.field)
		}
	}
	// 500 users and 62 days are fine, and an unlinked user is no error.
	a, err := e.ReadModel.Availability(ctx, testenv.Company, many[:readmodel.MaxUsers], now, now.Add(62*24*time.Hour))
	if err != nil || len(a) != readmodel.MaxUsers || a[499].Provider != db.ProviderNone {
		t.Fatalf("500 unlinked users: %v, %d answers", err, len(a))
	}
	p, err := e.ReadModel.Events(ctx, testenv.Company, "nobody", now, now.Add(time.Hour), 0, "")
	if err != nil || len(p.Events) != 0 || p.HasNext {
		t.Fatalf("events of an unlinked user: %+v, %v", p, err)
	}
}

func availErr(_ []readmodel.Availability, err error) error { return err }
func pageErr(_ *readmodel.Page, err error) error           { return err }

func linksInput(user, provider, mailbox string) links.Input {
	return links.Input{UserID: user, Provider: provider, CalendarID: mailbox}
}

// TestHostPushesAreMirrored: what the host pushes is in the mirror as soon
// as the push answers (before any notification), a recurring entry's
// instances are after the round its notification brings, a change of
// time moves it, and deleting it removes it.
func TestHostPushesAreMirrored(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	ctx := context.Background()
	e.Link(t, "u1", e.Mailbox)
	e.Drain(t)
	day := time.Now().In(jst).Truncate(24*time.Hour).AddDate(0, 0, 5)
	day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, jst)
	at := func(h int) string { return day.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
	busy := func() []readmodel.Busy {
		t.Helper()
		a, err := e.ReadModel.Availability(ctx, testenv.Company, []string{"u1"}, day, day.AddDate(0, 0, 7))
		if err != nil {
			t.Fatal(err)
		}
		for i := range a[0].Busy {
			a[0].Busy[i].Start, a[0].Busy[i].End = a[0].Busy[i].Start.In(jst), a[0].Busy[i].End.In(jst)
		}
		return a[0].Busy
	}
	in := calendar.Input{ExternalID: "job-1", Subject: "現場A", Start: at(9), End: at(12)}
	if _, err := e.Calendar.Upsert(ctx, testenv.Company, "u1", in); err != nil {
		t.Fatal(err)
	}
	want := []readmodel.Busy{{Start: day.Add(9 * time.Hour), End: day.Add(12 * time.Hour), ShowAs: "BUSY"}}
	if got := busy(); !slices.Equal(got, want) {
		t.Fatalf("after the push: %v, want %v", got, want)
	}
	in.Start, in.End = at(13), at(14)
	tentative := "TENTATIVE"
	in.ShowAs = &tentative
	if _, err := e.Calendar.Upsert(ctx, testenv.Company, "u1", in); err != nil {
		t.Fatal(err)
	}
	e.Drain(t) // the echo changes nothing
	want = []readmodel.Busy{{Start: day.Add(13 * time.Hour), End: day.Add(14 * time.Hour), ShowAs: "TENTATIVE"}}
	if got := busy(); !slices.Equal(got, want) {
		t.Fatalf("after the move: %v, want %v", got, want)
	}
	rule := "FREQ=DAILY;COUNT=3"
	series := calendar.Input{ExternalID: "job-2", Subject: "定期点検", Start: at(7), End: at(8), RecurrenceRule: &rule}
	if _, err := e.Calendar.Upsert(ctx, testenv.Company, "u1", series); err != nil {
		t.Fatal(err)
	}
	e.Drain(t)
	want = []readmodel.Busy{
		{Start: day.Add(7 * time.Hour), End: day.Add(8 * time.Hour), ShowAs: "BUSY"},
		{Start: day.Add(13 * time.Hour), End: day.Add(14 * time.Hour), ShowAs: "TENTATIVE"},
		{Start: day.Add(31 * time.Hour), End: day.Add(32 * time.Hour), ShowAs: "BUSY"},
		{Start: day.Add(55 * time.Hour), End: day.Add(56 * time.Hour), ShowAs: "BUSY"},
	}
	if got := busy(); !slices.Equal(got, want) {
		t.Fatalf("with a series:\n got %v\nwant %v", got, want)
	}
	p, err := e.ReadModel.Events(ctx, testenv.Company, "u1", day, day.AddDate(0, 0, 7), 0, "")
	if err != nil || len(p.Events) != 4 {
		t.Fatalf("events: %v, %+v", err, p)
	}
	if ev := p.Events[0]; ev.Type != "OCCURRENCE" || ev.ExternalID == nil || *ev.ExternalID != "job-2" || ev.RecurrenceRule == "" {
		t.Fatalf("an instance of the host's series: %+v", ev)
	}
	for _, id := range []string{"job-1", "job-2"} {
		if _, err := e.Calendar.Delete(ctx, testenv.Company, "u1", id); err != nil {
			t.Fatal(err)
		}
	}
	e.Drain(t)
	if got := busy(); len(got) != 0 {
		t.Fatalf("after deleting both: %v", got)
	}
}

var jst = time.FixedZone("JST", 9*3600)
