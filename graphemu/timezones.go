package graphemu

import (
	"strings"
	"time"
)

// windowsZones maps the Windows time zone names Outlook uses to IANA zones
// (from CLDR's windowsZones.xml, territory 001). Graph accepts either form.
var windowsZones = map[string]string{
	"UTC":                             "UTC",
	"GMT Standard Time":               "Europe/London",
	"Greenwich Standard Time":         "Atlantic/Reykjavik",
	"W. Europe Standard Time":         "Europe/Berlin",
	"Central Europe Standard Time":    "Europe/Budapest",
	"Romance Standard Time":           "Europe/Paris",
	"Central European Standard Time":  "Europe/Warsaw",
	"E. Europe Standard Time":         "Europe/Chisinau",
	"FLE Standard Time":               "Europe/Kiev",
	"GTB Standard Time":               "Europe/Bucharest",
	"Russian Standard Time":           "Europe/Moscow",
	"Turkey Standard Time":            "Europe/Istanbul",
	"Israel Standard Time":            "Asia/Jerusalem",
	"Arabian Standard Time":           "Asia/Dubai",
	"India Standard Time":             "Asia/Calcutta",
	"SE Asia Standard Time":           "Asia/Bangkok",
	"China Standard Time":             "Asia/Shanghai",
	"Singapore Standard Time":         "Asia/Singapore",
	"Taipei Standard Time":            "Asia/Taipei",
	"Tokyo Standard Time":             "Asia/Tokyo",
	"Korea Standard Time":             "Asia/Seoul",
	"AUS Eastern Standard Time":       "Australia/Sydney",
	"E. Australia Standard Time":      "Australia/Brisbane",
	"Cen. Australia Standard Time":    "Australia/Adelaide",
	"W. Australia Standard Time":      "Australia/Perth",
	"New Zealand Standard Time":       "Pacific/Auckland",
	"Hawaiian Standard Time":          "Pacific/Honolulu",
	"Alaskan Standard Time":           "America/Anchorage",
	"Pacific Standard Time":           "America/Los_Angeles",
	"Mountain Standard Time":          "America/Denver",
	"US Mountain Standard Time":       "America/Phoenix",
	"Central Standard Time":           "America/Chicago",
	"Eastern Standard Time":           "America/New_York",
	"Atlantic Standard Time":          "America/Halifax",
	"Newfoundland Standard Time":      "America/St_Johns",
	"SA Pacific Standard Time":        "America/Bogota",
	"E. South America Standard Time":  "America/Sao_Paulo",
	"Argentina Standard Time":         "America/Buenos_Aires",
	"Central Standard Time (Mexico)":  "America/Mexico_City",
	"South Africa Standard Time":      "Africa/Johannesburg",
	"Egypt Standard Time":             "Africa/Cairo",
	"W. Central Africa Standard Time": "Africa/Lagos",
}

// resolveZone accepts a Windows or IANA zone name.
func resolveZone(name string) (*time.Location, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return time.UTC, true
	}
	for win, iana := range windowsZones {
		if strings.EqualFold(win, name) {
			loc, err := time.LoadLocation(iana)
			return loc, err == nil
		}
	}
	if strings.EqualFold(name, "utc") || strings.EqualFold(name, "Etc/UTC") {
		return time.UTC, true
	}
	loc, err := time.LoadLocation(name)
	return loc, err == nil
}

const graphDateTime = "2006-01-02T15:04:05.0000000"

// parseDateTimeTimeZone reads Graph's dateTimeTimeZone.
func parseDateTimeTimeZone(v any) (time.Time, string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return time.Time{}, "", false
	}
	dt, _ := m["dateTime"].(string)
	tz, _ := m["timeZone"].(string)
	loc, ok := resolveZone(tz)
	if !ok || dt == "" {
		return time.Time{}, "", false
	}
	for _, layout := range []string{"2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, dt, loc); err == nil {
			if tz == "" {
				tz = "UTC"
			}
			return t, tz, true
		}
	}
	// An offset in the string wins over the zone name, as in Graph.
	if t, err := time.Parse(time.RFC3339Nano, dt); err == nil {
		if tz == "" {
			tz = "UTC"
		}
		return t, tz, true
	}
	return time.Time{}, "", false
}
