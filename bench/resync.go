package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// idleResync measures the safety net under change notifications: every
// linked calendar gets a delta round at least every CALSYNC_RESYNC_INTERVAL
// (issue 16 §3). calsync is restarted with the shortest interval (1m) and
// the linked users' polls re-spread, then left idle for a few intervals
// while the emulator counts the calendarView/delta requests: how many each
// idle link costs per interval, and how evenly they come. The figure for
// 10,000 idle links at the default 30m follows from the per-round cost.
func idleResync(ctx context.Context, e *env, r *Report) error {
	o := e.opts
	window := 3 * time.Minute
	if o.Duration < time.Second {
		window = 15 * time.Second // smoke
	}
	const interval = time.Minute
	restart := func(extra ...string) error {
		_ = e.proc.Process.Signal(os.Interrupt)
		_ = e.proc.Wait()
		saved := e.procEnv
		e.procEnv = append(append([]string{}, saved...), extra...)
		err := e.launch()
		e.procEnv = saved
		return err
	}
	if _, err := e.store.DB().ExecContext(ctx, `UPDATE calendar_links SET next_poll_at = NULL WHERE provider <> 'NONE'`); err != nil {
		return err
	}
	var links int
	if err := e.store.DB().QueryRowContext(ctx, `SELECT count(*) FROM calendar_links WHERE provider <> 'NONE' AND status IN ('ACTIVE', 'POLLING')`).Scan(&links); err != nil {
		return err
	}
	if err := restart("CALSYNC_RESYNC_INTERVAL=" + interval.String()); err != nil {
		return err
	}
	since := e.emu.LastRequestSeq()
	began := time.Now()
	time.Sleep(window)
	const bucket = 5 * time.Second
	counts := make([]int, int(window/bucket))
	n := 0
	for _, rec := range e.emu.Requests(since) {
		if !strings.Contains(rec.Path, "/calendarView/delta") || rec.At.Before(began) {
			continue
		}
		n++
		if i := int(rec.At.Sub(began) / bucket); i < len(counts) {
			counts[i]++
		}
	}
	if err := restart(); err != nil { // back to the defaults for what follows
		return err
	}
	if links == 0 {
		return fmt.Errorf("no linked calendars to poll")
	}
	perRound := float64(n) / float64(links) / (float64(window) / float64(interval))
	busiest, mean := 0, float64(n)/float64(len(counts))
	// The first interval holds the re-spread first polls; evenness is
	// judged after it.
	for _, c := range counts[min(int(interval/bucket), len(counts)-1):] {
		busiest = max(busiest, c)
	}
	o.logf("idle resync: %d delta requests for %d links over %v", n, links, window)
	perHour := 10000 * perRound * float64(time.Hour/(30*time.Minute))
	r.add("7. Resync safety net", fmt.Sprintf("Graph requests per idle link per interval (%d links, %v at a 1m interval)", links, window),
		fmt.Sprintf("%.2f", perRound), "", "", "1 (one delta round)", yes(perRound > 0.8 && perRound < 1.25))
	r.add("7. Resync safety net", "Graph requests per hour for 10,000 idle links at the default 30m",
		fmt.Sprintf("%.0f (%.1f/s)", perHour, perHour/3600), "", "", "≤ 20,000", yes(perHour <= 20000*1.1))
	r.add("7. Resync safety net", "busiest 5 s vs the average 5 s (spread over the interval)",
		fmt.Sprintf("%d vs %.1f", busiest, mean), "", ratio(float64(busiest), mean), "< 3×", yes(float64(busiest) < 3*mean+2))
	return nil
}
