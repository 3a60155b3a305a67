package calendar

import "testing"

// GoZonesForTest lists every zone in Go's time zone database.
func GoZonesForTest(t *testing.T) []string { return goZones(t) }
