// Package reliability lets fault and hostile-input tests write what they
// checked into docs/RELIABILITY.md, each package its own section between
// markers, so the document says what the last run proved and nothing
// else. Rows are written only when CALSYNC_WRITE_RELIABILITY=1 (make
// reliability).
package reliability

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Recorder collects one package's rows.
type Recorder struct {
	mu   sync.Mutex
	rows [][4]string
}

// Record adds the test's row when it ends: what was tried, the bound it
// must meet, and pass or fail. What the test measured may be written to
// the returned string and is shown beside the result.
func (r *Recorder) Record(t testing.TB, scenario, injected, checked string) *string {
	measured := new(string)
	t.Cleanup(func() {
		result := "pass"
		if t.Failed() {
			result = "**fail**"
		}
		if *measured != "" {
			result += " (" + *measured + ")"
		}
		r.mu.Lock()
		r.rows = append(r.rows, [4]string{scenario, injected, checked, result})
		r.mu.Unlock()
	})
	return measured
}

// Add adds a row directly (a program, not a test, that checked something).
func (r *Recorder) Add(scenario, injected, checked, result string) {
	r.mu.Lock()
	r.rows = append(r.rows, [4]string{scenario, injected, checked, result})
	r.mu.Unlock()
}

// Enabled reports whether this run writes the document.
func Enabled() bool { return os.Getenv("CALSYNC_WRITE_RELIABILITY") == "1" }

// Write replaces section name of the document at path with a table of the
// rows (in the order the tests ended), under heading and intro. A missing
// section is appended.
func (r *Recorder) Write(path, name, heading, intro string, columns [4]string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rows) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- begin %s: generated, do not edit -->\n## %s\n\n%s\n\n| %s | %s | %s | %s |\n|---|---|---|---|\n",
		name, heading, intro, columns[0], columns[1], columns[2], columns[3])
	rows := slices.Clone(r.rows)
	slices.SortStableFunc(rows, func(a, b [4]string) int { return cmp.Compare(order(a[0]), order(b[0])) })
	for _, row := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(row[0]), cell(row[1]), cell(row[2]), cell(row[3]))
	}
	fmt.Fprintf(&b, "<!-- end %s -->\n", name)
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(path, []byte(Replace(string(old), name, b.String())), 0o644)
}

// Replace puts section (with its markers) in place of the one named name
// in doc, or at its end.
func Replace(doc, name, section string) string {
	begin, end := "<!-- begin "+name+":", "<!-- end "+name+" -->\n"
	i := strings.Index(doc, begin)
	j := strings.Index(doc, end)
	if i < 0 || j < i {
		if doc != "" && !strings.HasSuffix(doc, "\n\n") {
			doc = strings.TrimRight(doc, "\n") + "\n\n"
		}
		return doc + section
	}
	return doc[:i] + section + doc[j+len(end):]
}

// order is a row's leading number ("10. …" after "9. …"); rows without
// one keep the order their tests ended in.
func order(s string) int {
	n, err := strconv.Atoi(strings.SplitN(s, ".", 2)[0])
	if err != nil {
		return 0
	}
	return n
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

// Main runs a package's tests (from its TestMain) and then, when enabled,
// writes the recorder's section of the document at path.
func (r *Recorder) Main(m *testing.M, path, name, heading, intro string) {
	code := m.Run()
	if Enabled() {
		if err := r.Write(path, name, heading, intro, [4]string{"finding", "attack", "bound it must meet", "result"}); err != nil {
			fmt.Fprintln(os.Stderr, "writing RELIABILITY.md:", err)
		}
	}
	os.Exit(code)
}
