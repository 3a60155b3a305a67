// Package config reads calsync's settings from the environment into one
// struct and validates them, naming the variable at fault, so a bad deploy
// stops at start-up instead of failing later at 3 a.m.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Graph modes.
const (
	GraphMicrosoft = "microsoft"
	GraphEmulator  = "emulator"
)

// Config is every setting calsync reads. See API.md for the contract.
type Config struct {
	Addr        string
	DatabaseURL string
	PublicURL   *url.URL

	// EncryptionKey seals client secrets (32 bytes). Empty only with the
	// emulator.
	EncryptionKey []byte
	// OldEncryptionKeys still open secrets sealed before a rotation.
	OldEncryptionKeys [][]byte

	JWTSecret []byte
	JWKSURL   string

	Graph        string
	GraphBaseURL string
	LoginBaseURL string
	GraphCAFile  string

	HostWebhookURL    string
	HostWebhookSecret []byte

	// AllowedOrigins are the browser origins that may open a websocket
	// (and, later, use CORS). Same-origin requests are always allowed.
	AllowedOrigins []string

	MaxBodyBytes int64
	// MaxAnonymousBodyBytes caps GraphQL bodies sent without a valid token.
	MaxAnonymousBodyBytes int64
	ShutdownTimeout       time.Duration
	// GraphTimeout bounds one Graph call, the SDK's retries included.
	GraphTimeout time.Duration
	// InboxRetention is how long processed notifications are kept.
	InboxRetention time.Duration
	// ResyncInterval is the longest a linked calendar goes without a delta
	// round when no notification brings one.
	ResyncInterval time.Duration
	// FeedRetention is how long the change feed keeps changes.
	FeedRetention time.Duration
	LogLevel      string
	// PprofAddr serves net/http/pprof on a loopback address ("" : off).
	PprofAddr string
	// GCMinHeapBytes is the heap goal below which the collector is not
	// started (0, the default: Go's own pacing). Off when GOGC or
	// GOMEMLIMIT is set: an operator who tunes the collector is obeyed.
	GCMinHeapBytes int64

	// Playground and Introspection default to on only with the emulator.
	Playground    bool
	Introspection bool
	// ComplexityLimit caps a GraphQL operation's cost (one per field, list
	// fields times the page or input size asked for); MaxQueryDepth its
	// nesting; MaxAliases its aliased fields.
	ComplexityLimit int
	MaxQueryDepth   int
	MaxAliases      int
	// MaxQueryBytes, MaxQueryTokens and MaxQueryFields bound a GraphQL
	// document before it is validated: its text, its tokens, and its fields
	// with every fragment spread inlined.
	MaxQueryBytes  int
	MaxQueryTokens int
	MaxQueryFields int
	// SubscriptionsPerConnection and SubscriptionsPerCaller cap the live
	// GraphQL subscriptions of one websocket and of one caller (company and
	// user) on one replica.
	SubscriptionsPerConnection int
	SubscriptionsPerCaller     int
	// MutationsPerSecond and MutationBurst cap each company's mutations.
	MutationsPerSecond float64
	MutationBurst      int
}

// Defaults from API.md.
const (
	DefaultAddr = ":8080"
	// DefaultEmulatorAddr is the listen address with CALSYNC_GRAPH=emulator.
	DefaultEmulatorAddr = "127.0.0.1:8080"
	DefaultDatabaseURL  = "postgres://postgres@127.0.0.1:5432/calsync?sslmode=disable"
	DefaultPublicURL    = "http://127.0.0.1:8080"
	DefaultGraphURL     = "https://graph.microsoft.com"
	DefaultLoginURL     = "https://login.microsoftonline.com"
)

// Emulator reports whether calsync talks to a Graph emulator.
func (c Config) Emulator() bool { return c.Graph == GraphEmulator }

// InProcessEmulator reports whether serve should start its own emulator.
func (c Config) InProcessEmulator() bool {
	return c.Emulator() && c.GraphBaseURL == DefaultGraphURL
}

