package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/tehaishokunin/calsync/config"
	"github.com/tehaishokunin/calsync/graphemu"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/outlook"
	"github.com/tehaishokunin/calsync/secrets"
)

// Demo tenant seeded into the in-process emulator by `make run`.
const (
	demoTenantID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
	demoDomain   = "tehai-demo.onmicrosoft.com"
	demoClientID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
	demoSecret   = "Dm8Q~calsync-demo-secret-value-for-emulator"
)

// demoUsers have fixed ids so links survive restarting `make run` (the
// in-process emulator starts empty each time).
var demoUsers = []graphemu.UserSpec{
	{ID: "d3a1c0de-0000-4000-8000-000000000001", Mail: "taro.yamada@" + demoDomain, DisplayName: "山田 太郎"},
	{ID: "d3a1c0de-0000-4000-8000-000000000002", Mail: "hanako.sato@" + demoDomain, DisplayName: "佐藤 花子"},
	{ID: "d3a1c0de-0000-4000-8000-000000000003", Mail: "ichiro.suzuki@" + demoDomain, DisplayName: "鈴木 一郎"},
}

// graphSetup is how calsync reaches Microsoft (or an emulator of it).
type graphSetup struct {
	client   *outlook.Client
	emulator *graphemu.Server // the in-process one, when running it
	demoFile string
}

func (g *graphSetup) close() {
	if g.emulator != nil {
		g.emulator.Close()
	}
}

// newGraph builds the Graph client: against Microsoft, a standalone
// emulator (CALSYNC_GRAPH_BASE_URL + CA file), or an in-process emulator
// seeded with a demo tenant. responses (may be nil) is told the status of
// every answer Graph gives.
func newGraph(ctx context.Context, cfg config.Config, devDir string, responses func(int), log *slog.Logger) (*graphSetup, error) {
	if cfg.InProcessEmulator() {
		emu, err := graphemu.Start("127.0.0.1:0", graphemu.Options{Logger: log.With(slog.String("component", "graphemu"))})
		if err != nil {
			return nil, fmt.Errorf("starting the in-process Graph emulator: %w", err)
		}
		if _, err := emu.AddTenant(graphemu.TenantSpec{
			TenantID: demoTenantID, Domain: demoDomain,
			Apps:  []graphemu.AppSpec{{ClientID: demoClientID, Secret: demoSecret, Roles: []string{"Calendars.ReadWrite", "User.Read.All"}}},
			Users: demoUsers,
		}); err != nil {
			emu.Close()
			return nil, fmt.Errorf("seeding the demo tenant: %w", err)
		}
		g := &graphSetup{
			client:   outlook.New(outlook.Config{GraphBaseURL: emu.URL, LoginBaseURL: emu.URL, Transport: emu.Transport(), Timeout: cfg.GraphTimeout, Responses: responses}),
			emulator: emu,
		}
		if path, err := writeDemoFile(devDir); err == nil {
			g.demoFile = path
		} else {
			log.WarnContext(ctx, "could not write the demo authOfficeCalendar.json", slog.String("error", err.Error()))
		}
		log.InfoContext(ctx, "in-process Graph emulator running", slog.String("url", emu.URL))
		return g, nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Every call goes to one host, from the worker's, renewer's and pushes'
	// concurrent calls. Go keeps 2 idle connections per host by default;
	// over HTTP/1.1 the others were closed after each call and dialled
	// again, a TLS handshake each (renewing 10,000 subscriptions at once:
	// 694-743/s with 2, 964-1,036/s with 64). Over HTTP/2 one connection
	// carries them all and this does not matter.
	transport.MaxIdleConnsPerHost = 64
	if cfg.GraphCAFile != "" {
		pem, err := os.ReadFile(cfg.GraphCAFile)
		if err != nil {
			return nil, fmt.Errorf("CALSYNC_GRAPH_CA_FILE: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CALSYNC_GRAPH_CA_FILE: no PEM certificate in %s", cfg.GraphCAFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &graphSetup{client: outlook.New(outlook.Config{GraphBaseURL: cfg.GraphBaseURL, LoginBaseURL: cfg.LoginBaseURL, Transport: transport, Timeout: cfg.GraphTimeout, Responses: responses})}, nil
}

// writeDemoFile writes the demo tenant's authOfficeCalendar.json into the
// git-ignored .dev folder, for uploading in the Playground.
func writeDemoFile(dir string) (string, error) {
	if dir == "" {
		dir = ".dev"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "authOfficeCalendar.json")
	b, _ := json.MarshalIndent(map[string]string{"tenant_id": demoTenantID, "client_id": demoClientID, "client_secret": demoSecret}, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return filepath.Abs(path)
}

// newKeyring seals with CALSYNC_ENCRYPTION_KEY, or with the fixed
// development key when running against an emulator without one.
func newKeyring(cfg config.Config, log *slog.Logger) (*secrets.Keyring, error) {
	key := cfg.EncryptionKey
	if key == nil {
		if !cfg.Emulator() {
			return nil, fmt.Errorf("CALSYNC_ENCRYPTION_KEY is required")
		}
		log.Warn("no CALSYNC_ENCRYPTION_KEY: sealing secrets with the public development key (emulator mode only)")
		key = secrets.DevKey()
	}
	return secrets.NewKeyring(key, cfg.OldEncryptionKeys...)
}

// newCursorCodec seals the connections' cursors with keys derived from the
// encryption key (and the old ones, so cursors outlive a key rotation).
func newCursorCodec(cfg config.Config) *cursor.Codec {
	key := cfg.EncryptionKey
	if key == nil {
		key = secrets.DevKey()
	}
	return cursor.NewCodec(append([][]byte{key}, cfg.OldEncryptionKeys...)...)
}
