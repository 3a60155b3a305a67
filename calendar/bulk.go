package calendar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/outlook"
)

// MaxBulk is the most entries one upsertCalendarEvents call takes.
const MaxBulk = 500

// ItemResult is one entry's outcome in a bulk push.
type ItemResult struct {
	ExternalID string
	Pushed     *Pushed
	Err        error
}

// UpsertMany pushes many entries of one user, 20 Graph writes per JSON
// $batch call. Each entry succeeds or fails on its own. Unlike Upsert it
// does not look for untracked tagged events to adopt (that would cost a
// Graph call per new entry); creates still carry their transactionId.
func (s *Service) UpsertMany(ctx context.Context, companyID, userID string, ins []Input) ([]ItemResult, error) {
	if len(ins) > MaxBulk {
		return nil, apperr.New(apperr.InvalidInput, fmt.Sprintf("一度に送れるのは %d 件までです。", MaxBulk), fmt.Sprintf("At most %d entries per call.", MaxBulk)).WithField("inputs")
	}
	if err := checkIDs(userID); err != nil {
		return nil, err
	}
	t, err := s.target(ctx, companyID, userID)
	if err != nil {
		return nil, err
	}
	out := make([]ItemResult, len(ins))
	plans := make([]*plan, len(ins))
	seen := map[string]bool{}
	var ids []string
	for i, in := range ins {
		out[i].ExternalID = in.ExternalID
		e, err := Validate(in, fmt.Sprintf("inputs[%d].", i))
		if err == nil && seen[e.ExternalID] {
			err = apperr.New(apperr.InvalidInput, "同じ externalId が複数含まれています。", "The same externalId appears more than once.").WithField(fmt.Sprintf("inputs[%d].externalId", i))
		}
		if err != nil {
			out[i].Err = err
			continue
		}
		seen[e.ExternalID] = true
		ids = append(ids, e.ExternalID)
		plans[i] = &plan{entry: e}
	}
	unlock, err := s.lock(ctx, companyID, ids...) // all at once, in a fixed order
	if err != nil {
		return nil, err
	}
	defer unlock()
	var pending []int
	for i, p := range plans {
		if p == nil {
			continue
		}
		np, err := s.plan(ctx, companyID, t, p.entry, false)
		if err != nil {
			out[i].Err = err
			continue
		}
		plans[i] = np
		if np.noop {
			out[i].Pushed, out[i].Err = s.pushed(t, np.el)
			continue
		}
		if np.recreate {
			// A delete and a create that must follow it: one at a time.
			out[i].Pushed, out[i].Err = s.execute(ctx, companyID, t, np, time.Time{})
			continue
		}
		pending = append(pending, i)
	}
	defer s.echoes.Begin(t.link.ID).End()
	for round := 0; round < 3 && len(pending) > 0; round++ {
		var again []int
		var wait time.Duration // the longest Retry-After of the steps throttled alone
		for start := 0; start < len(pending); start += outlook.MaxBatch {
			chunk := pending[start:min(start+outlook.MaxBatch, len(pending))]
			ops := make([]outlook.Op, len(chunk))
			for j, i := range chunk {
				p := plans[i]
				if p.create {
					ops[j] = outlook.Op{Create: true, Event: outlookEvent(p.entry, transactionID(companyID, p.entry.ExternalID, p.gen))}
				} else {
					ops[j] = outlook.Op{ID: p.el.OutlookEventID, Event: outlookEvent(p.entry, ""), Fields: p.fields, IfMatch: p.ifMatch}
				}
			}
			results, err := t.sess.Batch(ctx, t.mailbox, ops)
			if err != nil {
				for _, i := range chunk {
					out[i].Err = s.graphError(ctx, companyID, err)
				}
				continue
			}
			for j, i := range chunk {
				r, p := results[j], plans[i]
				switch {
				case r.Err == nil:
					el, err := s.record(ctx, t, p, r.Event)
					if err == nil {
						out[i].Pushed, err = s.pushed(t, el)
					}
					out[i].Err = err
				case (outlook.KindOf(r.Err) == outlook.KindDuplicateTransaction && p.create) ||
					(outlook.KindOf(r.Err) == outlook.KindConflict && !p.create && !p.entry.Force):
					// A reused transactionId, or an Outlook-side edit since
					// the base version: settled one at a time.
					settle := s.recoverDuplicate
					if !p.create {
						settle = s.merge
					}
					ev, err := settle(ctx, t, p)
					if err == nil {
						el, rerr := s.record(ctx, t, p, ev)
						if err = rerr; err == nil {
							out[i].Pushed, err = s.pushed(t, el)
						}
					}
					if err != nil {
						err = s.pushError(ctx, companyID, t, p, err)
					}
					out[i].Err = err
				case outlook.KindOf(r.Err) == outlook.KindThrottled && round < 2 && retryAfter(r.Err) <= maxStepWait:
					// Graph throttles steps of a batch on their own: only
					// those go again, after their Retry-After (a create keeps
					// its transactionId, so nothing is made twice).
					wait = max(wait, retryAfter(r.Err))
					again = append(again, i)
				case outlook.KindOf(r.Err) == outlook.KindNotFound && !p.create:
					p.create, p.gen = true, p.gen+1 // deleted in Outlook: make it again
					again = append(again, i)
				default:
					out[i].Err = s.pushError(ctx, companyID, t, p, r.Err)
				}
			}
		}
		pending = again
		if wait > 0 && len(pending) > 0 {
			select {
			case <-ctx.Done():
				for _, i := range pending {
					out[i].Err = s.graphError(ctx, companyID, ctx.Err())
				}
				return out, nil
			case <-time.After(wait):
			}
		}
	}
	return out, nil
}

// maxStepWait is the longest Retry-After a throttled batch step is waited
// for inside one bulk call; longer ones answer THROTTLED with the time.
const maxStepWait = 10 * time.Second

func retryAfter(err error) time.Duration {
	var oe *outlook.Error
	if errors.As(err, &oe) {
		return max(oe.RetryAfter, time.Second)
	}
	return time.Second
}
