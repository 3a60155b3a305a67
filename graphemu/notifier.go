package graphemu

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Delivery parameters of Graph's webhooks.
const (
	deliveryTimeout = 3 * time.Second
	maxPerPost      = 50
	maxAttempts     = 30
	maxBackoff      = time.Minute
)

type delivery struct {
	url       string
	payload   map[string]any
	notBefore time.Time
	attempts  int
	doubled   bool // Unruly: already sent a second time
}

// notifier delivers queued notifications in the background, batching those
// bound for the same URL, and retries failed or slow deliveries.
type notifier struct {
	e     *Emulator
	mu    sync.Mutex
	queue []*delivery
	busy  map[string]bool
	// inFlight counts notifications in POSTs not yet answered: they are
	// undelivered too (a test waiting for "nothing pending" must wait for
	// them, or it reads calsync's state before they arrive).
	inFlight int
	wake     chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	stopped  bool
	// log keeps the latest deliveries (Deliveries), at most maxLogged.
	log []DeliveryRecord
}

// maxLogged bounds the delivery log (appendBounded).
const maxLogged = 20_000

// DeliveryRecord is one notification POST the emulator made: when it was
// sent and answered (on the emulator's clock, as RequestRecord.At), the
// answer's status (0: no answer), and the event ids its change notifications
// named (for telling where an edit's time went before calsync's delta
// request).
type DeliveryRecord struct {
	URL      string    `json:"url"`
	Sent     time.Time `json:"sent"`
	Answered time.Time `json:"answered"`
	Status   int       `json:"status"`
	Count    int       `json:"count"`
	EventIDs []string  `json:"eventIds,omitempty"`
}

func newNotifier(e *Emulator) *notifier {
	n := &notifier{e: e, busy: map[string]bool{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.wg.Add(1)
	go n.loop()
	return n
}

func (n *notifier) enqueue(url string, payload map[string]any, delay time.Duration) {
	n.mu.Lock()
	n.queue = append(n.queue, &delivery{url: url, payload: payload, notBefore: time.Now().Add(delay)})
	n.mu.Unlock()
	n.poke()
}

func (n *notifier) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) stop() {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return
	}
	n.stopped = true
	n.mu.Unlock()
	close(n.done)
	n.wg.Wait()
}

// pending counts undelivered notifications: queued, or in a POST not yet
// answered.
func (n *notifier) pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue) + n.inFlight
}

func (n *notifier) clear() {
	n.mu.Lock()
	n.queue = nil
	n.mu.Unlock()
}

func (n *notifier) loop() {
	defer n.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := n.dispatch()
		timer.Reset(wait)
		select {
		case <-n.done:
			return
		case <-n.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts a POST for every URL with due notifications and no POST in
// flight, and returns how long to sleep until the next one is due.
func (n *notifier) dispatch() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	next := time.Hour
	groups := map[string][]*delivery{}
	var rest []*delivery
	for _, d := range n.queue {
		switch {
		case d.notBefore.After(now):
			next = min(next, d.notBefore.Sub(now))
			rest = append(rest, d)
		case n.busy[d.url] || len(groups[d.url]) >= maxPerPost:
			rest = append(rest, d)
		default:
			groups[d.url] = append(groups[d.url], d)
		}
	}
	n.queue = rest
	for url, batch := range groups {
		if n.e.opts.Unruly {
			n.postUnrulyLocked(url, batch)
			continue
		}
		n.busy[url] = true
		n.inFlight += len(batch)
		n.wg.Add(1)
		go n.post(url, batch)
	}
	return next
}

// postUnrulyLocked sends batch as several concurrent POSTs of one or two
// notifications each, in shuffled order, with about one in three sent a
// second time a moment later.
func (n *notifier) postUnrulyLocked(url string, batch []*delivery) {
	rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
	for len(batch) > 0 {
		k := min(len(batch), 1+rand.IntN(2))
		part := batch[:k]
		batch = batch[k:]
		for _, d := range part {
			if !d.doubled && rand.IntN(3) == 0 {
				d.doubled = true
				twin := *d
				twin.notBefore = time.Now().Add(time.Duration(rand.IntN(50)) * time.Millisecond)
				n.queue = append(n.queue, &twin)
			}
		}
		n.inFlight += len(part)
		n.wg.Add(1)
		go n.post(url, part)
	}
}

func (n *notifier) post(url string, batch []*delivery) {
	defer n.wg.Done()
	values := make([]any, len(batch))
	for i, d := range batch {
		values[i] = d.payload
	}
	body, _ := json.Marshal(map[string]any{"value": values})
	ctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	ok := false
	rec := DeliveryRecord{URL: url, Sent: n.e.now(), Count: len(batch), EventIDs: eventIDs(batch)}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err == nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
		resp, err := n.e.opts.HTTPClient.Do(req)
		if err == nil {
			resp.Body.Close()
			rec.Status = resp.StatusCode
			ok = resp.StatusCode >= 200 && resp.StatusCode < 300
			if !ok {
				n.e.opts.Logger.Info("graphemu: notification rejected", slog.Int("status", resp.StatusCode), slog.Int("count", len(batch)))
			}
		} else {
			n.e.opts.Logger.Info("graphemu: notification delivery failed", slog.String("error", err.Error()), slog.Int("count", len(batch)))
		}
	}
	rec.Answered = n.e.now()
	n.mu.Lock()
	n.log = appendBounded(n.log, rec, maxLogged)
	delete(n.busy, url)
	n.inFlight -= len(batch)
	if !ok && !n.stopped {
		for _, d := range batch {
			d.attempts++
			if d.attempts >= maxAttempts {
				continue
			}
			backoff := n.e.opts.RetryBase << min(d.attempts-1, 10)
			d.notBefore = time.Now().Add(min(backoff, maxBackoff))
			n.queue = append(n.queue, d)
		}
	}
	n.mu.Unlock()
	n.poke()
}

// eventIDs lists the event ids batch's change notifications name.
func eventIDs(batch []*delivery) []string {
	var ids []string
	for _, d := range batch {
		if data, ok := d.payload["resourceData"].(map[string]any); ok {
			if id, ok := data["id"].(string); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// deliveries returns the logged deliveries sent at or after since.
func (n *notifier) deliveries(since time.Time) []DeliveryRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []DeliveryRecord
	for _, r := range n.log {
		if !r.Sent.Before(since) {
			out = append(out, r)
		}
	}
	return out
}