// Load reads the configuration through getenv (os.Getenv in production).
// Every problem found is reported, each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		DatabaseURL:           p.str("DATABASE_URL", DefaultDatabaseURL),
		Graph:                 p.str("CALSYNC_GRAPH", GraphMicrosoft),
		JWKSURL:               p.str("CALSYNC_JWKS_URL", ""),
		GraphCAFile:           p.str("CALSYNC_GRAPH_CA_FILE", ""),
		HostWebhookURL:        p.str("CALSYNC_HOST_WEBHOOK_URL", ""),
		MaxBodyBytes:          p.int64("CALSYNC_MAX_BODY_BYTES", 1<<20),
		MaxAnonymousBodyBytes: p.int64("CALSYNC_MAX_ANONYMOUS_BODY_BYTES", 64<<10),
		ShutdownTimeout:       p.duration("CALSYNC_SHUTDOWN_TIMEOUT", 10*time.Second),
		GraphTimeout:          p.duration("CALSYNC_GRAPH_TIMEOUT", 60*time.Second),
		InboxRetention:        p.duration("CALSYNC_INBOX_RETENTION", 24*time.Hour),
		ResyncInterval:        p.duration("CALSYNC_RESYNC_INTERVAL", 30*time.Minute),
		FeedRetention:         p.duration("CALSYNC_FEED_RETENTION", 720*time.Hour),
		LogLevel:              p.str("CALSYNC_LOG_LEVEL", "info"),
	}
	// The emulator hands system_admin tokens out on the Playground page:
	// it listens on loopback unless told otherwise.
	defaultAddr := DefaultAddr
	if c.Graph == GraphEmulator {
		defaultAddr = DefaultEmulatorAddr
	}
	c.Addr = p.str("CALSYNC_ADDR", defaultAddr)
	c.JWTSecret = []byte(p.secret("CALSYNC_JWT_SECRET"))
	c.HostWebhookSecret = []byte(p.secret("CALSYNC_HOST_WEBHOOK_SECRET"))
	if o := p.str("CALSYNC_ALLOWED_ORIGINS", ""); o != "" {
		for _, s := range strings.Split(o, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(s, "/"))
			}
		}
	}

	c.Playground = p.boolean("CALSYNC_PLAYGROUND", c.Graph == GraphEmulator)
	c.Introspection = p.boolean("CALSYNC_INTROSPECTION", c.Graph == GraphEmulator)
	c.ComplexityLimit = int(p.int64("CALSYNC_COMPLEXITY_LIMIT", 10000))
	c.MaxQueryDepth = int(p.int64("CALSYNC_MAX_QUERY_DEPTH", 12))
	c.MaxAliases = int(p.int64("CALSYNC_MAX_ALIASES", 20))
	c.MaxQueryBytes = int(p.int64("CALSYNC_MAX_QUERY_BYTES", 16<<10))
	c.MaxQueryTokens = int(p.int64("CALSYNC_MAX_QUERY_TOKENS", 4000))
	c.MaxQueryFields = int(p.int64("CALSYNC_MAX_QUERY_FIELDS", 1000))
	c.SubscriptionsPerConnection = int(p.int64("CALSYNC_WS_SUBSCRIPTIONS_PER_CONNECTION", 100))
	c.SubscriptionsPerCaller = int(p.int64("CALSYNC_WS_SUBSCRIPTIONS_PER_CALLER", 500))
	c.MutationsPerSecond = float64(p.int64("CALSYNC_COMPANY_MUTATIONS_PER_SECOND", 100))
	c.MutationBurst = int(p.int64("CALSYNC_COMPANY_MUTATION_BURST", 500))
	switch c.Graph {
	case GraphMicrosoft, GraphEmulator:
	default:
		p.fail("CALSYNC_GRAPH", "must be %q or %q, got %q", GraphMicrosoft, GraphEmulator, c.Graph)
	}
	c.GraphBaseURL = p.baseURL("CALSYNC_GRAPH_BASE_URL", DefaultGraphURL)
	c.LoginBaseURL = p.baseURL("CALSYNC_LOGIN_BASE_URL", DefaultLoginURL)

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		p.fail("CALSYNC_ADDR", "must be host:port or :port: %v", err)
	}
	// Profiles show code paths and timings to whoever can reach them:
	// loopback only (reach it through a port-forward).
	c.GCMinHeapBytes = p.int64("CALSYNC_GC_MIN_HEAP_BYTES", 0)
	if c.GCMinHeapBytes < 0 || c.GCMinHeapBytes > 16<<30 {
		p.fail("CALSYNC_GC_MIN_HEAP_BYTES", "must be between 0 (off) and 17179869184 (16 GiB), got %d", c.GCMinHeapBytes)
	}
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		c.GCMinHeapBytes = 0
	}
	if c.PprofAddr = p.str("CALSYNC_PPROF_ADDR", ""); c.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.PprofAddr); err != nil || !isLoopback(host) {
			p.fail("CALSYNC_PPROF_ADDR", "must be a loopback host:port such as 127.0.0.1:6060, got %q", c.PprofAddr)
		}
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		p.fail("DATABASE_URL", "must be a postgres:// URL")
	}

	pub := p.str("CALSYNC_PUBLIC_URL", DefaultPublicURL)
	if u, err := url.Parse(pub); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		p.fail("CALSYNC_PUBLIC_URL", "must be an absolute http(s) URL, got %q", pub)
	} else {
		u.Path = strings.TrimRight(u.Path, "/")
		c.PublicURL = u
		if u.Scheme == "http" && !(c.Emulator() && isLoopback(u.Hostname())) {
			p.fail("CALSYNC_PUBLIC_URL", "must be https: Microsoft Graph only delivers notifications to https endpoints (plain http is allowed only with CALSYNC_GRAPH=emulator on a loopback host)")
		}
	}

	if key := p.secret("CALSYNC_ENCRYPTION_KEY"); key != "" {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(key))
		if err != nil || len(b) != 32 {
			p.fail("CALSYNC_ENCRYPTION_KEY", "must be the base64 encoding of exactly 32 random bytes (e.g. `openssl rand -base64 32`)")
		} else {
			c.EncryptionKey = b
		}
	} else if !c.Emulator() {
		p.fail("CALSYNC_ENCRYPTION_KEY", "is required (base64 of 32 bytes) unless CALSYNC_GRAPH=emulator")
	}
	if old := p.secret("CALSYNC_ENCRYPTION_OLD_KEYS"); old != "" {
		for i, part := range strings.Split(old, ",") {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(part))
			if err != nil || len(b) != 32 {
				p.fail("CALSYNC_ENCRYPTION_OLD_KEYS", "entry %d must be the base64 encoding of exactly 32 bytes", i+1)
				continue
			}
			c.OldEncryptionKeys = append(c.OldEncryptionKeys, b)
		}
	}

	if len(c.JWTSecret) > 0 && len(c.JWTSecret) < 32 {
		p.fail("CALSYNC_JWT_SECRET", "must be at least 32 bytes long")
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			p.fail("CALSYNC_JWKS_URL", "must be an https URL")
		}
	}
	if c.HostWebhookURL != "" {
		if u, err := url.Parse(c.HostWebhookURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			p.fail("CALSYNC_HOST_WEBHOOK_URL", "must be an absolute http(s) URL")
		}
		if len(c.HostWebhookSecret) == 0 {
			p.fail("CALSYNC_HOST_WEBHOOK_SECRET", "is required when CALSYNC_HOST_WEBHOOK_URL is set")
		}
	}
	if c.MaxBodyBytes < 1024 {
		p.fail("CALSYNC_MAX_BODY_BYTES", "must be at least 1024")
	}
	if c.FeedRetention < time.Hour {
		p.fail("CALSYNC_FEED_RETENTION", "must be at least 1h (hosts follow the feed with cursors; older ones answer CURSOR_EXPIRED), got %s", c.FeedRetention)
	}
	if c.ResyncInterval < time.Minute || c.ResyncInterval > 24*time.Hour {
		p.fail("CALSYNC_RESYNC_INTERVAL", "must be between 1m and 24h (each linked calendar costs one Graph request per interval when idle), got %s", c.ResyncInterval)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.fail("CALSYNC_LOG_LEVEL", "must be debug, info, warn or error")
	}
	if len(p.errs) > 0 {
		return Config{}, errors.Join(p.errs...)
	}
	return c, nil
}

