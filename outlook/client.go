// Package outlook is calsync's only user of msgraph-sdk-go and azidentity:
// it builds a Graph client per company app registration, offers the typed
// operations calsync needs (token check, mailbox lookup, events, delta,
// subscriptions), and classifies every failure into a small set of kinds
// (see Kind) that the domain packages switch on. No SDK type leaves this
// package.
package outlook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abstractions "github.com/microsoft/kiota-abstractions-go"
	azauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraph "github.com/microsoftgraph/msgraph-sdk-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/subscriptions"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"golang.org/x/sync/semaphore"

	"github.com/lestrrat-go/jwx/v2/jwt"
)

// GraphScope is the only scope calsync asks for: the app's consented
// application permissions.
const GraphScope = "https://graph.microsoft.com/.default"

// RequiredRole is the application permission calsync needs.
const RequiredRole = "Calendars.ReadWrite"

// Config says where Microsoft is. The zero value means the real endpoints.
type Config struct {
	// GraphBaseURL is scheme://host of Graph; "/v1.0" is added.
	GraphBaseURL string
	// LoginBaseURL is scheme://host of the identity platform.
	LoginBaseURL string
	// Transport carries every call (e.g. one trusting an emulator's CA);
	// nil means http.DefaultTransport. The SDK's middleware (retry with
	// Retry-After, redirects, compression) is layered on top of it.
	Transport http.RoundTripper
	// Timeout bounds each Graph call, including the SDK's retries.
	Timeout time.Duration
	// RetryWait bounds how long the SDK may wait in total between retries
	// of one call (429/503/504, honouring Retry-After). A call asked to wait
	// longer returns the refusal at once, so callers see THROTTLED with
	// its Retry-After instead of hanging. Zero means the smaller of 10 s and
	// half the Timeout.
	RetryWait time.Duration
	// MailboxConcurrency caps this process's concurrent calls per mailbox
	// (Outlook allows 4 per app and mailbox); zero means 4.
	MailboxConcurrency int
	// MailboxWait bounds how long a call waits for a free slot before it
	// fails as throttled; zero means 30 s.
	MailboxWait time.Duration
	// MaxAnswerBytes bounds the body of any one answer from Graph; reading
	// past it fails the call. Zero means 32 MiB (a delta page of a few
	// hundred events with long bodies is a few megabytes).
	MaxAnswerBytes int64
	// Responses, when set, is told the status of every HTTP answer Graph
	// gives, each retry included (so throttling shows as 429s even when a
	// retry then succeeds).
	Responses func(status int)
}

// Credentials are a company's app registration.
type Credentials struct {
	TenantID     string
	ClientID     string
	ClientSecret string
}

func (c Credentials) key() string {
	h := sha256.Sum256([]byte(c.TenantID + "\x00" + c.ClientID + "\x00" + c.ClientSecret))
	return hex.EncodeToString(h[:])
}

// Client hands out Graph sessions, one cached per credential set so token
// caches are reused.
type Client struct {
	cfg      Config
	mu       sync.Mutex
	sessions map[string]*Session
	slots    map[string]*semaphore.Weighted // per mailbox
}

// New builds a client.
func New(cfg Config) *Client {
	if cfg.GraphBaseURL == "" {
		cfg.GraphBaseURL = "https://graph.microsoft.com"
	}
	if cfg.LoginBaseURL == "" {
		cfg.LoginBaseURL = "https://login.microsoftonline.com"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.RetryWait == 0 {
		cfg.RetryWait = min(10*time.Second, cfg.Timeout/2)
	}
	if cfg.MailboxConcurrency == 0 {
		cfg.MailboxConcurrency = 4
	}
	if cfg.MailboxWait == 0 {
		cfg.MailboxWait = 30 * time.Second
	}
	if cfg.MaxAnswerBytes <= 0 {
		cfg.MaxAnswerBytes = 32 << 20
	}
	return &Client{cfg: cfg, sessions: map[string]*Session{}, slots: map[string]*semaphore.Weighted{}}
}

// withinRetryWait lets the SDK retry only while the waits so far plus the
// next one (Retry-After, or the SDK's 3 s backoff doubling per attempt) fit
// in budget.
func withinRetryWait(budget time.Duration) func(waited time.Duration, attempt int, _ *http.Request, resp *http.Response) bool {
	return func(waited time.Duration, attempt int, _ *http.Request, resp *http.Response) bool {
		next := time.Duration(3<<attempt) * time.Second
		if v := resp.Header.Get("Retry-After"); v != "" {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				next = time.Duration(n) * time.Second
			} else if t, err := http.ParseTime(v); err == nil {
				next = time.Until(t)
			}
		}
		return waited+next <= budget
	}
}

