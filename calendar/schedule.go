package calendar

import (
	"time"

	"github.com/tehaishokunin/calsync/internal/schedule"
)

// The host's side of an entry lives in internal/schedule, a leaf package
// without the Microsoft SDK (cheap to build and to fuzz); these names keep
// calendar the one place the rest of calsync asks.
type (
	// Event is an Outlook event as the host sees it.
	Event = schedule.Event
	// Input is a schedule entry as the host sends it.
	Input = schedule.Input
	// Entry is a validated Input.
	Entry = schedule.Entry
)

// Event types as the host sees them.
const (
	SingleInstance = schedule.SingleInstance
	SeriesMaster   = schedule.SeriesMaster
	Occurrence     = schedule.Occurrence
	Exception      = schedule.Exception
)

// Limits on pushed entries.
const (
	MaxSubject    = schedule.MaxSubject
	MaxLocation   = schedule.MaxLocation
	MaxBody       = schedule.MaxBody
	MaxCategories = schedule.MaxCategories
	MaxExternalID = schedule.MaxExternalID
	MaxReminder   = schedule.MaxReminder
	DefaultZone   = schedule.DefaultZone
)

// Validate checks an Input (see schedule.Validate).
func Validate(in Input, prefix string) (Entry, error) { return schedule.Validate(in, prefix) }

// ChangedFields lists the host's fields that differ between two views.
func ChangedFields(before, after Event) []string { return schedule.ChangedFields(before, after) }

// SameAsSeries says whether an occurrence shows what its series says.
func SameAsSeries(master, occ Event) bool { return schedule.SameAsSeries(master, occ) }

// WindowsZone is the Windows zone Outlook stores for an IANA zone.
func WindowsZone(iana string) (string, bool) { return schedule.WindowsZone(iana) }

// IANAZone is the location of a zone name Outlook reports.
func IANAZone(name string) (*time.Location, bool) { return schedule.IANAZone(name) }

// KeepsClock says whether Outlook keeps the entry's clock in zone.
func KeepsClock(zone string, start, end time.Time) bool { return schedule.KeepsClock(zone, start, end) }
