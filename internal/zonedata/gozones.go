// Package zonedata holds the Unicode CLDR time zone data calsync's zone
// maps are generated from (gen/), and GoZones, the zones the tests walk.
package zonedata

import (
	"archive/zip"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// GoZones lists every zone in Go's time zone database (GOROOT's
// zoneinfo.zip), sorted, for the tests that walk them all; without the
// database the test is skipped.
func GoZones(t testing.TB) []string {
	t.Helper()
	r, err := zip.OpenReader(filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip"))
	if err != nil {
		t.Skipf("no zoneinfo.zip in GOROOT: %v", err)
	}
	defer r.Close()
	var out []string
	for _, f := range r.File {
		if !strings.HasSuffix(f.Name, "/") {
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out
}
