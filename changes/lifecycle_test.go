package changes_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/changes"
	"github.com/tehaishokunin/calsync/internal/cursor"
	"github.com/tehaishokunin/calsync/internal/testenv"
)

// service is the start/stop shape every background service has.
type service interface {
	Start(context.Context) error
	Stop()
}

// TestServicesStartAndStopCleanly: Stop without Start is a no-op, a second
// Start while running is refused (it would leak the first run's loops),
// Stop twice is a no-op, and a stopped service starts again.
func TestServicesStartAndStopCleanly(t *testing.T) {
	t.Parallel()
	e := testenv.New(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, s := range map[string]service{
		"feed":   changes.NewFeed(e.Store, 50*time.Millisecond, cursor.NewCodec([]byte("k")), log),
		"worker": changes.NewWorker(e.Store, e.Syncer, nil, 50*time.Millisecond, log),
	} {
		t.Run(name, func(t *testing.T) {
			s.Stop() // never started
			ctx := context.Background()
			for round := 1; round <= 2; round++ {
				if err := s.Start(ctx); err != nil {
					t.Fatalf("start %d: %v", round, err)
				}
				if err := s.Start(ctx); err == nil {
					t.Fatalf("a second Start while running was accepted (round %d)", round)
				}
				time.Sleep(120 * time.Millisecond) // let a few poll ticks run
				stopped := make(chan struct{})
				go func() { s.Stop(); s.Stop(); close(stopped) }()
				select {
				case <-stopped:
				case <-time.After(20 * time.Second):
					t.Fatalf("Stop did not return (round %d)", round)
				}
			}
		})
	}
}
