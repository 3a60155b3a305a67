// Command fuzzreport runs every fuzz target for a fixed number of
// executions (make fuzz-smoke) and, with CALSYNC_WRITE_RELIABILITY=1
// (make reliability), writes what they did into docs/RELIABILITY.md. It
// exits non-zero when a target fails.
//
// Counts, not -fuzztime durations: on Go 1.26 a duration races the fuzz
// coordinator's shutdown on a busy machine and fails with a bare "context
// deadline exceeded" (go.dev/issue/75804, fixed in Go 1.27).
package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/tehaishokunin/calsync/internal/reliability"
)

// targets are every fuzz target, with what it feeds and what it checks.
var targets = []struct {
	pkg, name string
	execs     int
	input     string
	checks    string
}{
	{"./authfile", "FuzzParse", 100000, "any bytes as authOfficeCalendar.json",
		"an AUTH_FILE_INVALID error with ja and en messages, or a file with a GUID clientId, a tenant other than the client, a secret that is not a GUID (not a secret ID), trimmed and UTF-8; never a panic"},
	{"./internal/graphnotify", "FuzzParse", 60000, "any bytes as a Graph notification POST body",
		"an error, or at most 1,000 notifications whose kept values (lifecycle event, change type, resource, event id and change key) are bounded, valid UTF-8 and without NUL, an event id always with its change key; never a panic"},
	{"./internal/schedule", "FuzzValidate", 100000, "any externalId, subject, start, end, zone, all-day flag and showAs of a schedule entry",
		"an error, or an entry that ends after it starts, has an id and a subject within its length, lasts at most 60 days unless all-day, and keeps its clock in Outlook's zone; never a panic"},
	{"./internal/recur", "FuzzParse", 200000, "any RRULE text",
		"an error, or a recurrence whose RRULE parses back to the same recurrence; never a panic"},
	{"./internal/htmltext", "FuzzRoundTrip", 50000, "any job note text",
		"valid UTF-8 text without other control characters than tab and newline, or no-break spaces, survives HTML body and back (newlines normalised); never a panic"},
}

var execsRE = regexp.MustCompile(`execs: (\d+) .*new interesting: (\d+) \(total: (\d+)\)`)

func main() {
	var rows reliability.Recorder
	failed := false
	for i, tg := range targets {
		args := []string{"test", "-run", "^$", "-fuzz", "^" + tg.name + "$", "-fuzztime", strconv.Itoa(tg.execs) + "x", tg.pkg}
		fmt.Println("go " + strings.Join(args, " "))
		cmd := exec.Command("go", args...)
		out, err := cmd.CombinedOutput()
		os.Stdout.Write(out)
		result := "pass"
		if err != nil {
			failed, result = true, "**fail**"
		}
		if m := execsRE.FindAllStringSubmatch(string(out), -1); len(m) > 0 {
			last := m[len(m)-1]
			result += fmt.Sprintf(" (%s executions, corpus %s)", last[1], last[3])
		}
		rows.Add(fmt.Sprintf("%d. %s %s", i+1, tg.pkg, tg.name), tg.input, tg.checks, result)
	}
	if reliability.Enabled() {
		if err := rows.Write("docs/RELIABILITY.md", "fuzz", "Fuzz targets",
			"From `make fuzz-smoke` (internal/reliability/fuzzreport): each target run for a fixed number of executions, starting from its seeds (testdata/seed or f.Add) and the corpus this machine has cached; \"corpus\" is that corpus after the run.",
			[4]string{"target", "input", "must hold", "result"}); err != nil {
			fmt.Fprintln(os.Stderr, "writing RELIABILITY.md:", err)
			os.Exit(1)
		}
	}
	if failed {
		os.Exit(1)
	}
}