// acquire takes one of the mailbox's concurrency slots, waiting at most
// MailboxWait.
func (s *Session) acquire(ctx context.Context, mailbox string) (func(), error) {
	return s.acquireN(ctx, mailbox, 1)
}

// acquireN takes n of the mailbox's slots at once (a $batch, whose steps
// Outlook runs up to 4 at a time, counts as that many concurrent calls),
// waiting at most MailboxWait; the semaphore is FIFO, so batches and single
// calls never deadlock each other.
func (s *Session) acquireN(ctx context.Context, mailbox string, n int) (func(), error) {
	c := s.client
	n = min(max(n, 1), c.cfg.MailboxConcurrency)
	key := strings.ToLower(mailbox)
	c.mu.Lock()
	sem := c.slots[key]
	if sem == nil {
		sem = semaphore.NewWeighted(int64(c.cfg.MailboxConcurrency))
		c.slots[key] = sem
	}
	c.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, c.cfg.MailboxWait)
	defer cancel()
	if err := sem.Acquire(wctx, int64(n)); err != nil {
		if ctx.Err() != nil {
			return nil, &Error{Op: "waiting for the mailbox", Kind: KindUnreachable, Message: "cancelled", Err: ctx.Err()}
		}
		return nil, &Error{Op: "waiting for the mailbox", Kind: KindThrottled, Message: "too many concurrent calls to this mailbox", RetryAfter: time.Second}
	}
	return func() { sem.Release(int64(n)) }, nil
}

// Session is a Graph client acting as one app registration.
type Session struct {
	cred *azidentity.ClientSecretCredential
	// root holds the path parameters of Graph's root (its base URL), from
	// which the two roots calsync calls are built (usersRoot,
	// subscriptionsRoot) instead of through the SDK's GraphServiceClient:
	// that type reaches every root of Graph, and building it kept all of
	// their code in the binary (127 MiB against 59 MiB).
	root    map[string]string
	adapter *msgraph.GraphRequestAdapter
	client  *Client
}

func (c *Client) credential(creds Credentials) (*azidentity.ClientSecretCredential, error) {
	opts := &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: c.cfg.LoginBaseURL + "/"},
			Transport: &http.Client{Transport: c.cfg.Transport, Timeout: 30 * time.Second},
			Retry:     policy.RetryOptions{MaxRetries: 1},
		},
	}
	if c.cfg.LoginBaseURL != "https://login.microsoftonline.com" {
		opts.DisableInstanceDiscovery = true
	}
	cred, err := azidentity.NewClientSecretCredential(creds.TenantID, creds.ClientID, creds.ClientSecret, opts)
	if err != nil {
		return nil, &Error{Op: "creating credential", Kind: KindAuthFailed, Message: "the tenant or client id is malformed", Err: err}
	}
	return cred, nil
}

// For returns the session for creds, building it on first use.
func (c *Client) For(creds Credentials) (*Session, error) {
	k := creds.key()
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[k]; s != nil {
		return s, nil
	}
	cred, err := c.credential(creds)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.cfg.GraphBaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing graph base url: %w", err)
	}
	auth, err := azauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{GraphScope}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("building graph auth provider: %w", err)
	}
	opts := msgraph.GetDefaultClientOptions()
	mw := msgraphcore.GetDefaultMiddlewaresWithOptions(&opts)
	for i, m := range mw {
		// kiota-http-go's compression handler breaks retries: after a 429 the
		// retry handler resends the original body while the request still
		// says Content-Encoding: gzip, so every retried POST/PATCH is
		// refused as a bad gzip body. Request bodies here are small; send
		// them uncompressed.
		if _, ok := m.(*khttp.CompressionHandler); ok {
			mw[i] = khttp.NewCompressionHandlerWithOptions(khttp.NewCompressionOptions(false))
		}
		if _, ok := m.(*khttp.RetryHandler); ok {
			mw[i] = khttp.NewRetryHandlerWithOptions(khttp.RetryHandlerOptions{ShouldRetry: withinRetryWait(c.cfg.RetryWait)})
		}
	}
	var next http.RoundTripper = capped{next: c.cfg.Transport, max: c.cfg.MaxAnswerBytes}
	if c.cfg.Responses != nil {
		next = observed{next: next, fn: c.cfg.Responses}
	}
	parent := idempotentRetry{next: next, attempts: 3, backoff: 250 * time.Millisecond}
	httpClient := &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(parent, mw...), Timeout: c.cfg.Timeout}
	adapter, err := msgraph.NewGraphRequestAdapterWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(auth, nil, nil, httpClient)
	if err != nil {
		return nil, fmt.Errorf("building graph request adapter: %w", err)
	}
	adapter.SetBaseUrl(c.cfg.GraphBaseURL + "/v1.0")
	// NewGraphServiceClient would re-assign the SDK's global backing store
	// factory on every call, a data race with any request in flight; passing
	// nil keeps the (identical) default and skips that write.
	base := msgraph.NewGraphBaseServiceClient(adapter, nil) // registers the JSON (de)serialisers
	s := &Session{cred: cred, client: c, adapter: adapter, root: base.BaseRequestBuilder.PathParameters}
	c.sessions[k] = s
	return s, nil
}

