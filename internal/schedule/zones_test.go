package schedule

import (
	"testing"
	"time"

	"github.com/tehaishokunin/calsync/apperr"
	"github.com/tehaishokunin/calsync/internal/zonedata"
)

// goZones lists every zone in Go's time zone database.
func goZones(t *testing.T) []string { return zonedata.GoZones(t) }

// TestEveryZoneIsSentOrRefused: an entry in any zone Go knows is either
// sent as a Windows zone that keeps its clock, or refused naming timeZone
// — never shifted. The refused are few (no Windows zone, or CLDR's Windows
// zone keeps another clock than this tz database).
func TestEveryZoneIsSentOrRefused(t *testing.T) {
	var refused []string
	zones := goZones(t)
	for _, z := range zones {
		loc, err := time.LoadLocation(z)
		if err != nil {
			t.Fatalf("%s: %v", z, err)
		}
		for _, month := range []time.Month{time.January, time.July} {
			start := time.Date(2027, month, 15, 10, 0, 0, 0, loc)
			in := Input{ExternalID: "e", Subject: "s", TimeZone: &z, Start: start.Format(time.RFC3339), End: start.Add(time.Hour).Format(time.RFC3339)}
			e, err := Validate(in, "")
			if err != nil {
				if f := apperr.As(err).Field; f != "timeZone" {
					t.Errorf("%s: refused on %q: %v", z, f, err)
				}
				refused = append(refused, z+" "+month.String())
				continue
			}
			w, _ := WindowsZone(z)
			golden, _ := IANAZone(w)
			if _, a := e.Start.Zone(); a != offsetIn(golden, e.Start) {
				t.Errorf("%s sent as %s shifts %s", z, w, e.Start)
			}
		}
	}
	t.Logf("%d zones; refused: %v", len(zones), refused)
	if len(refused) > 12 {
		t.Errorf("%d zone-months refused", len(refused))
	}
	for name, want := range map[string]string{"Europe/Rome": "W. Europe Standard Time", "Asia/Tokyo": "Tokyo Standard Time",
		"Asia/Calcutta": "India Standard Time", "Asia/Kolkata": "India Standard Time", "UTC": "UTC", "America/Vancouver": "Pacific Standard Time",
		"Australia/Lord_Howe": "Lord Howe Standard Time", "America/Santiago": "Pacific SA Standard Time"} {
		if got, _ := WindowsZone(name); got != want {
			t.Errorf("%s → %q, want %q", name, got, want)
		}
	}
	for _, name := range []string{"Factory", "Local"} {
		if _, ok := WindowsZone(name); ok {
			t.Errorf("%s has a Windows zone", name)
		}
	}
}

func offsetIn(l *time.Location, t time.Time) int { _, o := t.In(l).Zone(); return o }
