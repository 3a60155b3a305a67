package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/config"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
	"github.com/tehaishokunin/calsync/internal/core"
	"github.com/tehaishokunin/calsync/internal/heapfloor"
	"github.com/tehaishokunin/calsync/internal/opsmetrics"
	"github.com/tehaishokunin/calsync/internal/tracing/otlp"
	"github.com/tehaishokunin/calsync/resolvers"
	"github.com/tehaishokunin/calsync/server"
	"github.com/tehaishokunin/calsync/subscriptions"
)

func serve(ctx context.Context, cfg config.Config, getenv func(string) string, log *slog.Logger, out io.Writer) error {
	if err := cfg.RequireAuth(); err != nil {
		return err
	}
	traceCfg, err := otlp.Load(getenv)
	if err != nil {
		return err
	}
	stopTracing, err := otlp.Setup(ctx, traceCfg, log)
	if err != nil {
		return err
	}
	defer func() {
		// Last: the spans of the shutdown itself are flushed too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stopTracing(ctx); err != nil {
			log.Warn("flushing traces failed", slog.String("error", otlp.Redact(err.Error())))
		}
	}()
	if cfg.Emulator() {
		log.WarnContext(ctx, "CALSYNC_GRAPH=emulator: development mode, not for production")
		if err := db.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}

	sqlDB := db.Open(cfg.DatabaseURL, db.Options{})
	defer func() {
		// Last of the shutdown order (after the services, which still use it).
		_ = sqlDB.Close()
		log.Info("shutdown: database closed")
	}()
	migrator, err := db.NewMigrator(sqlDB)
	if err != nil {
		return err
	}
	applied, err := migrator.Up(ctx)
	if err != nil {
		return err
	}
	for _, name := range applied {
		log.InfoContext(ctx, "migration applied", slog.String("name", name))
	}
	// The group committers, the subscription lookups and the first rounds
	// start at once when Graph delivers a backlog after a restart.
	db.Warm(ctx, sqlDB, warmConns)
	store := db.NewStore(sqlDB)
	// Pushes hold a connection with their entry locks while they call
	// Graph: a pool of their own, so they cannot starve the inbox.
	lockDB := db.Open(cfg.DatabaseURL, db.Options{MaxOpenConns: 32})
	defer lockDB.Close()
	store.UseLockPool(lockDB)

	verifier, err := auth.NewVerifier(ctx, auth.VerifierConfig{HS256Secret: cfg.JWTSecret, JWKSURL: cfg.JWKSURL})
	if err != nil {
		return err
	}

	keys, err := newKeyring(cfg, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		// go_sql_*{db_name}: the two pools' connections in use and the
		// waits for a free one.
		collectors.NewDBStatsCollector(sqlDB.DB, "main"), collectors.NewDBStatsCollector(lockDB.DB, "locks"))
	graphResponses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "calsync_graph_responses_total",
		Help: "HTTP answers from Microsoft Graph by status code, each retry included (429: throttled)."}, []string{"code"})
	reg.MustRegister(graphResponses)
	graphClient, err := newGraph(ctx, cfg, getenv("CALSYNC_DEV_DIR"), func(status int) {
		graphResponses.WithLabelValues(strconv.Itoa(status)).Inc()
	}, log)
	if err != nil {
		return err
	}
	defer graphClient.close()
	mirrorUpkeep := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "calsync_mirror_upkeep_seconds",
		Help: "Time of each statement writing the read model's mirror (inside the transactions that record events; " +
			"an event link's update writes its mirror row in the same statement and is counted whole).",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1}})
	reg.MustRegister(mirrorUpkeep)
	sqlDB.AddQueryHook(db.MirrorTimer(func(d time.Duration) { mirrorUpkeep.Observe(d.Seconds()) }))

	credentials.RegisterMetrics(reg, store)
	opsmetrics.Register(reg, store)
	cursors := newCursorCodec(cfg)
	c := core.New(core.Config{Store: store, Keys: keys, Graph: graphClient.client, Cursors: cursors, Log: log, Registry: reg,
		Subscriptions:  subscriptions.Config{PublicURL: cfg.PublicURL, RequireHTTPS: !cfg.Emulator(), VerifyOnStart: cfg.InProcessEmulator()},
		HostWebhookURL: cfg.HostWebhookURL, HostWebhookSecret: changes.SecretBytes(string(cfg.HostWebhookSecret)),
		ResyncInterval: cfg.ResyncInterval, InboxRetention: cfg.InboxRetention, FeedRetention: cfg.FeedRetention})
	hooks := c.Notifications
	res := &resolvers.Resolver{Credentials: c.Credentials, Links: c.Links, Calendar: c.Calendar, Feed: c.Feed, ReadModel: c.ReadModel}
	handler := server.New(server.Options{
		Logger:                log,
		Schema:                resolvers.Schema(res),
		Verifier:              verifier,
		Ready:                 func(ctx context.Context) error { return store.Ready(ctx, migrator) },
		AllowedOrigins:        cfg.AllowedOrigins,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		MaxAnonymousBodyBytes: cfg.MaxAnonymousBodyBytes,
		Registry:              reg,
		Playground:            cfg.Playground,
		Introspection:         cfg.Introspection,
		QueryLimits: server.QueryLimits{Bytes: cfg.MaxQueryBytes, Tokens: cfg.MaxQueryTokens, Fields: cfg.MaxQueryFields,
			Depth: cfg.MaxQueryDepth, Aliases: cfg.MaxAliases, Complexity: cfg.ComplexityLimit},
		SubscriptionsPerConnection: cfg.SubscriptionsPerConnection,
		SubscriptionsPerCaller:     cfg.SubscriptionsPerCaller,
		MutationsPerSecond:         cfg.MutationsPerSecond,
		MutationBurst:              cfg.MutationBurst,
		PlaygroundConfig:           playgroundConfig(cfg, graphClient),
		Notifications:              hooks.Notifications(),
		Lifecycle:                  hooks.Lifecycle(),
	})

	// Background services start once the server listens: reconciliation
	// may create subscriptions, whose handshake Graph sends to us.
	services := c.Services()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listening on CALSYNC_ADDR %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.InfoContext(ctx, "calsync listening", slog.String("addr", ln.Addr().String()))
	if cfg.Emulator() {
		printDevBanner(out, cfg, ln.Addr(), graphClient)
	}

	if cfg.GCMinHeapBytes > 0 {
		defer heapfloor.Start(uint64(cfg.GCMinHeapBytes)).Stop()
	}
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopPprof()
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	// The services run on a context the signal does not cancel: they go on
	// while the HTTP server drains (a request in flight may still need the
	// inbox committer or the feed) and end only through Stop, below.
	svcCtx := context.WithoutCancel(ctx)
	for i, s := range services {
		if err := s.Start(svcCtx); err != nil {
			_ = srv.Close()
			for j := i - 1; j >= 0; j-- {
				services[j].Stop() // those already started
			}
			return fmt.Errorf("starting background service: %w", err)
		}
	}

	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving http: %w", err)
		}
	case <-ctx.Done():
	}
	// Shutdown order: stop taking requests and drain them, then stop the
	// workers, then (deferred) close the database.
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown incomplete", slog.String("error", err.Error()))
		_ = srv.Close()
	}
	log.Info("shutdown: http drained")
	hooks.Close() // commits what the drained requests queued
	for i := len(services) - 1; i >= 0; i-- {
		services[i].Stop()
	}
	log.Info("shutdown: services stopped")
	return nil
}

