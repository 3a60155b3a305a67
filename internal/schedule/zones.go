package schedule

import (
	"strings"
	"sync"
	"time"
)

//go:generate go run ../zonedata/gen -data ../zonedata -emit client -pkg schedule -out zones_gen.go

// WindowsZone returns the Windows zone name Outlook stores for an IANA
// zone (CLDR windowsZones, aliases included), and false for the few zones
// with no Windows equivalent (Antarctica/Troll, Factory, Local): Graph
// accepts any Windows name but only a short list of IANA names
// (api-reference/v1.0/resources/datetimetimezone.md), so calsync always
// sends the Windows name.
func WindowsZone(iana string) (string, bool) {
	w, ok := ianaWindows[iana]
	return w, ok
}

// IANAZone returns the location for a zone name Outlook reports — a
// Windows name (read as CLDR's golden zone for it) or an IANA one — and
// whether it is known.
func IANAZone(name string) (*time.Location, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, false
	}
	if iana, ok := windowsIANA[name]; ok {
		name = iana
	} else {
		for win, iana := range windowsIANA {
			if strings.EqualFold(win, name) {
				name = iana
				break
			}
		}
	}
	if name == "Local" {
		return nil, false
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}

// KeepsClock reports whether Outlook, storing times of zone as its Windows
// zone (read as that zone's golden IANA zone), keeps every instant from
// start to end: the offsets agree at both ends and at every transition of
// either zone between them. A few zones differ from their Windows zone
// (CLDR and the tz database disagree: America/Scoresbysund,
// Antarctica/Casey, Antarctica/Vostok at the time of writing); their
// entries are refused rather than shifted.
func KeepsClock(zone string, start, end time.Time) bool {
	w, ok := WindowsZone(zone)
	if !ok {
		return false
	}
	a, errA := time.LoadLocation(zone)
	b, ok := IANAZone(w)
	if errA != nil || !ok {
		return false
	}
	offset := func(l *time.Location, t time.Time) int { _, o := t.In(l).Zone(); return o }
	for _, l := range []*time.Location{a, b} {
		for t := start; !t.After(end); {
			if offset(a, t) != offset(b, t) {
				return false
			}
			_, next := t.In(l).ZoneBounds()
			if next.IsZero() || !next.After(t) {
				break
			}
			t = next
		}
	}
	return offset(a, end) == offset(b, end)
}

// zones caches the locations of the zone names stored views carry (the
// closed set IANAZone knows), so reading many views does not load the
// same zone file again.
var zones sync.Map // name -> *time.Location

func zoneOf(name string) (*time.Location, bool) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), true
	}
	l, ok := IANAZone(name)
	if ok {
		zones.Store(name, l)
	}
	return l, ok
}
