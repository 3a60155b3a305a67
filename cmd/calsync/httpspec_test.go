package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// auditDir holds the pinned graphql-http audit suite (package.json and its
// lock); its node_modules are installed on first use.
const auditDir = "../../scripts/graphql-http-audit"

// TestGraphQLOverHTTPAudit runs the GraphQL-over-HTTP spec's own audit suite
// (npm graphql-http, serverAudits) against a running calsync: every MUST
// ("error" when missed) and every SHOULD ("warn") must pass, for
// application/json and application/graphql-response+json alike. A missed
// MAY is a "notice": logged, not failed.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(filepath.Join(auditDir, "node_modules", "graphql-http", "package.json")); err != nil {
		install := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		install.Dir = auditDir
		if out, err := install.CombinedOutput(); err != nil {
			t.Fatalf("installing the graphql-http audit suite (npm ci in scripts/graphql-http-audit): %v\n%s", err, out)
		}
	}
	a := startApp(t, nil)
	cmd := exec.Command("node", "audit.mjs")
	cmd.Dir = auditDir
	cmd.Env = append(os.Environ(), "GRAPHQL_URL="+a.base+"/graphql",
		"AUDIT_AUTHORIZATION=Bearer "+token(t, "acme", "audit", "service"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	type result struct{ ID, Name, Status, Reason string }
	var all, bad []result
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit printed %q: %v", sc.Text(), err)
		}
		all = append(all, r)
		switch r.Status {
		case "ok":
		case "notice":
			t.Logf("%s MAY, not taken: %s — %s", r.ID, r.Name, r.Reason)
		default:
			bad = append(bad, r)
		}
	}
	// The suite holds about 80 audits; far fewer means it did not run.
	if len(all) < 50 {
		t.Fatalf("only %d audits ran (exit %v)\n%s\n%s", len(all), runErr, out, stderr.String())
	}
	for _, r := range bad {
		t.Errorf("%s %s: %s — %s", r.ID, strings.ToUpper(r.Status), r.Name, r.Reason)
	}
	if _, exited := runErr.(*exec.ExitError); runErr != nil && !exited {
		t.Fatalf("running the audit: %v\n%s", runErr, stderr.String())
	}
	t.Logf("%d GraphQL-over-HTTP audits, %d not ok", len(all), len(bad))
}