// LoadJWTSecret reads only CALSYNC_JWT_SECRET (or its _FILE), with the same
// checks as Load: what `calsync dev-token` needs to sign a token. A developer
// minting a token for a production-configured deployment's secret need not
// supply the rest of serve's configuration (https public URL, encryption
// key, …), nor have it validated.
func LoadJWTSecret(getenv func(string) string) ([]byte, error) {
	p := parser{getenv: getenv}
	secret := []byte(p.secret("CALSYNC_JWT_SECRET"))
	switch {
	case len(p.errs) > 0:
	case len(secret) == 0:
		p.fail("CALSYNC_JWT_SECRET", "is required to sign a token (tokens verified through CALSYNC_JWKS_URL are issued by the host, not by calsync)")
	case len(secret) < 32:
		p.fail("CALSYNC_JWT_SECRET", "must be at least 32 bytes long")
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return secret, nil
}

// RequireAuth checks what serve needs beyond Load: a way to verify callers.
func (c Config) RequireAuth() error {
	if len(c.JWTSecret) == 0 && c.JWKSURL == "" {
		return errors.New("CALSYNC_JWT_SECRET or CALSYNC_JWKS_URL: one is required to verify callers")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (p *parser) str(name, def string) string {
	if v := strings.TrimSpace(p.getenv(name)); v != "" {
		return v
	}
	return def
}

// secret reads NAME, or the file named by NAME_FILE (trailing newline
// trimmed). Setting both is an error: which one wins would be a guess.
func (p *parser) secret(name string) string {
	v := p.getenv(name)
	file := strings.TrimSpace(p.getenv(name + "_FILE"))
	if file == "" {
		return strings.TrimSpace(v)
	}
	if v != "" {
		p.fail(name, "set either %s or %s_FILE, not both", name, name)
		return ""
	}
	b, err := os.ReadFile(file)
	if err != nil {
		p.fail(name+"_FILE", "cannot read: %v", err)
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (p *parser) int64(name string, def int64) int64 {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(name, "must be an integer, got %q", v)
		return def
	}
	return n
}

func (p *parser) boolean(name string, def bool) bool {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(p.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, "must be a positive duration such as 10s, got %q", v)
		return def
	}
	return d
}

// baseURL reads a scheme://host[:port] URL; calsync adds the paths itself.
func (p *parser) baseURL(name, def string) string {
	v := p.str(name, def)
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		p.fail(name, "must be https://host[:port] with no path, got %q", v)
		return def
	}
	return "https://" + u.Host
}