// printDevBanner tells a developer running `make run` where to go and how to
// authenticate.
func printDevBanner(out io.Writer, cfg config.Config, addr net.Addr, g *graphSetup) {
	host := "127.0.0.1"
	port := addr.(*net.TCPAddr).Port
	base := fmt.Sprintf("http://%s:%d", host, port)
	fmt.Fprintf(out, "\ncalsync is running in emulator mode.\n\n  Playground: %s/playground\n", base)
	if g.emulator != nil {
		fmt.Fprintf(out, "  Graph emulator: %s (control API under /_emulator/)\n", g.emulator.URL)
	}
	if g.demoFile != "" {
		fmt.Fprintf(out, "  Demo authOfficeCalendar.json: %s\n", g.demoFile)
	}
	if len(cfg.JWTSecret) > 0 {
		now := time.Now()
		admin, _ := auth.Sign(cfg.JWTSecret, auth.Caller{UserID: "demo-admin", CompanyID: "demo-company", Roles: []auth.Role{auth.SystemAdmin, auth.UserAdmin}}, 12*time.Hour, now)
		svc, _ := auth.Sign(cfg.JWTSecret, auth.Caller{UserID: "demo-host", CompanyID: "demo-company", Roles: []auth.Role{auth.Service}}, 12*time.Hour, now)
		fmt.Fprintf(out, "\n  System admin header (paste into the Playground's Headers tab):\n  {\"Authorization\": \"Bearer %s\"}\n", admin)
		fmt.Fprintf(out, "\n  Service (host backend) header:\n  {\"Authorization\": \"Bearer %s\"}\n\n", svc)
	}
}

// servePprof serves net/http/pprof on its own loopback listener
// (CALSYNC_PPROF_ADDR), apart from the public handler, and returns what
// closes it.
func servePprof(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on CALSYNC_PPROF_ADDR %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	// Block and mutex profiles sample only while profiling is on: a
	// blocking event of 10 µs or more, one contended lock in 10.
	runtime.SetBlockProfileRate(10_000)
	runtime.SetMutexProfileFraction(10)
	go func() { _ = srv.Serve(ln) }()
	log.Info("pprof listening", slog.String("addr", ln.Addr().String()))
	return func() { _ = srv.Close() }, nil
}

// warmConns is how many database connections serve opens before it
// answers: the two group committers, the four subscription lookups and two
// for the workers.
const warmConns = 8