// usersRoot is /users. A builder per call, as the SDK's own root makes
// them: each copies the path parameters, which a request then writes to.
func (s *Session) usersRoot() *users.UsersRequestBuilder {
	return users.NewUsersRequestBuilderInternal(s.root, s.adapter)
}

// subscriptionsRoot is /subscriptions, a builder per call (usersRoot).
func (s *Session) subscriptionsRoot() *subscriptions.SubscriptionsRequestBuilder {
	return subscriptions.NewSubscriptionsRequestBuilderInternal(s.root, s.adapter)
}

// Forget drops the cached session for creds (after they are replaced or
// deleted), so a stale secret is not kept in memory.
func (c *Client) Forget(creds Credentials) {
	c.mu.Lock()
	delete(c.sessions, creds.key())
	c.mu.Unlock()
}

// TokenInfo is what a token says about the app.
type TokenInfo struct {
	Roles     []string
	ExpiresOn time.Time
}

// HasRole reports whether the app holds the application permission role.
func (t TokenInfo) HasRole(role string) bool { return slices.Contains(t.Roles, role) }

// VerifyCredentials asks the identity platform for a Graph token with a
// fresh credential (no cache), and reads the consented roles from it.
func (c *Client) VerifyCredentials(ctx context.Context, creds Credentials) (TokenInfo, error) {
	cred, err := c.credential(creds)
	if err != nil {
		return TokenInfo{}, err
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{GraphScope}})
	if err != nil {
		return TokenInfo{}, classifyIdentity("requesting token", err)
	}
	parsed, err := jwt.ParseString(tok.Token, jwt.WithVerify(false), jwt.WithValidate(false))
	if err != nil {
		return TokenInfo{}, &Error{Op: "reading token", Kind: KindAuthFailed, Message: "the access token is not a JWT", Err: err}
	}
	info := TokenInfo{ExpiresOn: tok.ExpiresOn}
	if list, ok := parsed.PrivateClaims()["roles"].([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok {
				info.Roles = append(info.Roles, s)
			}
		}
	}
	return info, nil
}

// headers builds request headers; calsync always wants immutable ids and
// UTC times back.
func headers(extra ...string) *abstractions.RequestHeaders {
	h := abstractions.NewRequestHeaders()
	h.Add("Prefer", `IdType="ImmutableId"`)
	h.Add("Prefer", `outlook.timezone="UTC"`)
	for i := 0; i+1 < len(extra); i += 2 {
		h.Add(extra[i], extra[i+1])
	}
	return h
}

// capped bounds every answer's body to max bytes: reading past it fails
// (errAnswerTooLarge) instead of growing a buffer without end when an
// endpoint, or anything between calsync and it, goes wrong. An answer
// that declares a longer length fails at its first read.
type capped struct {
	next http.RoundTripper
	max  int64
}

func (c capped) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body := &cappedBody{ReadCloser: resp.Body, left: c.max, max: c.max}
	if resp.ContentLength > c.max {
		body.err = errAnswerTooLarge(c.max)
	}
	resp.Body = body
	return resp, nil
}

// cappedBody is an answer's body that fails past its bound.
type cappedBody struct {
	io.ReadCloser
	left, max int64
	err       error
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// One byte more than is left tells a body of exactly the bound from
	// a longer one.
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), 0
		b.err = errAnswerTooLarge(b.max)
		return n, b.err
	}
	b.left -= int64(n)
	return n, err
}

// errOverBound is what errors.Is finds in the failure of an answer over
// the bound.
var errOverBound = errors.New("graph answer over the bound")

// errAnswerTooLarge is the failure of an answer over max bytes.
func errAnswerTooLarge(max int64) error {
	return &Error{Op: "reading graph answer", Kind: KindUnknown, Message: fmt.Sprintf("the answer is over %d bytes", max), Err: errOverBound}
}

// observed reports the status of every answer that passes through it.
type observed struct {
	next http.RoundTripper
	fn   func(status int)
}

func (o observed) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(req)
	if err == nil {
		o.fn(resp.StatusCode)
	}
	return resp, err
}
