package graphemu

import (
	"net/http"
	"strconv"
	"strings"
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

type throttleFault struct {
	count      int
	retryAfter int
}

// admit applies throttling faults, the request rate and the concurrency cap
// for (app, mailbox). On refusal it has written 429 with Retry-After.
func (e *Emulator) admit(w http.ResponseWriter, r *http.Request, a *app, u *user) (func(), bool) {
	e.mu.Lock()
	now := e.now()
	for _, k := range []string{u.id, strings.ToLower(u.mail)} {
		if f := e.faults.throttle[k]; f != nil && f.count > 0 {
			f.count--
			retry := f.retryAfter
			e.mu.Unlock()
			throttled(w, r, retry, "Application is over its MailboxConcurrency limit.")
			return nil, false
		}
	}
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
