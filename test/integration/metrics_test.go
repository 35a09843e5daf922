package integration

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the catalogue's driver, to age a VM's backups

	"github.com/knib/knib/internal/testbed"
)

// prometheus is a real Prometheus (Debian's package) scraping knib every
// second and evaluating docs/monitoring/alerts.yml every second.
type prometheus struct {
	t   *testing.T
	url string
	log *bytes.Buffer
}

func startPrometheus(t *testing.T, metricsAddr, apiAddr, tokenFile string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found (Debian package prometheus; make setup installs it)")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Built with an encoder: Prometheus reads JSON as YAML.
	cfg := map[string]any{
		"global":     map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"},
		"rule_files": []string{filepath.Join(root, "docs/monitoring/alerts.yml")},
		"scrape_configs": []any{
			map[string]any{"job_name": "knib", "static_configs": []any{map[string]any{"targets": []string{metricsAddr}}}},
			map[string]any{"job_name": "knib-api", "authorization": map[string]any{"credentials_file": tokenFile},
				"static_configs": []any{map[string]any{"targets": []string{apiAddr}}}},
		},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	p := &prometheus{t: t, url: "http://" + listen, log: &bytes.Buffer{}}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { stopProcess(cmd, done) })
	p.until(time.Minute, "prometheus ready", func() (bool, error) {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
	return p
}

// until polls cond every 500 ms until it holds or the deadline passes.
func (p *prometheus) until(within time.Duration, what string, cond func() (bool, error)) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	p.t.Fatalf("%s: not within %s (last error: %v)\nprometheus log:\n%s", what, within, last, p.log)
}

func (p *prometheus) get(path string, q url.Values, out any) error {
	resp, err := http.Get(p.url + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: status %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// query returns the instant vector of a PromQL expression.
func (p *prometheus) query(expr string) ([]promSample, error) {
	var r struct {
		Status string
		Data   struct{ Result []promSample }
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", expr, r.Status)
	}
	return r.Data.Result, nil
}

type promSample struct {
	Metric map[string]string
	Value  [2]any
}

func (s promSample) float() float64 {
	v, _ := s.Value[1].(string)
	f, _ := strconv.ParseFloat(v, 64)
	return f
}

// firing returns the states of the alerts named name for the VM.
func (p *prometheus) alertState(name, vm string) (string, error) {
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string
				State  string
			}
		}
	}
	if err := p.get("/api/v1/alerts", nil, &r); err != nil {
		return "", err
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == name && a.Labels["vm"] == vm {
			return a.State, nil
		}
	}
	return "", nil
}

// TestMetricsPrometheus (issue 14, metrics): a real Prometheus scrapes a
// knib server (its --metrics-listen, and the API's /metrics with the admin
// token) that backs up a real VM; through Prometheus' query API the
// backup's metrics appear, and the shipped stale-backup rule fires once
// the VM's last backup is older than twice its hourly schedule (the test
// ages the backups in the catalogue: the clocks are real) and clears after
// a fresh backup.
func TestMetricsPrometheus(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-metrics", Start: true})
	metricsAddr := freePort(t)
	s := StartServer(t, "")
	s.Stop()
	s.Args = []string{"--metrics-listen", metricsAddr}
	s.Restart()
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "metrics")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	// Half an hour away: the schedule never comes due during the test.
	at := fmt.Sprint((time.Now().UTC().Minute() + 30) % 60)
	s.CLI("schedule", "create", dom.Name, "--interval", "hourly", "--at", at)
	guest(t, dom, "echo a > /data/a && sync")
	b1 := s.backup(dom.Name)
	s.CLI("storage", "list") // measures the storages

	p := startPrometheus(t, metricsAddr, s.Listen, filepath.Join(s.DataDir, "admin.token"))
	sel := fmt.Sprintf(`{vm=%q,job="knib"}`, dom.Name)
	p.until(time.Minute, "the backup's metrics in prometheus", func() (bool, error) {
		for expr, want := range map[string]func(float64) bool{
			"knib_vm_last_backup_timestamp_seconds" + sel:                                    func(v float64) bool { return v > 0 },
			"knib_vm_backup_interval_seconds" + sel:                                          func(v float64) bool { return v == 3600 },
			"knib_vm_chain_length" + sel:                                                     func(v float64) bool { return v == 1 },
			"knib_vm_stored_bytes" + sel:                                                     func(v float64) bool { return v > 0 },
			`sum(knib_backup_phase_duration_seconds_count{job="knib",phase="copy"})`:         func(v float64) bool { return v == 1 },
			`sum(knib_operations_total{job="knib",kind="backup.create",result="succeeded"})`: func(v float64) bool { return v == 1 },
			`knib_storage_capacity_bytes{job="knib"}`:                                        func(v float64) bool { return v > 0 },
			`up{job="knib-api"}`:                                                             func(v float64) bool { return v == 1 }, // the token'd endpoint
		} {
			res, err := p.query(expr)
			if err != nil {
				return false, err
			}
			if len(res) != 1 || !want(res[0].float()) {
				return false, fmt.Errorf("%s = %v", expr, res)
			}
		}
		return true, nil
	})
	if st, err := p.alertState("KnibBackupStale", dom.Name); err != nil || st != "" {
		t.Fatalf("stale alert before the backup aged: %q %v", st, err)
	}

	// Age the VM's backups by three hours: older than twice the hourly interval.
	age(t, s, dom.Name, 3*time.Hour)
	p.until(time.Minute, "KnibBackupStale firing", func() (bool, error) {
		st, err := p.alertState("KnibBackupStale", dom.Name)
		return st == "firing", err
	})

	// A fresh backup clears it.
	guest(t, dom, "echo b > /data/b && sync")
	b2 := s.backup(dom.Name)
	if b2.ID == b1.ID {
		t.Fatal("no new backup")
	}
	p.until(time.Minute, "KnibBackupStale cleared", func() (bool, error) {
		st, err := p.alertState("KnibBackupStale", dom.Name)
		return st == "", err
	})
	// The merge follows each backup (and is scraped after it ended).
	p.until(time.Minute, "two merge phases after two backups", func() (bool, error) {
		res, err := p.query(`sum(knib_backup_phase_duration_seconds_count{job="knib",phase="merge"})`)
		if err != nil || len(res) != 1 {
			return false, err
		}
		if got := res[0].float(); got != 2 {
			return false, fmt.Errorf("merge phases: %v", got)
		}
		return true, nil
	})
}

// age moves the creation time of a VM's backups back by d in the
// catalogue (SQLite, the server's own file; the server keeps running).
func age(t *testing.T, s *Server, vm string, d time.Duration) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "knib.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := ctxT(t)
	rows, err := db.QueryContext(ctx, `SELECT b.id, b.created FROM backups b JOIN vms v ON v.id = b.vm_id WHERE v.name = ?`, vm)
	if err != nil {
		t.Fatal(err)
	}
	const layout = "2006-01-02T15:04:05.000000000Z" // sqlstore's time format
	olds := map[string]string{}
	for rows.Next() {
		var id, created string
		if err := rows.Scan(&id, &created); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(layout, created)
		if err != nil {
			t.Fatalf("backup %s created %q: %v", id, created, err)
		}
		olds[id] = ts.Add(-d).UTC().Format(layout)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(olds) == 0 {
		t.Fatalf("no backups of %s to age", vm)
	}
	for id, created := range olds {
		if _, err := db.ExecContext(ctx, `UPDATE backups SET created = ? WHERE id = ?`, created, id); err != nil {
			t.Fatal(err)
		}
	}
}
