package db

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
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

// LockPushState takes the entry locks of keys (as LockKeys does) and reads
// the push's state under them, in one round trip for both: the user's link,
// the company's credentials and the entry's event link, always fresh (a
// credentials change or a relink on another replica is seen by the next
// push here, with nothing cached to invalidate). The read runs after the
// locks are held, so it sees whatever the previous holder committed.
// release frees the locks.
func (s *Store) LockPushState(ctx context.Context, keys []string, companyID, userID, externalID string) (st PushState, release func(), err error) {
	pushColumnsOnce.Do(func() {
		var cols []string
		for _, t := range []struct {
			row, alias string
			model      any
		}{{"link_row", "l", CalendarLink{}}, {"cred_row", "c", Credential{}}, {"event_row", "e", EventLink{}}} {
			for _, f := range s.pool.Dialect().Tables().Get(reflect.TypeOf(t.model)).Fields {
				cols = append(cols, "(r."+t.row+")."+f.Name+" AS "+t.alias+"_"+f.Name)
			}
		}
		pushColumns = strings.Join(cols, ", ")
	})
	var r pushRow
	release, err = s.lockKeys(ctx, keys, func(ctx context.Context, conn bun.Conn, ids []int64) error {
		return conn.NewRaw("SELECT "+pushColumns+" FROM calsync_lock_push_state(?::bigint[], ?, ?, ?) AS r",
			pgdialect.Array(ids), companyID, userID, externalID).Scan(ctx, &r)
	})
	if err != nil {
		return PushState{}, nil, fmt.Errorf("locking and reading the push state of user %s: %w", userID, err)
	}
	if r.Link.ID != 0 {
		st.Link = &r.Link
	}
	if r.Credential.CompanyID != "" {
		st.Credential = &r.Credential
	}
	if r.Event.ID != 0 {
		st.Event = &r.Event
	}
	return st, release, nil
}
