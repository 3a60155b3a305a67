package changes

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/service"
	"github.com/tehaishokunin/calsync/internal/tracing"
)

// HostWebhook posts every change to the host app's webhook, signed as the
// Standard Webhooks spec says (webhook-id, webhook-timestamp,
// webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">), in
// feed order, retrying with backoff until the host answers 2xx. One replica
// delivers at a time (it holds a lease on the delivery state).
type HostWebhook struct {
	store   *db.Store
	cursors *cursor.Codec
	url     string
	secret  []byte
	client  *http.Client
	log     *slog.Logger
	every   time.Duration
	wake    chan struct{}
	// lease is how long a replica may deliver without recording progress
	// before another may take over (longer than one POST's timeout).
	lease time.Duration
	run   service.Runner
}

// SecretBytes decodes a Standard Webhooks secret ("whsec_" + base64) or
// takes the value as raw bytes.
func SecretBytes(s string) []byte {
	if rest, ok := strings.CutPrefix(s, "whsec_"); ok {
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			return b
		}
	}
	return []byte(s)
}

// NewHostWebhook builds the deliverer.
func NewHostWebhook(store *db.Store, url string, secret []byte, cursors *cursor.Codec, log *slog.Logger) *HostWebhook {
	return &HostWebhook{store: store, url: url, secret: secret, cursors: cursors, log: log, every: 2 * time.Second,
		client: &http.Client{Timeout: 10 * time.Second}, wake: make(chan struct{}, 1), lease: time.Minute}
}

// Wake asks for a delivery round now.
func (h *HostWebhook) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// runTimeout bounds one delivery round; a backlog longer than that goes on
// in the next round (progress is recorded change by change).
const runTimeout = 5 * time.Minute

// Start runs deliveries until Stop: a round at once, then one every
// `every` and whenever Wake is called.
func (h *HostWebhook) Start(ctx context.Context) error {
	return h.run.Start(ctx, service.Loop{Every: h.every, Wake: h.wake, Timeout: runTimeout, Do: func(ctx context.Context) { h.RunOnce(ctx) }}.Run)
}

// Stop ends deliveries and waits for the round in progress.
func (h *HostWebhook) Stop() { h.run.Stop() }

// Payload is the JSON body the host receives.
type Payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// RunOnce delivers pending changes in order until one fails or none are
// left; it returns how many were acknowledged. It holds the delivery lease
// (one replica delivers at a time), never a transaction: progress is
// recorded after each acknowledged change, which also extends the lease,
// so a replica that dies mid-way loses at most the change in flight (the
// host may see it twice, with the same webhook-id).
func (h *HostWebhook) RunOnce(ctx context.Context) int {
	st, token, err := h.store.ClaimHostWebhook(ctx, h.lease)
	if err != nil || st == nil {
		if err != nil && ctx.Err() == nil {
			h.log.WarnContext(ctx, "claiming host webhook delivery failed", slog.String("error", err.Error()))
		}
		return 0
	}
	// Progress is recorded even when the worker is being stopped.
	rctx := context.WithoutCancel(ctx)
	record := func(lease time.Duration) bool {
		ok, err := h.store.RecordHostWebhook(rctx, token, *st, lease)
		if err != nil {
			h.log.WarnContext(ctx, "recording host webhook delivery failed", slog.String("error", err.Error()))
		}
		return ok && err == nil
	}
	delivered := 0
	// send posts one message; false stops the round (the host refused it,
	// or the lease is gone).
	send := func(id string, payload Payload, traceparent string, done func()) bool {
		if err := h.send(ctx, id, payload, traceparent); err != nil {
			st.Failures++
			st.NextAttemptAt = time.Now().Add(min(time.Second<<min(st.Failures, 10), 10*time.Minute))
			msg := err.Error()
			st.LastError = &msg
			h.log.WarnContext(ctx, "host webhook delivery failed; will retry", slog.String("id", id),
				slog.Int("failures", st.Failures), slog.String("error", msg))
			record(0)
			return false
		}
		done()
		st.Failures, st.LastError = 0, nil
		delivered++
		return record(h.lease) // false: the lease went to another replica, which goes on from here
	}
	// The change feed first, then the other events (credentials.expiring),
	// each in its own order.
	for ctx.Err() == nil {
		cs, err := h.store.ChangesAfter(ctx, st.LastCursor, 100)
		if err != nil || len(cs) == 0 {
			break
		}
		for _, c := range cs {
			if !send("chg_"+strconv.FormatInt(c.Cursor, 10), h.changePayload(c), c.Traceparent, func() { st.LastCursor = c.Cursor }) {
				return delivered
			}
		}
	}
	for ctx.Err() == nil {
		evs, err := h.store.HostEventsAfter(ctx, st.LastEventSeq, 100)
		if err != nil || len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			var data map[string]any
			_ = json.Unmarshal(ev.Data, &data)
			payload := Payload{Type: ev.Type, Timestamp: ev.OccurredAt.UTC(), Data: data}
			if !send("evt_"+strconv.FormatInt(ev.Seq, 10), payload, "", func() { st.LastEventSeq = ev.Seq }) {
				return delivered
			}
		}
	}
	record(0)
	return delivered
}

// changePayload is the calendar.changed message for a change.
func (h *HostWebhook) changePayload(c db.Change) Payload {
	var event any
	if len(c.Event) > 0 {
		event = json.RawMessage(c.Event)
	}
	return Payload{Type: "calendar.changed", Timestamp: c.OccurredAt.UTC(), Data: map[string]any{
		"cursor": h.cursors.Encode("chg", c.CompanyID, c.Cursor), "companyId": c.CompanyID, "userId": c.UserID, "externalId": c.ExternalID,
		"outlookEventId": c.OutlookEventID, "changeType": c.ChangeType, "changedFields": c.ChangedFields,
		"event": event, "occurredAt": c.OccurredAt.UTC(),
	}}
}

// send posts one signed message; webhook-id is stable per message, so the
// host can drop a redelivery. Traced, the POST continues the trace of the
// change it carries (traceparent, as stored with it) and tells the host
// in a traceparent header.
func (h *HostWebhook) send(ctx context.Context, id string, payload Payload, traceparent string) (err error) {
	ctx, span := tracing.Continue(ctx, "host_webhook.deliver", []string{traceparent},
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.String("calsync.webhook_id", id), attribute.String("calsync.event_type", payload.Type)))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	body, _ := json.Marshal(payload)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+Sign(h.secret, id, ts, body))
	tracing.Inject(ctx, req.Header)
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting %s: %w", id, err)
	}
	resp.Body.Close()
	span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("host answered %d for %s", resp.StatusCode, id)
	}
	return nil
}

// Sign is the Standard Webhooks v1 signature of a message.
func Sign(secret []byte, id, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(id + "." + timestamp + "."))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
