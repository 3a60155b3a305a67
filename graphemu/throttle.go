package graphemu

import (
	"net/http"
	"strconv"
	"time"
)

// Outlook's documented limits per app and mailbox.
const (
	rateLimit      = 10_000
	rateWindow     = 10 * time.Minute
	concurrencyCap = 4
)

type limitState struct {
	windowStart time.Time
	count       int
	inflight    int
}

// mailboxFault is a failure armed for the next count Graph calls to one
// mailbox (event, delta and subscription calls alike).
type mailboxFault struct {
	kind       string // throttle, serverError, slow, dropConnection
	count      int
	retryAfter int           // throttle, serverError (0: no Retry-After)
	status     int           // serverError: 500 or 503
	delay      time.Duration // slow: the call is served normally after it
	method     string        // only calls with this method count (empty: all)
}

// admit applies the mailbox's armed fault, the request rate and the
// concurrency cap for (app, mailbox). On refusal it has answered (or
// dropped the connection).
func (e *Emulator) admit(w http.ResponseWriter, r *http.Request, a *app, u *user) (func(), bool) {
	e.mu.Lock()
	if f := e.faults.mailbox[u.id]; f != nil && f.count > 0 && (f.method == "" || f.method == r.Method) {
		f.count--
		fault := *f
		e.mu.Unlock()
		switch fault.kind {
		case "throttle":
			throttled(w, r, fault.retryAfter, "Application is over its MailboxConcurrency limit.")
			return nil, false
		case "serverError":
			if fault.retryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(fault.retryAfter))
			}
			if fault.status == http.StatusServiceUnavailable {
				writeGraphError(w, r, fault.status, "ServiceUnavailable", "The service is temporarily unavailable.")
			} else {
				writeGraphError(w, r, fault.status, "InternalServerError", "An internal server error occurred.")
			}
			return nil, false
		case "dropConnection":
			// The connection (HTTP/1.1) or stream (HTTP/2) is cut before
			// the call is served: no answer, nothing changed.
			panic(http.ErrAbortHandler)
		case "slow":
			// Served after the delay even when the caller has given up,
			// as Graph finishes a call whose client timed out.
			time.Sleep(fault.delay)
		}
		e.mu.Lock()
	}
	now := e.now()
	key := a.clientID + "|" + u.id
	st := e.limits[key]
	if st == nil {
		st = &limitState{windowStart: now}
		e.limits[key] = st
	}
	if now.Sub(st.windowStart) >= rateWindow {
		st.windowStart, st.count = now, 0
	}
	if st.count >= rateLimit {
		retry := int(st.windowStart.Add(rateWindow).Sub(now).Seconds()) + 1
		e.mu.Unlock()
		throttled(w, r, retry, "Application is over its MailboxRateLimit limit.")
		return nil, false
	}
	if st.inflight >= concurrencyCap {
		e.mu.Unlock()
		throttled(w, r, 1, "Application is over its MailboxConcurrency limit.")
		return nil, false
	}
	st.count++
	st.inflight++
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		st.inflight--
		e.mu.Unlock()
	}, true
}

func throttled(w http.ResponseWriter, r *http.Request, retryAfter int, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	writeGraphError(w, r, http.StatusTooManyRequests, "ApplicationThrottled", msg)
}
