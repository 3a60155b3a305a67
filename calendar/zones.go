package calendar

import (
	"strings"
	"time"
)

// windowsZone maps IANA zones to the Windows zone names Outlook uses (from
// CLDR windowsZones.xml). Zones not listed are sent as IANA names, which
// Graph also accepts.
var windowsZone = map[string]string{
	"Asia/Tokyo":          "Tokyo Standard Time",
	"UTC":                 "UTC",
	"Etc/UTC":             "UTC",
	"Asia/Seoul":          "Korea Standard Time",
	"Asia/Shanghai":       "China Standard Time",
	"Asia/Hong_Kong":      "China Standard Time",
	"Asia/Taipei":         "Taipei Standard Time",
	"Asia/Singapore":      "Singapore Standard Time",
	"Asia/Bangkok":        "SE Asia Standard Time",
	"Asia/Ho_Chi_Minh":    "SE Asia Standard Time",
	"Asia/Jakarta":        "SE Asia Standard Time",
	"Asia/Manila":         "Singapore Standard Time",
	"Asia/Kolkata":        "India Standard Time",
	"Asia/Calcutta":       "India Standard Time",
	"Asia/Dubai":          "Arabian Standard Time",
	"Australia/Sydney":    "AUS Eastern Standard Time",
	"Australia/Melbourne": "AUS Eastern Standard Time",
	"Australia/Brisbane":  "E. Australia Standard Time",
	"Australia/Perth":     "W. Australia Standard Time",
	"Pacific/Auckland":    "New Zealand Standard Time",
	"Pacific/Honolulu":    "Hawaiian Standard Time",
	"America/Los_Angeles": "Pacific Standard Time",
	"America/Denver":      "Mountain Standard Time",
	"America/Phoenix":     "US Mountain Standard Time",
	"America/Chicago":     "Central Standard Time",
	"America/New_York":    "Eastern Standard Time",
	"America/Toronto":     "Eastern Standard Time",
	"America/Sao_Paulo":   "E. South America Standard Time",
	"Europe/London":       "GMT Standard Time",
	"Europe/Berlin":       "W. Europe Standard Time",
	"Europe/Amsterdam":    "W. Europe Standard Time",
	"Europe/Paris":        "Romance Standard Time",
	"Europe/Madrid":       "Romance Standard Time",
	"Europe/Warsaw":       "Central European Standard Time",
	"Europe/Moscow":       "Russian Standard Time",
}

// WindowsZone returns the zone name to send to Graph for an IANA zone.
func WindowsZone(iana string) string {
	if w, ok := windowsZone[iana]; ok {
		return w
	}
	return iana
}

// aliasZones share a Windows name with a canonical zone listed above;
// reading a Windows name back gives the canonical one.
var aliasZones = map[string]bool{
	"Etc/UTC": true, "Asia/Hong_Kong": true, "Asia/Ho_Chi_Minh": true, "Asia/Jakarta": true, "Asia/Calcutta": true,
	"Australia/Melbourne": true, "America/Toronto": true, "Europe/Amsterdam": true, "Europe/Madrid": true, "Asia/Manila": true,
}

// IANAZone returns the location for a zone name Outlook reports (Windows or
// IANA), and whether it is known.
func IANAZone(name string) (*time.Location, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, false
	}
	for iana, win := range windowsZone {
		if !aliasZones[iana] && strings.EqualFold(win, name) {
			loc, err := time.LoadLocation(iana)
			return loc, err == nil
		}
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}
