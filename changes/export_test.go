package changes

import "time"

// WakeForTest wakes a company's streams as a NOTIFY would.
func (f *Feed) WakeForTest(companyID string) { f.wake(companyID) }

// SetClockForTest moves the syncer's clock (the window follows it).
func (s *Syncer) SetClockForTest(now func() time.Time) { s.now = now }

// SetLeaseForTest sets how long a host webhook delivery lease lasts.
func (h *HostWebhook) SetLeaseForTest(d time.Duration) { h.lease = d }

// HoldVacuumForTest makes every vacuum call hold first (set before Start).
func (w *Worker) HoldVacuumForTest(hold func()) { w.vacuumHook = hold }

// VacuumDueForTest makes both vacuums due at the next claim.
func (w *Worker) VacuumDueForTest() {
	w.processed.Store(vacuumAfter)
	w.lastVacuum.Store(time.Unix(0, 0))
	w.lastMirrorLook.Store(time.Unix(0, 0))
}
