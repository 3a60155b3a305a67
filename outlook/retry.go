package outlook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// idempotentRetry retries GET and DELETE calls that failed on the way
// (connection cut, reset, refused) or were answered 500/502, a few times
// with a short backoff. The SDK's own retry handler, above it, covers 429,
// 503 and 504 but neither server errors nor lost connections; creating
// calls are retried by their callers with the same transactionId, and
// PATCHes are left to the caller, which may re-send.
type idempotentRetry struct {
	next     http.RoundTripper
	attempts int           // in all, the first included
	backoff  time.Duration // doubled per retry
}

func (t idempotentRetry) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodDelete {
		return t.next.RoundTrip(req)
	}
	wait := t.backoff
	for attempt := 1; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		retry := attempt < t.attempts && req.Context().Err() == nil &&
			(err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) ||
				err == nil && (resp.StatusCode == http.StatusInternalServerError || resp.StatusCode == http.StatusBadGateway))
		if !retry {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		select {
		case <-time.After(wait):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		wait *= 2
	}
}
