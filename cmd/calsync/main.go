// Command calsync is the composition root: it reads the configuration, builds
// every dependency, and runs one of the subcommands
//
//	calsync serve
//	calsync migrate [up|down|status]
//	calsync dev-token --company C --user U --roles system_admin,user_admin
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tehaishokunin/calsync/auth"
	"github.com/tehaishokunin/calsync/config"
	"github.com/tehaishokunin/calsync/credentials"
	"github.com/tehaishokunin/calsync/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "calsync:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  calsync serve
  calsync migrate [up|down|status]
  calsync dev-token --company C --user U --roles system_admin,user_admin [--ttl 12h]
  calsync rotate-key     (re-seal every stored secret under CALSYNC_ENCRYPTION_KEY;
                          list the previous key in CALSYNC_ENCRYPTION_OLD_KEYS)

Configuration is read from the environment; see README.md.`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	if args[0] == "dev-token" {
		// Only the JWT secret: the rest of serve's configuration is not
		// needed to sign a token, so it is neither required nor checked.
		secret, err := config.LoadJWTSecret(getenv)
		if err != nil {
			return fmt.Errorf("dev-token: invalid configuration:\n%w", err)
		}
		return devToken(secret, args[1:], stdout)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(stderr, cfg.LogLevel)
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, getenv, log, stdout)
	case "migrate":
		return migrateCmd(ctx, cfg, args[1:], stdout)
	case "rotate-key":
		return rotateKey(ctx, cfg, log, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	default:
		fmt.Fprintln(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

func migrateCmd(ctx context.Context, cfg config.Config, args []string, out io.Writer) error {
	action := "up"
	if len(args) > 0 {
		action = args[0]
	}
	if cfg.Emulator() {
		if err := db.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
			return err
		}
	}
	d := db.Open(cfg.DatabaseURL, db.Options{MaxOpenConns: 2})
	defer d.Close()
	m, err := db.NewMigrator(d)
	if err != nil {
		return err
	}
	switch action {
	case "up":
		names, err := m.Up(ctx)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(out, "no pending migrations")
		}
		for _, n := range names {
			fmt.Fprintln(out, "applied", n)
		}
	case "down":
		names, err := m.Down(ctx)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			fmt.Fprintln(out, "nothing to roll back")
		}
		for _, n := range names {
			fmt.Fprintln(out, "rolled back", n)
		}
	case "status":
		st, err := m.Status(ctx)
		if err != nil {
			return err
		}
		for _, s := range st {
			state := "pending"
			if s.Applied {
				state = "applied " + s.AppliedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(out, "%-40s %s\n", s.Name+"_"+s.Comment, state)
		}
	default:
		return fmt.Errorf("migrate: unknown action %q (want up, down or status)", action)
	}
	return nil
}

func devToken(secret []byte, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dev-token", flag.ContinueOnError)
	company := fs.String("company", "", "company id (required)")
	user := fs.String("user", "", "host user id (required)")
	roles := fs.String("roles", "", "comma-separated roles: system_admin,user_admin,service,member (required)")
	ttl := fs.Duration("ttl", 12*time.Hour, "token lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *company == "" || *user == "" || *roles == "" {
		return errors.New("dev-token: --company, --user and --roles are required")
	}
	rs, err := auth.ParseRoles(*roles)
	if err != nil {
		return fmt.Errorf("dev-token: %w", err)
	}
	tok, err := auth.Sign(secret, auth.Caller{UserID: *user, CompanyID: *company, Roles: rs}, *ttl, time.Now())
	if err != nil {
		return fmt.Errorf("dev-token: %w", err)
	}
	fmt.Fprintln(out, tok)
	return nil
}

func rotateKey(ctx context.Context, cfg config.Config, log *slog.Logger, out io.Writer) error {
	if len(cfg.OldEncryptionKeys) == 0 {
		return errors.New("rotate-key: list the previous key(s) in CALSYNC_ENCRYPTION_OLD_KEYS so existing secrets can be opened")
	}
	keys, err := newKeyring(cfg, log)
	if err != nil {
		return err
	}
	d := db.Open(cfg.DatabaseURL, db.Options{MaxOpenConns: 2})
	defer d.Close()
	n, err := credentials.NewService(credentials.NewSessions(db.NewStore(d), keys, nil, log), nil, nil, log).Reseal(ctx)
	if err != nil {
		return fmt.Errorf("rotate-key: %w (re-sealed %d before the failure)", err, n)
	}
	fmt.Fprintf(out, "re-sealed %d secrets under key %s; CALSYNC_ENCRYPTION_OLD_KEYS can be emptied\n", n, keys.CurrentID())
	return nil
}
