package graphemu

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

//go:generate go run ../internal/zonedata/gen -data ../internal/zonedata -emit emulator -pkg graphemu -out zones_gen.go

// graphIANAZones are the IANA names Graph accepts in dateTimeTimeZone
// besides Windows names: the closed list of
// api-reference/v1.0/resources/datetimetimezone.md ("Additional time
// zones"). Where the page gives two spellings ("Europe/Kyiv (Kiev)") both
// are accepted; "Asia/Toshkent" and "Asia/Astana" are not tz database
// names, so their parenthesised forms (Asia/Tashkent, Asia/Almaty) are the
// ones that load.
var graphIANAZones = []string{
	"Etc/GMT+12", "Etc/GMT+11", "Pacific/Honolulu", "America/Anchorage", "America/Santa_Isabel", "America/Los_Angeles",
	"America/Phoenix", "America/Chihuahua", "America/Denver", "America/Guatemala", "America/Chicago", "America/Mexico_City",
	"America/Regina", "America/Bogota", "America/New_York", "America/Indiana/Indianapolis", "America/Caracas",
	"America/Asuncion", "America/Halifax", "America/Cuiaba", "America/La_Paz", "America/Santiago", "America/St_Johns",
	"America/Sao_Paulo", "America/Argentina/Buenos_Aires", "America/Cayenne", "America/Godthab", "America/Montevideo",
	"America/Bahia", "Etc/GMT+2", "Atlantic/Azores", "Atlantic/Cape_Verde", "Africa/Casablanca", "Etc/GMT",
	"Europe/London", "Atlantic/Reykjavik", "Europe/Berlin", "Europe/Budapest", "Europe/Paris", "Europe/Warsaw",
	"Africa/Lagos", "Africa/Windhoek", "Europe/Bucharest", "Asia/Beirut", "Africa/Cairo", "Asia/Damascus",
	"Africa/Johannesburg", "Europe/Kyiv", "Europe/Kiev", "Europe/Istanbul", "Asia/Jerusalem", "Asia/Amman", "Asia/Baghdad",
	"Europe/Kaliningrad", "Asia/Riyadh", "Africa/Nairobi", "Asia/Tehran", "Asia/Dubai", "Asia/Baku", "Europe/Moscow",
	"Indian/Mauritius", "Asia/Tbilisi", "Asia/Yerevan", "Asia/Kabul", "Asia/Karachi", "Asia/Tashkent", "Asia/Kolkata",
	"Asia/Colombo", "Asia/Kathmandu", "Asia/Almaty", "Asia/Dhaka", "Asia/Yekaterinburg", "Asia/Yangon", "Asia/Rangoon",
	"Asia/Bangkok", "Asia/Novosibirsk", "Asia/Shanghai", "Asia/Krasnoyarsk", "Asia/Singapore", "Australia/Perth",
	"Asia/Taipei", "Asia/Ulaanbaatar", "Asia/Irkutsk", "Asia/Tokyo", "Asia/Seoul", "Australia/Adelaide",
	"Australia/Darwin", "Australia/Brisbane", "Australia/Sydney", "Pacific/Port_Moresby", "Australia/Hobart",
	"Asia/Yakutsk", "Pacific/Guadalcanal", "Asia/Vladivostok", "Pacific/Auckland", "Etc/GMT-12", "Pacific/Fiji",
	"Asia/Magadan", "Pacific/Tongatapu", "Pacific/Apia", "Pacific/Kiritimati",
}

// resolveZone accepts what Graph accepts: a Windows zone name (read as
// CLDR's golden zone for it) or one of graphIANAZones.
func resolveZone(name string) (*time.Location, bool) {
	name = strings.TrimSpace(name)
	if name == "" {
		return time.UTC, true
	}
	iana, ok := windowsIANA[name]
	if !ok {
		for win, z := range windowsIANA {
			if strings.EqualFold(win, name) {
				iana, ok = z, true
				break
			}
		}
	}
	if !ok && slices.Contains(graphIANAZones, name) {
		iana, ok = name, true
	}
	if !ok {
		return nil, false
	}
	loc, err := time.LoadLocation(iana)
	return loc, err == nil
}

// errZoneNotSupported is Exchange's answer to a zone it does not take (as
// seen in the wild: microsoftgraph/microsoft-graph-docs#4758).
func errZoneNotSupported(name string) *inputError {
	if len(name) > 100 {
		name = name[:100]
	}
	return &inputError{code: "TimeZoneNotSupportedException",
		msg: fmt.Sprintf("A valid TimeZone value must be specified. The following TimeZone value is not supported: '%s'.", name)}
}

const graphDateTime = "2006-01-02T15:04:05.0000000"

// parseDateTimeTimeZone reads Graph's dateTimeTimeZone; a zone Graph does
// not take is TimeZoneNotSupportedException.
func parseDateTimeTimeZone(v any) (time.Time, string, *inputError) {
	m, ok := v.(map[string]any)
	if !ok {
		return time.Time{}, "", badInput("not a dateTimeTimeZone")
	}
	dt, _ := m["dateTime"].(string)
	tz, _ := m["timeZone"].(string)
	loc, ok := resolveZone(tz)
	if !ok {
		return time.Time{}, "", errZoneNotSupported(tz)
	}
	if dt == "" {
		return time.Time{}, "", badInput("dateTime is required")
	}
	for _, layout := range []string{"2006-01-02T15:04:05.9999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, dt, loc); err == nil {
			if tz == "" {
				tz = "UTC"
			}
			return t, tz, nil
		}
	}
	// An offset in the string wins over the zone name, as in Graph.
	if t, err := time.Parse(time.RFC3339Nano, dt); err == nil {
		if tz == "" {
			tz = "UTC"
		}
		return t, tz, nil
	}
	return time.Time{}, "", badInput("dateTime is not a date and time")
}
