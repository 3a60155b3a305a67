// Package core builds calsync's domain services, in the one order their
// dependencies allow and with no setter wiring afterwards: the read side of
// the credentials first, then the syncer, the subscription manager, the
// admin side of the credentials, the inbox worker and the rest. `serve` and
// the tests (internal/testenv) both build it here, so the tests run the
// wiring production runs — the feed and the host notification included.
package core

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tehaishokunin/calsync/calendar"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/echoes"
	"github.com/tehaishokunin/calsync/links"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/readmodel"
	"github.com/tehaishokunin/calsync/secrets"
	"github.com/tehaishokunin/calsync/subscriptions"
	"github.com/tehaishokunin/calsync/webhooks"
)

// Config is what the core is built from.
type Config struct {
	Store   *db.Store
	Keys    *secrets.Keyring
	Graph   *outlook.Client
	Cursors *cursor.Codec
	Log     *slog.Logger
	// Registry gets the core's metrics; nil registers none.
	Registry prometheus.Registerer

	Subscriptions subscriptions.Config
	// HostWebhookURL, when set, gets every change, signed with
	// HostWebhookSecret.
	HostWebhookURL    string
	HostWebhookSecret []byte
	// ResyncInterval is the longest a link goes without a delta round
	// (0: the syncer's and poller's default, changes.DefaultResyncInterval).
	ResyncInterval time.Duration
	// InboxRetention and FeedRetention: how long processed notifications
	// and changes are kept (0: the worker's own defaults, 24 h and for
	// ever; serve passes CALSYNC_INBOX_RETENTION and CALSYNC_FEED_RETENTION).
	InboxRetention, FeedRetention time.Duration
	// WorkerPoll is how often the worker looks at the inbox when nothing
	// wakes it (default 1 s); FeedPoll how often every stream re-checks
	// the feed without a NOTIFY (default 30 s).
	WorkerPoll, FeedPoll time.Duration
}

// Core is the built services. The background ones run only once started
// (Services, in that order; stop them in reverse).
type Core struct {
	Sessions      *credentials.Sessions
	Credentials   *credentials.Service
	Syncer        *changes.Syncer
	Subscriptions *subscriptions.Manager
	Feed          *changes.Feed
	// HostWebhook is nil without a HostWebhookURL.
	HostWebhook   *changes.HostWebhook
	Worker        *changes.Worker
	Poller        *changes.Poller
	Renewer       *subscriptions.Renewer
	Checker       *credentials.Checker
	Links         *links.Service
	Calendar      *calendar.Service
	ReadModel     *readmodel.Service
	Notifications *webhooks.Handler
	// Echoes is what Calendar tells Notifications of its own writes.
	Echoes *echoes.Memory
}

// Service is a background service of the core.
type Service interface {
	Start(ctx context.Context) error
	Stop()
}

// New builds the core; nothing runs until the services are started, except
// the notification receiver's committers (stopped by Notifications.Close).
func New(cfg Config) *Core {
	if cfg.WorkerPoll == 0 {
		cfg.WorkerPoll = time.Second
	}
	if cfg.FeedPoll == 0 {
		cfg.FeedPoll = 30 * time.Second
	}
	store, log := cfg.Store, cfg.Log
	c := &Core{Sessions: credentials.NewSessions(store, cfg.Keys, cfg.Graph, log)}
	c.Feed = changes.NewFeed(store, cfg.FeedPoll, cfg.Cursors, log)
	if cfg.HostWebhookURL != "" {
		c.HostWebhook = changes.NewHostWebhook(store, cfg.HostWebhookURL, cfg.HostWebhookSecret, cfg.Cursors, log)
	}
	c.Syncer = changes.NewSyncer(store, c.Sessions, func(companyID string) {
		c.Feed.Publish(companyID)
		if c.HostWebhook != nil {
			c.HostWebhook.Wake()
		}
	}, log)
	if cfg.ResyncInterval > 0 {
		c.Syncer.ResyncInterval = cfg.ResyncInterval
	}
	c.Subscriptions = subscriptions.NewManager(cfg.Subscriptions, store, c.Sessions, c.Syncer, subscriptions.NewMetrics(cfg.Registry, store), log)
	c.Credentials = credentials.NewService(c.Sessions, cfg.Graph, c.Subscriptions, log)
	c.Worker = changes.NewWorker(store, c.Syncer, c.Subscriptions, cfg.WorkerPoll, log)
	if cfg.InboxRetention > 0 {
		c.Worker.KeepProcessed(cfg.InboxRetention)
	}
	if cfg.FeedRetention > 0 {
		c.Worker.KeepChanges(cfg.FeedRetention)
	}
	c.Poller = changes.NewPoller(store, c.Syncer, cfg.ResyncInterval, log)
	c.Renewer = subscriptions.NewRenewer(c.Subscriptions, 30*time.Second, log)
	c.Checker = credentials.NewChecker(c.Credentials, time.Hour, 24*time.Hour, log)
	c.Links = links.NewService(store, c.Sessions, c.Subscriptions, c.Syncer, cfg.Cursors, log)
	c.Calendar = calendar.NewService(store, c.Sessions, log)
	c.Calendar.ObserveSteps(cfg.Registry)
	c.ReadModel = readmodel.New(store, cfg.Cursors)
	c.Notifications = webhooks.New(store, cfg.Registry, func(links []int64) { c.Worker.Wake(links...) }, log)
	// The echo of a push made here is answered without being stored.
	c.Echoes = echoes.New(echoes.DefaultTTL, echoes.DefaultMax)
	c.Calendar.RememberWrites(c.Echoes)
	c.Notifications.RecognizeEchoes(c.Echoes)
	return c
}

// Services are the background services in start order: the feed and the
// worker first (reconciliation at the renewer's start may bring
// notifications), the host webhook last.
func (c *Core) Services() []Service {
	s := []Service{c.Feed, c.Worker, c.Poller, c.Renewer, c.Checker}
	if c.HostWebhook != nil {
		s = append(s, c.HostWebhook)
	}
	return s
}
