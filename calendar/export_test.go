package calendar

import (
	"testing"

	"github.com/tehaishokunin/calsync/internal/zonedata"
)

// GoZonesForTest lists every zone in Go's time zone database.
func GoZonesForTest(t *testing.T) []string { return zonedata.GoZones(t) }
