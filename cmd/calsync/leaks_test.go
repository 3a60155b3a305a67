package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/db"
)

// TestNoSecretsInLogsOrMetrics runs the whole story at the default (info)
// log level and searches the logs and /metrics for anything secret or
// personal: the client secret, any JWT (caller tokens and Graph access
// tokens all start with "eyJ"), clientStates and mailbox addresses.
func TestNoSecretsInLogsOrMetrics(t *testing.T) {
	t.Parallel()
	dsn := schemaURL(t)
	host := newHostHook(t)
	a, emu := startWithEmulator(t, map[string]string{"DATABASE_URL": dsn, "CALSYNC_HOST_WEBHOOK_URL": host.srv.URL, "CALSYNC_HOST_WEBHOOK_SECRET": string(host.secret)})
	admin := token(t, "acme", "ua", "system_admin", "user_admin", "service")
	// A wrong secret, a bad file and a failed handshake log refusals.
	a.gql(t, admin, `mutation { setCalendarAuth(input: {tenantId: "`+demoTenantID+`", clientId: "`+demoClientID+`", clientSecret: "Wr8Q~a-wrong-secret-value-00000000000"}) { status } }`, nil)
	a.upload(t, admin, []byte(`{"tenant_id": "`+demoTenantID+`", "client_id": "`+demoClientID+`", "client_secret": "`+demoSecret+`", "extra": 1}`))
	if _, r := a.setLink(t, admin, "u-taro", "OFFICE365_OUTLOOK", demoUsers[0].Mail); r.code() != "" {
		t.Fatal(r.Errors)
	}
	a.setLink(t, admin, "u-ghost", "OFFICE365_OUTLOOK", "ghost@"+demoDomain)
	a.gql(t, admin, `mutation { upsertCalendarEvent(userId: "u-taro", input: {externalId: "e1", subject: "s", start: "2026-12-01T09:00:00+09:00", end: "2026-12-01T10:00:00+09:00"}) { subject } }`, nil)
	id := ownerCreate(t, emu, demoUsers[0].Mail, "leak check")
	waitFor(t, "the change", 15*time.Second, func() bool {
		for _, c := range pull(t, a, admin) {
			if c["outlookEventId"] == id {
				return true
			}
		}
		return false
	})
	store := db.NewStore(db.Open(dsn, db.Options{MaxOpenConns: 1}))
	defer store.DB().Close()
	var states []string
	if err := store.DB().NewRaw("SELECT client_state FROM graph_subscriptions").Scan(context.Background(), &states); err != nil || len(states) == 0 {
		t.Fatalf("client states: %v", err)
	}
	_, metrics := get(t, a.base+"/metrics")
	logs := a.logs.String()
	forbidden := map[string]string{"client secret": demoSecret, "wrong client secret": "Wr8Q~a-wrong-secret", "a JWT": "eyJ",
		"a mailbox address": "@" + demoDomain, "the host webhook secret": string(host.secret)}
	for i, s := range states {
		forbidden["clientState "+string(rune('0'+i))] = s
	}
	for what, s := range forbidden {
		if strings.Contains(logs, s) {
			i := strings.Index(logs, s)
			t.Errorf("%s appears in the logs: …%s…", what, logs[max(0, i-200):min(len(logs), i+50)])
		}
		if strings.Contains(metrics, s) {
			t.Errorf("%s appears in /metrics", what)
		}
	}
	if !strings.Contains(logs, "credentials registered") {
		t.Fatal("the log capture is empty: the test checks nothing")
	}
}
