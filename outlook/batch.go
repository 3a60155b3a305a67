package outlook

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// MaxBatch is the most requests one JSON $batch may hold.
const MaxBatch = 20

// Op is one step of a batch: create an event, or update one (the named
// fields, optionally only if its changeKey is still IfMatch).
type Op struct {
	Create  bool
	ID      string
	Event   Event
	Fields  []string
	IfMatch string
}

// OpResult is a step's outcome: the event Graph returned, or a classified
// error.
type OpResult struct {
	Event Event
	Err   error
}

// Batch runs up to MaxBatch event writes on one mailbox in a single JSON
// $batch call. Each step succeeds or fails on its own (and is throttled on
// its own by Graph).
func (s *Session) Batch(ctx context.Context, mailbox string, ops []Op) ([]OpResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	if len(ops) > MaxBatch {
		return nil, fmt.Errorf("batch of %d requests exceeds Graph's limit of %d", len(ops), MaxBatch)
	}
	release, err := s.acquireN(ctx, mailbox, len(ops))
	if err != nil {
		return nil, err
	}
	defer release()
	adapter := s.adapter
	batch := msgraphcore.NewBatchRequest(adapter)
	ids := make([]string, len(ops))
	out := make([]OpResult, len(ops))
	for i, op := range ops {
		var info *abstractions.RequestInformation
		var err error
		if op.Create {
			m, merr := op.Event.toModel(nil)
			if merr != nil {
				out[i].Err = &Error{Op: "creating event", Kind: KindBadRequest, Message: merr.Error()}
				continue
			}
			info, err = s.usersRoot().ByUserId(mailbox).Events().ToPostRequestInformation(ctx, m, &users.ItemEventsRequestBuilderPostRequestConfiguration{Headers: headers()})
		} else {
			fields := op.Fields
			if fields == nil {
				fields = []string{}
			}
			m, merr := op.Event.toModel(fields)
			if merr != nil {
				out[i].Err = &Error{Op: "updating event", Kind: KindBadRequest, Message: merr.Error()}
				continue
			}
			h := headers()
			if op.IfMatch != "" {
				h.Add("If-Match", `W/"`+op.IfMatch+`"`)
			}
			info, err = s.usersRoot().ByUserId(mailbox).Events().ByEventId(op.ID).ToPatchRequestInformation(ctx, m, &users.ItemEventsEventItemRequestBuilderPatchRequestConfiguration{Headers: h})
		}
		if err != nil {
			return nil, fmt.Errorf("building batch step: %w", err)
		}
		item, err := batch.AddBatchRequestStep(*info)
		if err != nil {
			return nil, fmt.Errorf("adding batch step: %w", err)
		}
		ids[i] = *item.GetId()
	}
	resp, err := batch.Send(ctx, adapter)
	if err != nil {
		return nil, classify("sending batch", err)
	}
	for i, id := range ids {
		if id == "" {
			continue
		}
		item := resp.GetResponseById(id)
		if item == nil || item.GetStatus() == nil {
			out[i].Err = &Error{Op: "batch step", Kind: KindUnknown, Message: "no response for the step"}
			continue
		}
		status := int(*item.GetStatus())
		if status >= 400 {
			out[i].Err = stepError(status, item.GetHeaders(), item.GetBody())
			continue
		}
		ev, err := msgraphcore.GetBatchResponseById[models.Eventable](resp, id, models.CreateEventFromDiscriminatorValue)
		if err != nil {
			out[i].Err = classify("reading batch step", err)
			continue
		}
		out[i].Event = fromModel(ev)
	}
	return out, nil
}

// stepError classifies a failed batch step from its status and body.
func stepError(status int, h msgraphcore.RequestHeader, body msgraphcore.RequestBody) error {
	e := &Error{Op: "batch step", Status: status}
	if raw, err := json.Marshal(body); err == nil {
		var b struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &b) == nil {
			e.Code, e.Message = b.Error.Code, b.Error.Message
		}
	}
	if v, ok := h["Retry-After"]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	e.Kind = graphKind(status, e.Code, e.Message)
	return e
}
