package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// rule is who may run an operation. memberOwn: a member may, for their own
// userId only.
type rule struct {
	query     string
	vars      map[string]any
	allowed   []string
	memberOwn bool
}

var admins = []string{"system_admin", "user_admin"}
var pushers = []string{"service", "system_admin", "user_admin"}

// authz is the authorization matrix. Every operation of the schema must
// have a row: a new operation without one fails the test.
var authz = map[string]rule{
	"Query.calendarAuthSettings": {query: `{ calendarAuthSettings { status } }`, allowed: []string{"system_admin"}},
	"Query.userCalendarLink":     {query: `query($u: ID!) { userCalendarLink(userId: $u) { provider } }`, allowed: pushers, memberOwn: true},
	"Query.userCalendarLinks":    {query: `{ userCalendarLinks { edges { cursor } } }`, allowed: pushers},
	"Query.calendarEvent":        {query: `query($u: ID!) { calendarEvent(userId: $u, externalId: "e1") { subject } }`, allowed: pushers, memberOwn: true},
	"Query.calendarChanges":      {query: `query($u: ID) { calendarChanges(userId: $u) { edges { cursor } } }`, allowed: pushers, memberOwn: true},
	"Query.calendarAvailability": {query: `query($u: ID!) { calendarAvailability(userIds: [$u], start: "2026-12-01T00:00:00Z", end: "2026-12-02T00:00:00Z") { userId } }`,
		allowed: pushers, memberOwn: true},
	"Query.calendarEvents": {query: `query($u: ID!) { calendarEvents(userId: $u, start: "2026-12-01T00:00:00Z", end: "2026-12-02T00:00:00Z") { edges { cursor } } }`,
		allowed: pushers, memberOwn: true},
	"Query.calendarChangesHead":       {query: `{ calendarChangesHead }`, allowed: append([]string{"member"}, pushers...)},
	"Mutation.uploadCalendarAuthFile": {allowed: []string{"system_admin"}},
	"Mutation.checkCalendarAuthFile":  {allowed: []string{"system_admin"}},
	"Mutation.setCalendarAuth": {query: `mutation { setCalendarAuth(input: {tenantId: "x", clientId: "y", clientSecret: "z"}) { status } }`,
		allowed: []string{"system_admin"}},
	"Mutation.verifyCalendarAuth": {query: `mutation { verifyCalendarAuth { status } }`, allowed: []string{"system_admin"}},
	"Mutation.deleteCalendarAuth": {query: `mutation { deleteCalendarAuth }`, allowed: []string{"system_admin"}},
	"Mutation.setUserCalendar": {query: `mutation($u: ID!) { setUserCalendar(userId: $u, input: {provider: NONE}) { provider } }`,
		allowed: admins},
	"Mutation.setUserCalendars": {query: `mutation($u: ID!) { setUserCalendars(inputs: [{userId: $u, provider: NONE}]) { userId } }`,
		allowed: admins},
	"Mutation.upsertCalendarEvent": {query: `mutation($u: ID!) { upsertCalendarEvent(userId: $u, input: {externalId: "e1", subject: "s", start: "2026-12-01T09:00:00+09:00", end: "2026-12-01T10:00:00+09:00"}) { subject } }`,
		allowed: pushers},
	"Mutation.upsertCalendarEvents": {query: `mutation($u: ID!) { upsertCalendarEvents(userId: $u, inputs: [{externalId: "e1", subject: "s", start: "2026-12-01T09:00:00+09:00", end: "2026-12-01T10:00:00+09:00"}]) { externalId } }`,
		allowed: pushers},
	"Mutation.deleteCalendarEvent": {query: `mutation($u: ID!) { deleteCalendarEvent(userId: $u, externalId: "e1") }`, allowed: pushers},
	"Mutation.resyncUserCalendar":  {query: `mutation($u: ID!) { resyncUserCalendar(userId: $u) { status } }`, allowed: pushers},
	"Subscription.calendarChanged": {allowed: pushers, memberOwn: true},
}

// declared is what an operation's @hasRole in the schema says.
type declared struct {
	roles []string // lower case, as in tokens
	self  string   // the argument a member may name themself in; "" none
	found bool     // the field carries @hasRole at all
}

// schemaOperations reads every root field of the schema and its @hasRole.
func schemaOperations(t *testing.T) ([]string, map[string]declared) {
	t.Helper()
	files, err := filepath.Glob("../../graph/*.graphqls")
	if err != nil || len(files) == 0 {
		t.Fatalf("schema files: %v", err)
	}
	var sources []*ast.Source
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: filepath.Base(f), Input: string(src)})
	}
	schema, gerr := gqlparser.LoadSchema(sources...)
	if gerr != nil {
		t.Fatal(gerr)
	}
	var ops []string
	rules := map[string]declared{}
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			op := root.Name + "." + f.Name
			ops = append(ops, op)
			d := f.Directives.ForName("hasRole")
			if d == nil {
				rules[op] = declared{}
				continue
			}
			var dec declared
			dec.found = true
			if a := d.Arguments.ForName("roles"); a != nil {
				for _, c := range a.Value.Children {
					dec.roles = append(dec.roles, strings.ToLower(c.Value.Raw))
				}
			}
			if a := d.Arguments.ForName("self"); a != nil {
				dec.self = a.Value.Raw
			}
			rules[op] = dec
		}
	}
	return ops, rules
}

