package db

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// PushState is what a push to one user's calendar reads before it calls
// Graph: the user's link, the company's credentials and the entry's event
// link, each nil when there is none.
type PushState struct {
	Link       *CalendarLink
	Credential *Credential
	Event      *EventLink
}

// pushRow is PushState as one row of a three-way LEFT JOIN, each table's
// columns under its own prefix.
type pushRow struct {
	Link       CalendarLink `bun:"embed:l_"`
	Credential Credential   `bun:"embed:c_"`
	Event      EventLink    `bun:"embed:e_"`
}

var (
	pushColumnsOnce sync.Once
	pushColumns     string
)

// ReadPushState reads a push's state in one statement (one round trip
// instead of three), always fresh: a credentials change or a relink on
// another replica is seen by the next push here, with nothing cached to
// invalidate.
func (s *Store) ReadPushState(ctx context.Context, companyID, userID, externalID string) (PushState, error) {
	pushColumnsOnce.Do(func() {
		var cols []string
		for _, t := range []struct {
			alias string
			model any
		}{{"l", CalendarLink{}}, {"c", Credential{}}, {"e", EventLink{}}} {
			for _, f := range s.db.Dialect().Tables().Get(reflect.TypeOf(t.model)).Fields {
				cols = append(cols, t.alias+"."+f.Name+" AS "+t.alias+"_"+f.Name)
			}
		}
		pushColumns = strings.Join(cols, ", ")
	})
	var r pushRow
	err := s.db.NewRaw("SELECT "+pushColumns+" FROM (SELECT 1) AS one "+
		"LEFT JOIN calendar_links AS l ON l.company_id = ? AND l.user_id = ? "+
		"LEFT JOIN credentials AS c ON c.company_id = ? "+
		"LEFT JOIN event_links AS e ON e.company_id = ? AND e.external_id = ?",
		companyID, userID, companyID, companyID, externalID).Scan(ctx, &r)
	if err != nil {
		return PushState{}, fmt.Errorf("reading the push state of user %s: %w", userID, err)
	}
	var st PushState
	if r.Link.ID != 0 {
		st.Link = &r.Link
	}
	if r.Credential.CompanyID != "" {
		st.Credential = &r.Credential
	}
	if r.Event.ID != 0 {
		st.Event = &r.Event
	}
	return st, nil
}
