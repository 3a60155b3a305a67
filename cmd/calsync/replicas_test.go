package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tehaishokunin/calsync/graphemu"
)

// replicaOf starts a second calsync on a's database and Graph, as another
// replica behind the same load balancer would be.
func replicaOf(t *testing.T, a *app) *app {
	t.Helper()
	env := map[string]string{}
	for k, v := range a.env {
		switch k {
		case "CALSYNC_ADDR", "CALSYNC_PUBLIC_URL", "CALSYNC_DEV_DIR":
		default:
			env[k] = v
		}
	}
	return startApp(t, env)
}

// subjects lists the subjects of a mailbox's events in the emulator.
func subjects(t *testing.T, emu *graphemu.Server, mailbox string) map[string]bool {
	t.Helper()
	var out struct{ Value []map[string]any }
	resp, err := emu.Client().Get(emu.URL + "/_emulator/users/" + mailbox + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ev := range out.Value {
		if s, ok := ev["subject"].(string); ok {
			got[s] = true
		}
	}
	return got
}

// TestPushSeesAnotherReplicasChanges: a push reads the link, the
// credentials and the entry's event link in one statement and caches
// none of them, so a relink or a credentials removal made on replica A is
// what replica B's very next push uses.
func TestPushSeesAnotherReplicasChanges(t *testing.T) {
	t.Parallel()
	a, emu := startWithEmulator(t, nil)
	b := replicaOf(t, a)
	admin := token(t, "acme", "ua", "user_admin")
	sysadmin := token(t, "acme", "admin", "system_admin")
	svc := token(t, "acme", "host", "service")
	taro, hanako := demoUsers[0].Mail, demoUsers[1].Mail
	push := func(on *app, ext, subject string) gqlResponse {
		return on.gql(t, svc, `mutation($in: CalendarEventInput!) { upsertCalendarEvent(userId: "u-taro", input: $in) { outlookEventId } }`,
			map[string]any{"in": map[string]any{"externalId": ext, "subject": subject, "start": "2026-12-07T09:00:00+09:00", "end": "2026-12-07T10:00:00+09:00"}})
	}

	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", taro); r.code() != "" {
		t.Fatal(r.Errors)
	}
	if r := push(b, "job-r1", "B の最初の予定"); r.code() != "" {
		t.Fatalf("push on B: %+v", r.Errors)
	}
	if !subjects(t, emu, taro)["B の最初の予定"] {
		t.Fatal("B's push is not in taro's calendar")
	}

	// Relinked on A to another mailbox: B's next push goes there.
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", hanako); r.code() != "" {
		t.Fatal(r.Errors)
	}
	if r := push(b, "job-r2", "付け替え後の予定"); r.code() != "" {
		t.Fatalf("push on B after the relink on A: %+v", r.Errors)
	}
	if !subjects(t, emu, hanako)["付け替え後の予定"] || subjects(t, emu, taro)["付け替え後の予定"] {
		t.Fatal("B pushed to the mailbox the user was linked to before A's relink")
	}

	// Credentials removed on A: B's next push has none to use.
	if d := a.gql(t, sysadmin, `mutation { deleteCalendarAuth }`, nil); string(d.Data["deleteCalendarAuth"]) != "true" {
		t.Fatalf("deleting credentials on A: %+v", d.Errors)
	}
	r := push(b, "job-r3", "認証削除後の予定")
	if r.code() != "NOT_FOUND" || subjects(t, emu, hanako)["認証削除後の予定"] {
		t.Fatalf("push on B after A removed the credentials: %+v", r.Errors)
	}
}

// TestConcurrentPushesOfOneEntryAcrossReplicas: pushes of the same entry
// on two replicas at once are serialised in Postgres (advisory locks), so
// Outlook ends with one event holding the last write.
func TestConcurrentPushesOfOneEntryAcrossReplicas(t *testing.T) {
	t.Parallel()
	a, emu := startWithEmulator(t, nil)
	b := replicaOf(t, a)
	admin := token(t, "acme", "ua", "user_admin")
	svc := token(t, "acme", "host", "service")
	taro := demoUsers[0].Mail
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", taro); r.code() != "" {
		t.Fatal(r.Errors)
	}
	const pushes = 12
	var mu sync.Mutex
	var finished []string
	var wg sync.WaitGroup
	for i := 0; i < pushes; i++ {
		on := a
		if i%2 == 1 {
			on = b
		}
		subject := fmt.Sprintf("同時更新 %02d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := on.gql(t, svc, `mutation($in: CalendarEventInput!) { upsertCalendarEvent(userId: "u-taro", input: $in) { outlookEventId } }`,
				map[string]any{"in": map[string]any{"externalId": "job-race", "subject": subject, "start": "2026-12-08T09:00:00+09:00", "end": "2026-12-08T10:00:00+09:00"}})
			mu.Lock()
			defer mu.Unlock()
			if r.code() != "" {
				t.Errorf("push %q: %+v", subject, r.Errors)
				return
			}
			finished = append(finished, subject)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// One event in Outlook, and it is the write calsync recorded last.
	var events struct{ Value []map[string]any }
	resp, err := emu.Client().Get(emu.URL + "/_emulator/users/" + taro + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&events); err != nil {
		t.Fatal(err)
	}
	var raced []map[string]any
	for _, ev := range events.Value {
		if subj, _ := ev["subject"].(string); strings.HasPrefix(subj, "同時更新") {
			raced = append(raced, ev)
		}
	}
	r := a.gql(t, svc, `{ calendarEvent(userId: "u-taro", externalId: "job-race") { subject version } }`, nil)
	var stored struct{ Subject, Version string }
	if err := json.Unmarshal(r.Data["calendarEvent"], &stored); err != nil {
		t.Fatalf("%s %+v", r.Data["calendarEvent"], r.Errors)
	}
	if len(raced) != 1 || raced[0]["subject"] != stored.Subject || raced[0]["changeKey"] != stored.Version || !slices.Contains(finished, stored.Subject) {
		t.Fatalf("Outlook holds %d events for the entry (%v); calsync recorded %+v", len(raced), raced, stored)
	}
}
