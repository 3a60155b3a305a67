package graphemu

import "time"

// faults are the failures a test asked for; each is consumed as it fires.
type faults struct {
	mailbox           map[string]*mailboxFault // by mailbox id
	dropNotifications int
	dropSilently      bool
	delayCount        int
	delayBy           time.Duration
	failHandshake     int
	dropResponse      int
	replayDelta       int
}

func (e *Emulator) takeDropResponse() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults.dropResponse > 0 {
		e.faults.dropResponse--
		return true
	}
	return false
}

func (e *Emulator) takeFailHandshake() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.faults.failHandshake > 0 {
		e.faults.failHandshake--
		return true
	}
	return false
}
