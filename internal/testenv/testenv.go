// Package testenv assembles a whole calsync core for tests: a real Postgres
// schema, a graphemu over TLS with one tenant, registered credentials, the
// subscription manager, the syncer, the link and push services, and a
// webhook receiver Graph's handshakes and notifications reach. Only tests
// import it.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/authfile"
	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/db/dbtest"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/core"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/links"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/readmodel"
	"github.com/tehaishokunin/calsync/secrets"
	"github.com/tehaishokunin/calsync/subscriptions"
)

// The tenant every Env has.
const (
	TenantID = "5e0c1a2b-0000-4000-8000-00000000e001"
	ClientID = "5e0c1a2b-1111-4000-8000-00000000e001"
	Secret   = "Sb8Q~testenv-secret-value-0000000001"
	Company  = "acme"
	Domain   = "testenv.onmicrosoft.com"
)

// Env is a running core.
type Env struct {
	Emu       *graphemu.Server
	Store     *db.Store
	Creds     *credentials.Service
	Sessions  *credentials.Sessions
	Keys      *secrets.Keyring
	Subs      *subscriptions.Manager
	Syncer    *changes.Syncer
	Worker    *changes.Worker
	Links     *links.Service
	Calendar  *calendar.Service
	ReadModel *readmodel.Service
	Feed      *changes.Feed
	// Core is everything above as serve builds it.
	Core     *core.Core
	Graph    *outlook.Client
	Log      *slog.Logger
	Logs     *SyncBuffer
	Hooks    *httptest.Server
	Mailbox  string // taro's address
	Mailbox2 string // hanako's address
}

// SyncBuffer is a log sink safe for concurrent writers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// New starts an Env; everything stops when t ends. Its emulator delivers
// notifications unruly, as Graph may (concurrent POSTs, any order, some
// twice), so every test holds under that.
func New(t testing.TB) *Env {
	t.Helper()
	return NewWith(t, graphemu.Options{Unruly: true})
}

// NewWith starts an Env whose emulator has opts (RetryBase defaults to
// 50 ms).
func NewWith(t testing.TB, opts graphemu.Options) *Env {
	t.Helper()
	if opts.RetryBase == 0 {
		opts.RetryBase = 50 * time.Millisecond
	}
	emu, err := graphemu.Start("", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	users, err := emu.AddTenant(graphemu.TenantSpec{TenantID: TenantID, Domain: Domain,
		Apps: []graphemu.AppSpec{{ClientID: ClientID, Secret: Secret, Roles: []string{"Calendars.ReadWrite", "User.Read.All"}}},
		Users: []graphemu.UserSpec{{Mail: "taro@" + Domain, DisplayName: "山田 太郎"}, {Mail: "hanako@" + Domain, DisplayName: "佐藤 花子"},
			{Mail: "ichiro@" + Domain, DisplayName: "鈴木 一郎"}}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := db.NewStore(dbtest.New(t))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keys, _ := secrets.NewKeyring(key)
	graph := outlook.New(outlook.Config{GraphBaseURL: emu.URL, LoginBaseURL: emu.URL, Transport: emu.Transport()})
	// The receiver's address goes into the subscriptions' config before
	// the core (whose receiver it serves) is built.
	mux := http.NewServeMux()
	hooks := httptest.NewUnstartedServer(mux)
	pub, _ := url.Parse("http://" + hooks.Listener.Addr().String())
	c := core.New(core.Config{Store: store, Keys: keys, Graph: graph, Cursors: cursor.NewCodec(key), Log: log,
		Subscriptions: subscriptions.Config{PublicURL: pub},
		// Tests drive the worker themselves (RunOnce, Drain) or start it.
		WorkerPoll: time.Hour})
	mux.Handle(subscriptions.NotificationPath, c.Notifications.Notifications())
	mux.Handle(subscriptions.LifecyclePath, c.Notifications.Lifecycle())
	hooks.Start()
	t.Cleanup(c.Notifications.Close) // after the server below: cleanups run last first
	t.Cleanup(hooks.Close)
	if _, err := c.Credentials.Register(context.Background(), Company, "admin", authfile.File{TenantID: TenantID, ClientID: ClientID, ClientSecret: Secret}); err != nil {
		t.Fatal(err)
	}
	env := &Env{Emu: emu, Store: store, Creds: c.Credentials, Sessions: c.Sessions, Keys: keys, Subs: c.Subscriptions, Syncer: c.Syncer, Worker: c.Worker,
		Links: c.Links, Calendar: c.Calendar, ReadModel: c.ReadModel, Feed: c.Feed, Core: c, Graph: graph, Log: log, Logs: logs, Hooks: hooks,
		Mailbox: users[0].Mail, Mailbox2: users[1].Mail}
	return env
}

// Link links a host user to a mailbox and returns the stored link.
func (e *Env) Link(t testing.TB, user, mailbox string) *db.CalendarLink {
	t.Helper()
	if _, err := e.Links.Set(context.Background(), Company, "admin", links.Input{UserID: user, Provider: db.ProviderOutlook, CalendarID: mailbox}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Store.Link(context.Background(), Company, user)
	if err != nil || l == nil {
		t.Fatalf("link of %s: %v", user, err)
	}
	return l
}

// Control calls the emulator's control API and decodes the answer.
func (e *Env) Control(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.Emu.URL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.Emu.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// OutlookEvents lists a mailbox's events as the emulator stores them.
func (e *Env) OutlookEvents(t testing.TB, mailbox string) []map[string]any {
	t.Helper()
	var out struct {
		Value []map[string]any `json:"value"`
	}
	e.Control(t, "GET", "/_emulator/users/"+mailbox+"/events", nil, &out)
	return out.Value
}

// Requests counts the emulator's served calls after seq matching keep.
func (e *Env) Requests(since int64, keep func(graphemu.RequestRecord) bool) int {
	n := 0
	for _, r := range e.Emu.Requests(since) {
		if keep(r) {
			n++
		}
	}
	return n
}

// Drain runs the worker until the emulator has no notification to post,
// the inbox is empty and three passes in a row found nothing to do.
func (e *Env) Drain(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	quiet := 0
	for quiet < 3 {
		if time.Now().After(deadline) {
			t.Fatal("inbox did not drain")
		}
		n := e.Worker.RunOnce(context.Background())
		pending, _ := e.Store.PendingInbox(context.Background())
		var st struct {
			Pending int `json:"pendingNotifications"`
		}
		e.Control(t, "GET", "/_emulator/state", nil, &st)
		if n == 0 && pending == 0 && st.Pending == 0 {
			quiet++
		} else {
			quiet = 0
		}
		time.Sleep(30 * time.Millisecond)
	}
}
