package graphemu

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options tune an Emulator. The zero value is usable.
type Options struct {
	// Now is the emulator's clock (token and subscription expiry, event
	// timestamps). Nil means time.Now.
	Now func() time.Time
	// HTTPClient posts validation handshakes and notifications. Nil means a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives delivery failures; nil discards.
	Logger *slog.Logger
	// RetryBase is the first delay before a failed notification delivery is
	// retried (doubling up to 1 minute). Zero means 1 s.
	RetryBase time.Duration
	// Unruly delivers change notifications as Graph may (DESIGN.md: any
	// notification more than once and out of order;
	// concepts/change-notifications-delivery-webhooks.md): by several
	// concurrent POSTs to the same URL, in shuffled order, about one in
	// three of them twice.
	Unruly bool
	// ReauthorizeAfter makes the emulator send reauthorizationRequired for
	// a subscription this long after it was created, renewed or
	// reauthorized, and hold its change notifications until the app
	// reauthorizes or renews it. Zero: only when asked (control API).
	ReauthorizeAfter time.Duration
	// TokenLifetime is how long issued access tokens last (Entra ID's
	// default is about an hour, and so is zero here). A short one makes
	// clients fetch a fresh token — with the app's current roles — on
	// nearly every call, as they do an hour after a permission changed.
	TokenLifetime time.Duration
}

// Emulator holds all emulated state. It is safe for concurrent use.
type Emulator struct {
	opts Options
	key  *rsa.PrivateKey
	kid  string

	mu          sync.Mutex
	tenants     map[string]*tenant // by lower-case id and domain
	users       map[string]*user   // by id
	userIdx     map[string]*user   // by lower-case id, mail, upn
	subs        map[string]*subscription
	deltaTokens map[string]*deltaState
	skipTokens  map[string]skipPage
	seq         uint64
	faults      faults
	reqs        []RequestRecord
	reqSeq      int64
	limits      map[string]*limitState

	notifier *notifier
	mux      *http.ServeMux
	handler  http.Handler
}

type tenant struct {
	id     string
	domain string
	apps   map[string]*app
}

type app struct {
	tenant        *tenant
	clientID      string
	secret        string
	secretExpires time.Time
	roles         []string
	allowed       map[string]bool // user ids; nil means every mailbox
}

type user struct {
	tenant      *tenant
	id          string
	mail        string
	displayName string
	events      map[string]*event // by immutable id
	restIDs     map[string]string // rest id -> immutable id
	txn         map[string]string // transactionId -> immutable id
	txnBody     map[string]string // transactionId -> hash of the create body it came with
	// noMailbox: no Exchange Online mailbox; mailboxReadyAt: provisioning
	// ends then (zero: ready).
	noMailbox      bool
	mailboxReadyAt time.Time
}

// New returns an empty emulator.
func New(opts Options) *Emulator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = time.Second
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(fmt.Sprintf("graphemu: generating signing key: %v", err))
	}
	e := &Emulator{opts: opts, key: key, kid: randomID(8)}
	e.resetLocked()
	e.notifier = newNotifier(e)
	e.buildHandler()
	return e
}

// Close stops background delivery.
func (e *Emulator) Close() { e.notifier.stop() }

func (e *Emulator) now() time.Time { return e.opts.Now().UTC() }

func (e *Emulator) resetLocked() {
	e.tenants = map[string]*tenant{}
	e.users = map[string]*user{}
	e.userIdx = map[string]*user{}
	e.subs = map[string]*subscription{}
	e.deltaTokens = map[string]*deltaState{}
	e.skipTokens = map[string]skipPage{}
	e.faults = faults{mailbox: map[string]*mailboxFault{}}
	e.reqs = nil
	e.limits = map[string]*limitState{}
}

// Handler serves the identity endpoints, Graph v1.0 and the control API.
func (e *Emulator) Handler() http.Handler { return e.handler }