// TestEveryOperationStatesItsRoles: the schema says who may call each
// operation (@hasRole), and says what the matrix below expects: a field
// without the directive would run for anyone with a token.
func TestEveryOperationStatesItsRoles(t *testing.T) {
	t.Parallel()
	ops, rules := schemaOperations(t)
	for _, op := range ops {
		dec, rl := rules[op], authz[op]
		switch {
		case !dec.found:
			t.Errorf("%s has no @hasRole: the schema must say who may call it", op)
		case !sameRoles(dec.roles, rl.allowed):
			t.Errorf("%s: the schema allows %v, the matrix expects %v", op, dec.roles, rl.allowed)
		case (dec.self != "") != rl.memberOwn:
			t.Errorf("%s: the schema's self is %q, the matrix expects a member for themself: %v", op, dec.self, rl.memberOwn)
		}
	}
}

func sameRoles(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	roles := []string{"system_admin", "user_admin", "service", "member", ""}
	ops, _ := schemaOperations(t)
	calls := 0
	measured := hostileRows.Record(t, "15. authorization matrix", "every Query, Mutation and Subscription field of the schema (read from it, not listed by hand), as system_admin, user_admin, service, member (for themself and for another user) and without a token",
		"FORBIDDEN or UNAUTHENTICATED exactly where the matrix says; allowed calls not refused")
	defer func() { *measured = fmt.Sprintf("%d operations, %d calls", len(ops), calls) }()
	for _, op := range ops {
		rl, ok := authz[op]
		if !ok {
			t.Errorf("%s has no row in the authorization matrix", op)
			continue
		}
		for _, role := range roles {
			for _, own := range []bool{true, false} {
				if own && role != "member" {
					continue
				}
				userID := "u-other"
				if own {
					userID = "m1"
				}
				want := "FORBIDDEN"
				switch {
				case role == "":
					want = "UNAUTHENTICATED"
				case slices.Contains(rl.allowed, role) || (role == "member" && own && rl.memberOwn):
					want = "" // allowed: any answer but FORBIDDEN/UNAUTHENTICATED
				}
				tok := ""
				if role != "" {
					tok = token(t, "acme", map[bool]string{true: "m1", false: "x1"}[role == "member"], role)
				}
				got := a.run(t, op, rl, tok, userID)
				calls++
				if want == "" {
					if got == "FORBIDDEN" || got == "UNAUTHENTICATED" {
						t.Errorf("%s as %q (userId %s): refused with %s", op, role, userID, got)
					}
				} else if got != want {
					t.Errorf("%s as %q (userId %s): got %q, want %s", op, role, userID, got, want)
				}
			}
		}
	}
}

// run executes op and returns its error code ("" when none).
func (a *app) run(t *testing.T, op string, rl rule, tok, userID string) string {
	t.Helper()
	switch op {
	case "Mutation.uploadCalendarAuthFile":
		r, _ := a.upload(t, tok, []byte(`{"tenant_id":"x"}`))
		return r.code()
	case "Mutation.checkCalendarAuthFile":
		r, _ := a.uploadTo(t, checkFields, tok, []byte(`{"tenant_id":"x"}`))
		return r.code()
	case "Subscription.calendarChanged":
		return a.wsCode(t, tok, userID)
	}
	return a.gql(t, tok, rl.query, map[string]any{"u": userID}).code()
}

// wsCode subscribes over the websocket and reports UNAUTHENTICATED when
// the socket is refused, the error code of an error message, or "" when
// the subscription runs.
func (a *app) wsCode(t *testing.T, tok, userID string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(a.base, "http", "ws", 1)+"/graphql", &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	payload := map[string]any{}
	if tok != "" {
		payload["Authorization"] = "Bearer " + tok
	}
	_ = wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": payload})
	var m map[string]any
	if err := wsjson.Read(ctx, c, &m); err != nil || m["type"] != "connection_ack" {
		return "UNAUTHENTICATED"
	}
	_ = wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{
		"query": `subscription($u: ID) { calendarChanged(userId: $u) { cursor } }`, "variables": map[string]any{"u": userID}}})
	rctx, rcancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer rcancel()
	for {
		if err := wsjson.Read(rctx, c, &m); err != nil {
			return "" // running, no error
		}
		if m["type"] == "next" {
			if p, ok := m["payload"].(map[string]any); ok {
				if errs, ok := p["errors"].([]any); ok && len(errs) > 0 {
					if ext, ok := errs[0].(map[string]any)["extensions"].(map[string]any); ok {
						code, _ := ext["code"].(string)
						return code
					}
				}
			}
		}
		if m["type"] == "error" {
			if errs, ok := m["payload"].([]any); ok && len(errs) > 0 {
				if ext, ok := errs[0].(map[string]any)["extensions"].(map[string]any); ok {
					code, _ := ext["code"].(string)
					return code
				}
			}
			return "ERROR"
		}
	}
}
