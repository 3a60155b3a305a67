package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	rulesFile     = "../../deploy/prometheus/calsync.rules.yml"
	rulesTestFile = "../../deploy/prometheus/calsync.rules.test.yml"
	dashboardFile = "../../deploy/grafana/calsync.json"
	runbookFile   = "../../docs/OPERATIONS.md"
)

// TestAlertingRules checks the rules with promtool, runs their unit tests
// (each alert firing, and a near miss not firing), and checks that every
// alert has its runbook in docs/OPERATIONS.md and every runbook an alert.
func TestAlertingRules(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) < 8 {
		t.Fatalf("%d alerts in %s", len(alerts), rulesFile)
	}
	doc, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\w+)$`).FindAllStringSubmatch(string(doc), -1) {
		headings[m[1]] = true
	}
	tests, _ := os.ReadFile(rulesTestFile)
	for _, a := range alerts {
		name := a[1]
		if !headings[name] {
			t.Errorf("alert %s has no runbook heading in %s", name, runbookFile)
		}
		if !strings.Contains(string(rules), "docs/OPERATIONS.md#"+strings.ToLower(name)) {
			t.Errorf("alert %s does not link its runbook", name)
		}
		if !strings.Contains(string(tests), "alertname: "+name) {
			t.Errorf("alert %s has no promtool test", name)
		}
		delete(headings, name)
	}
	for h := range headings {
		t.Errorf("runbook %s has no alert", h)
	}
}

// metricRef finds metric names in PromQL: calsync's own, the Go and process
// collectors', and Prometheus's up.
var metricRef = regexp.MustCompile(`\b(calsync_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+|up)\b`)

// declaredMetric finds metric names declared in calsync's source (the
// gauges read at scrape time have no sample until their state exists).
var declaredMetric = regexp.MustCompile(`"(calsync_[a-z0-9_]+)"`)

// TestDashboardAndRulesUseExportedMetrics: every metric the rules and the
// dashboard name is one calsync exports — seen in a live scrape, or declared
// in its source.
func TestDashboardAndRulesUseExportedMetrics(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	known := map[string]bool{"up": true}
	scrape := a.metrics(t)
	for _, want := range []string{"calsync_ready 1", `calsync_links{status="ERROR"} 0`, "calsync_inbox_pending 0",
		"calsync_host_webhook_consecutive_failures 0", "calsync_subscriptions_renewal_failing 0"} {
		if !strings.Contains(scrape, want+"\n") {
			t.Errorf("scrape lacks %q:\n%s", want, grepLines(scrape, "calsync_"))
		}
	}
	for _, line := range strings.Split(scrape, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			known[strings.Fields(rest)[0]] = true
		}
	}
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git" || d.Name() == "graphemu" || d.Name() == "bench") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range declaredMetric.FindAllStringSubmatch(string(b), -1) {
			known[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := os.ReadFile(rulesFile)
	var exprs []string
	for _, m := range regexp.MustCompile(`(?m)^\s*expr: (.*)$`).FindAllStringSubmatch(string(rules), -1) {
		exprs = append(exprs, m[1])
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	if len(dash.Panels) < 8 {
		t.Fatalf("%d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricRef.FindAllString(e, -1) {
			used[m] = true
		}
	}
	var unknown []string
	for name := range used {
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
				base = b
			}
		}
		if !known[base] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Fatalf("the rules or the dashboard use metrics calsync does not export: %v", unknown)
	}
	if len(used) < 10 {
		t.Fatalf("only %d metrics used: %v", len(used), used)
	}
}

// TestPrometheusFiresExpiringSecretAlert: a real Prometheus (Debian's
// package) scrapes a running calsync with the shipped rules, and the
// expiring-secret alert fires for the company whose secret expires in 10
// days, and for no other.
func TestPrometheusFiresExpiringSecretAlert(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	admin := token(t, "acme", "admin-1", "system_admin")
	var f map[string]string
	_ = json.Unmarshal(demoFile(demoSecret), &f)
	f["client_secret_expires_at"] = time.Now().Add(10 * 24 * time.Hour).UTC().Format(time.RFC3339)
	file, _ := json.Marshal(f)
	if r, body := a.upload(t, admin, file); r.code() != "" {
		t.Fatalf("upload: %s", body)
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: calsync
    static_configs:
      - targets: [%q]
`, rules, strings.TrimPrefix(a.base, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var logs syncBuffer
	prom := exec.Command("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	prom.Stdout, prom.Stderr = &logs, &logs
	if err := prom.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	t.Cleanup(func() { _ = prom.Process.Kill(); _ = prom.Wait() })

	type alert struct {
		Labels map[string]string
		State  string
	}
	var firing []alert
	deadline := time.Now().Add(90 * time.Second)
	for {
		var body struct {
			Data struct{ Alerts []alert }
		}
		if resp, err := http.Get("http://" + addr + "/api/v1/alerts"); err == nil {
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
		}
		firing = firing[:0]
		for _, al := range body.Data.Alerts {
			if al.Labels["alertname"] == "CalsyncClientSecretExpiringSoon" && al.State == "firing" {
				firing = append(firing, al)
			}
		}
		if len(firing) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the alert did not fire within 90 s; alerts: %+v\nprometheus:\n%.3000s", body.Data.Alerts, logs.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(firing) != 1 || firing[0].Labels["company"] != "acme" || firing[0].Labels["job"] != "calsync" {
		t.Fatalf("firing: %+v", firing)
	}
}
