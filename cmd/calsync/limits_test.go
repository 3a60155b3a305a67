package main

import (
	"strings"
	"testing"
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
