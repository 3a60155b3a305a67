package outlook

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// DeltaPage is one page of a calendarView delta round.
type DeltaPage struct {
	Changed []Event
	Removed []string // event ids
	// Exactly one of NextLink (more pages in this round) and DeltaLink (the
	// round is complete; save it for the next round) is set.
	NextLink  string
	DeltaLink string
}

// Delta fetches one page. link is a nextLink or deltaLink from an earlier
// page; empty starts a full round over [start, end). A stale link fails with
// KindSyncReset: start a full round again.
func (s *Session) Delta(ctx context.Context, mailbox, link string, start, end time.Time, pageSize int) (DeltaPage, error) {
	release, err := s.acquire(ctx, mailbox)
	if err != nil {
		return DeltaPage{}, err
	}
	defer release()
	// A builder per request: a request writes into its builder's path
	// parameters (a nextLink taken once is gone).
	send := func(size int) ([]byte, error) {
		b := s.usersRoot().ByUserId(mailbox).CalendarView().Delta()
		cfg := &users.ItemCalendarViewDeltaRequestBuilderGetRequestConfiguration{Headers: headers()}
		if size > 0 {
			cfg.Headers.Add("Prefer", "odata.maxpagesize="+strconv.Itoa(size))
		}
		if link != "" {
			b = b.WithUrl(link)
		} else {
			cfg.QueryParameters = &users.ItemCalendarViewDeltaRequestBuilderGetQueryParameters{
				StartDateTime: ptr(start.UTC().Format(time.RFC3339)),
				EndDateTime:   ptr(end.UTC().Format(time.RFC3339)),
			}
		}
		ri, err := b.ToGetRequestInformation(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return s.sendRaw(ctx, ri)
	}
	raw, err := send(pageSize)
	if errors.Is(err, errOverBound) && pageSize != 1 {
		// A page of events with large bodies (pictures pasted inline)
		// over the answer bound: the same page again, one event at a
		// time, so one such mailbox does not fail every round.
		raw, err = send(1)
	}
	if err != nil {
		ce := classify("reading calendar delta", err)
		// A link Graph itself gave that it now refuses as malformed (an
		// unknown or expired token answered 400) cannot be resumed either:
		// start over, as for 410 and syncStateNotFound / resyncRequired
		// (concepts/delta-query-overview.md, "Synchronization reset" and
		// "Token duration").
		var oe *Error
		if link != "" && errors.As(ce, &oe) && oe.Kind == KindBadRequest {
			oe.Kind = KindSyncReset
		}
		return DeltaPage{}, ce
	}
	page, err := decodeDeltaPage(raw)
	if err != nil {
		return DeltaPage{}, classify("reading calendar delta", err)
	}
	return page, nil
}

// sdkDeltaPage reads a delta page through kiota's parser and the SDK's
// model (see wire.go).
func sdkDeltaPage(raw []byte) (DeltaPage, error) {
	res, err := sdkRead[users.ItemCalendarViewDeltaGetResponseable](raw, users.CreateItemCalendarViewDeltaGetResponseFromDiscriminatorValue)
	if err != nil {
		return DeltaPage{}, err
	}
	var page DeltaPage
	for _, m := range res.GetValue() {
		if m == nil {
			continue // a null in the list (kiota keeps it): nothing to read
		}
		if _, removed := m.GetAdditionalData()["@removed"]; removed {
			page.Removed = append(page.Removed, deref(m.GetId()))
			continue
		}
		page.Changed = append(page.Changed, fromModel(m))
	}
	page.NextLink = deref(res.GetOdataNextLink())
	page.DeltaLink = deref(res.GetOdataDeltaLink())
	return page, nil
}
