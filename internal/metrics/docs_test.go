package metrics

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const docs = "../../docs/monitoring"

// knownNames are the names of every knib metric (histograms with their
// _bucket, _sum and _count series).
func knownNames(t *testing.T) map[string]bool {
	t.Helper()
	m := New(fakeCat{}, nil)
	m.BackupPhase("copy", time.Second)
	m.JobAttempt("BackupValidation", "succeeded", time.Second)
	m.OperationDone("backup.create", "succeeded")
	m.Request("GET", "/api/v1/health", 200, time.Millisecond)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		n := f.GetName()
		names[n] = true
		if f.GetType().String() == "HISTOGRAM" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[n+s] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bknib_[a-z0-9_]+`)

func checkNames(t *testing.T, where, expr string, known map[string]bool) int {
	t.Helper()
	found := metricName.FindAllString(expr, -1)
	for _, n := range found {
		if !known[n] {
			t.Errorf("%s: %s is no knib metric (expr %q)", where, n, expr)
		}
	}
	return len(found)
}

// TestGrafanaDashboard: the dashboard is valid JSON and every query names
// only metrics knib exports.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(docs, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	known := knownNames(t)
	n := 0
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			n += checkNames(t, p.Title, tg.Expr, known)
		}
	}
	if len(d.Panels) < 10 || n < 10 {
		t.Fatalf("%d panels naming %d metrics: the dashboard was not read", len(d.Panels), n)
	}
}

// TestAlertRulesNameKnibMetrics: every expression of alerts.yml names only
// metrics knib exports.
func TestAlertRulesNameKnibMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(docs, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	known := knownNames(t)
	n := 0
	for line := range strings.Lines(string(raw)) {
		if expr, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			n += checkNames(t, "alerts.yml", expr, known)
		}
	}
	if n < 6 {
		t.Fatalf("only %d metric names in alerts.yml's expressions", n)
	}
}

// promtool finds promtool: missing, the test skips, unless the test bed is
// required (KNIB_TEST_REQUIRE_INFRA=1, scripts/setup.sh installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("KNIB_TEST_REQUIRE_INFRA") == "1" {
			t.Fatal("promtool not found (Debian package prometheus; make setup installs it)")
		}
		t.Skip("promtool not found (Debian package prometheus; make setup installs it)")
	}
	return p
}

// TestAlertRules runs alerts_test.yml, the rules' unit tests, through
// promtool test rules, and checks the example scrape configuration.
func TestAlertRules(t *testing.T) {
	tool := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}, {"check", "config", "prometheus.yml"}} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = docs
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