func (e *Emulator) buildHandler() {
	e.mux = http.NewServeMux() // Graph v1.0
	e.routeGraph(e.mux)
	identity, control := http.NewServeMux(), http.NewServeMux()
	e.routeIdentity(identity)
	e.routeControl(control)
	e.handler = e.record(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v1.0/"):
			e.mux.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/_emulator/"):
			control.ServeHTTP(w, r)
		default:
			identity.ServeHTTP(w, r)
		}
	}))
}

// RequestRecord is one Graph or identity call the emulator served.
type RequestRecord struct {
	Seq     int64     `json:"seq"`
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Status  int       `json:"status"`
	At      time.Time `json:"at"`
	Mailbox string    `json:"mailbox,omitempty"`
	Batched bool      `json:"batched,omitempty"`
}

type statusRecorder struct {
	http.ResponseWriter
	status  int
	mailbox string
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// mailboxKey carries the request's *statusRecorder, so the handler can note
// the mailbox even when the writer is wrapped (compressed answers).
type mailboxKey struct{}

// record logs every non-control request and decodes gzip request bodies.
func (e *Emulator) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Content-Encoding"), "gzip") && r.Body != nil {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				writeGraphError(w, r, http.StatusBadRequest, "BadRequest", "Invalid gzip request body.")
				return
			}
			r.Body = io.NopCloser(zr)
			r.Header.Del("Content-Encoding")
		}
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), mailboxKey{}, rec))
		defer func() {
			if p := recover(); p != nil {
				// A cut connection or lost answer: logged with status 0.
				e.logRequest(r.Method, r.URL.Path, noAnswer, rec.mailbox, false)
				panic(p)
			}
		}()
		next.ServeHTTP(rec, r)
		e.logRequest(r.Method, r.URL.Path, rec.status, rec.mailbox, false)
	})
}

// noAnswer marks a logged call whose connection was cut (status 0).
const noAnswer = -1

func (e *Emulator) logRequest(method, path string, status int, mailbox string, batched bool) {
	switch status {
	case 0:
		status = http.StatusOK
	case noAnswer:
		status = 0
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reqSeq++
	e.reqs = appendBounded(e.reqs, RequestRecord{Seq: e.reqSeq, Method: method, Path: path, Status: status, At: e.now(), Mailbox: mailbox, Batched: batched}, 200_000)
}

// appendBounded appends r to a log of at most limit records: past limit, only
// the latest half is kept (one copy per limit/2 appends, not one per append).
func appendBounded[T any](log []T, r T, limit int) []T {
	log = append(log, r)
	if len(log) > limit {
		log = append([]T(nil), log[len(log)-limit/2:]...)
	}
	return log
}

// Requests returns the calls served after seq.
func (e *Emulator) Requests(since int64) []RequestRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []RequestRecord
	for _, r := range e.reqs {
		if r.Seq > since {
			out = append(out, r)
		}
	}
	return out
}

// Deliveries returns the notification POSTs the emulator sent at or after
// since (the latest 10,000 to 20,000 are kept), in the order they were
// answered.
func (e *Emulator) Deliveries(since time.Time) []DeliveryRecord { return e.notifier.deliveries(since) }

// LastRequestSeq is the sequence number of the latest call served.
func (e *Emulator) LastRequestSeq() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.reqSeq
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeGraphError writes Graph's error body.
func writeGraphError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	reqID := newGUID()
	w.Header().Set("request-id", reqID)
	w.Header().Set("client-request-id", clientRequestID(r, reqID))
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    code,
		"message": message,
		"innerError": map[string]any{
			"date":              time.Now().UTC().Format("2006-01-02T15:04:05"),
			"request-id":        reqID,
			"client-request-id": clientRequestID(r, reqID),
		},
	}})
}

func clientRequestID(r *http.Request, fallback string) string {
	if v := r.Header.Get("client-request-id"); v != "" {
		return v
	}
	return fallback
}

func baseURL(r *http.Request) string {
	return "https://" + r.Host
}
