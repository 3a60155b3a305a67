package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
)

// UserAvailability is one user's answer to calendarAvailability (bound in
// gqlgen.yml instead of generated). It writes its own JSON: an answer holds
// up to 500 users and thousands of busy intervals, and gqlgen's generic
// object marshalling costs a goroutine, field contexts and about sixty
// allocations per interval (22 ms of CPU for 500 users × 5 intervals,
// measured), where this writes each user in one buffer. It follows the
// query's selection set as gqlgen resolves it (graphql.CollectFields:
// aliases, fragments, @skip/@include, __typename); @defer inside it is
// answered inline.
type UserAvailability struct {
	UserID   string           `json:"userId"`
	Provider CalendarProvider `json:"provider"`
	// The link's status; null when not linked.
	Status *LinkStatus `json:"status,omitempty"`
	// When the mirror last matched Outlook (the link's last delta round); busy is as of then.
	SyncedAt *time.Time      `json:"syncedAt,omitempty"`
	Busy     []*BusyInterval `json:"busy"`
}

var (
	userAvailabilityTypes = []string{"UserAvailability"}
	busyIntervalTypes     = []string{"BusyInterval"}
)

// MarshalGQLContext writes u as its field's selection set asks.
func (u UserAvailability) MarshalGQLContext(ctx context.Context, w io.Writer) error {
	oc := graphql.GetOperationContext(ctx)
	fc := graphql.GetFieldContext(ctx)
	for fc != nil && fc.Field.Field == nil {
		fc = fc.Parent // a list element's context: its field is the list's
	}
	if fc == nil {
		return errors.New("marshalling UserAvailability outside a field")
	}
	buf := answerBuffers.Get().(*[]byte)
	defer answerBuffers.Put(buf)
	b := append((*buf)[:0], '{')
	for i, f := range graphql.CollectFields(oc, fc.Field.Selections, userAvailabilityTypes) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, f.Alias), ':')
		switch f.Name {
		case "__typename":
			b = appendString(b, "UserAvailability")
		case "userId":
			b = appendString(b, u.UserID)
		case "provider":
			b = appendString(b, string(u.Provider))
		case "status":
			if u.Status == nil {
				b = append(b, "null"...)
			} else {
				b = appendString(b, string(*u.Status))
			}
		case "syncedAt":
			if u.SyncedAt == nil {
				b = append(b, "null"...)
			} else {
				b = appendTime(b, *u.SyncedAt)
			}
		case "busy":
			inner := graphql.CollectFields(oc, f.Selections, busyIntervalTypes)
			b = append(b, '[')
			for j, iv := range u.Busy {
				if j > 0 {
					b = append(b, ',')
				}
				var err error
				if b, err = iv.appendJSON(b, inner); err != nil {
					return err
				}
			}
			b = append(b, ']')
		default:
			return fmt.Errorf("UserAvailability has no field %q", f.Name)
		}
	}
	b = append(b, '}')
	_, err := w.Write(b)
	if cap(b) <= maxPooledAnswer {
		*buf = b
	}
	return err
}

// answerBuffers holds the buffers users' answers are written in before they
// go to gqlgen's: 500 users' answers allocated a third of a 500-user
// calendarAvailability's garbage, and the collector ran about once per call.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledAnswer keeps one long range's buffer from staying in the pool.
const maxPooledAnswer = 64 << 10

// UnmarshalGQLContext refuses: UserAvailability is only ever an answer.
func (u *UserAvailability) UnmarshalGQLContext(context.Context, any) error {
	return errors.New("UserAvailability is an output type")
}

func (iv *BusyInterval) appendJSON(b []byte, fields []graphql.CollectedField) ([]byte, error) {
	b = append(b, '{')
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(appendString(b, f.Alias), ':')
		switch f.Name {
		case "__typename":
			b = appendString(b, "BusyInterval")
		case "start":
			b = appendTime(b, iv.Start)
		case "end":
			b = appendTime(b, iv.End)
		case "showAs":
			b = appendString(b, string(iv.ShowAs))
		default:
			return nil, fmt.Errorf("BusyInterval has no field %q", f.Name)
		}
	}
	return append(b, '}'), nil
}

// appendTime writes a Time as gqlgen's graphql.MarshalTime does.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString writes s as a JSON string: quotes, backslashes and control
// characters escaped, everything else as it is (UTF-8).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
