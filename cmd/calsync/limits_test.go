package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/tehaishokunin/calsync/auth"
)

func TestProductionHidesPlaygroundAndIntrospection(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_GRAPH": "microsoft", "CALSYNC_PUBLIC_URL": "https://calsync.example.jp",
		"CALSYNC_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="})
	if s, _ := get(t, a.base+"/playground"); s != 404 {
		t.Fatalf("playground in production: %d", s)
	}
	r := a.gql(t, token(t, "acme", "u", "system_admin"), `{ __schema { types { name } } }`, nil)
	if len(r.Errors) == 0 {
		t.Fatal("introspection answered in production")
	}
	// Switchable on.
	b := startApp(t, map[string]string{"CALSYNC_GRAPH": "microsoft", "CALSYNC_PUBLIC_URL": "https://calsync.example.jp",
		"CALSYNC_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "CALSYNC_PLAYGROUND": "true", "CALSYNC_INTROSPECTION": "true"})
	if s, _ := get(t, b.base+"/playground"); s != 200 {
		t.Fatalf("playground switched on: %d", s)
	}
	if r := b.gql(t, "", `{ __schema { queryType { name } } }`, nil); len(r.Errors) != 0 {
		t.Fatalf("introspection switched on: %+v", r.Errors)
	}
}

func TestComplexityLimit(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_COMPLEXITY_LIMIT": "8"})
	big := `{ calendarChanges(first: 50) { edges { cursor node { cursor userId externalId outlookEventId changeType changedFields occurredAt event { subject start end location body } } } } }`
	r := a.gql(t, token(t, "acme", "u", "service"), big, nil)
	if len(r.Errors) == 0 || !strings.Contains(strings.ToLower(r.Errors[0].Message), "complex") {
		t.Fatalf("over-complex operation answered: %+v", r.Errors)
	}
	if r := a.gql(t, token(t, "acme", "u", "service"), `{ calendarChanges(first: 1) { edges { cursor } } }`, nil); r.code() != "" {
		t.Fatalf("small operation refused: %+v", r.Errors)
	}
}

func TestCompanyMutationRateLimit(t *testing.T) {
	t.Parallel()
	a := startApp(t, map[string]string{"CALSYNC_COMPANY_MUTATIONS_PER_SECOND": "1", "CALSYNC_COMPANY_MUTATION_BURST": "3"})
	busy := token(t, "busy-co", "ua", "user_admin")
	codes := []string{}
	for i := 0; i < 5; i++ {
		r := a.gql(t, busy, `mutation { setUserCalendar(userId: "u1", input: {provider: NONE}) { provider } }`, nil)
		codes = append(codes, r.code())
	}
	if strings.Join(codes, ",") != ",,,THROTTLED,THROTTLED" {
		t.Fatalf("codes %v", codes)
	}
	// Another company and reads are not held back.
	if r := a.gql(t, token(t, "calm-co", "ua", "user_admin"), `mutation { setUserCalendar(userId: "u1", input: {provider: NONE}) { provider } }`, nil); r.code() != "" {
		t.Fatalf("another company throttled: %+v", r.Errors)
	}
	if r := a.gql(t, busy, `{ userCalendarLink(userId: "u1") { provider } }`, nil); r.code() != "" {
		t.Fatalf("a read throttled: %+v", r.Errors)
	}
}

func TestWebsocketClosesWhenTokenExpires(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	tok, err := auth.Sign([]byte(testSecret), auth.Caller{UserID: "svc", CompanyID: "acme", Roles: []auth.Role{auth.Service}}, 2*time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(a.base, "http", "ws", 1)+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_ = wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + tok}})
	_ = wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { calendarChanged { cursor } }`}})
	began := time.Now()
	for {
		var m map[string]any
		if err := wsjson.Read(ctx, c, &m); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the socket outlived its token")
			}
			if time.Since(began) < time.Second {
				t.Fatalf("closed before the token expired: %v", err)
			}
			return
		}
	}
}
