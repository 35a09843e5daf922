package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

type fakeCat struct{ err error }

var at = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func (f fakeCat) VMSummaries(context.Context, string) ([]store.VMSummary, error) {
	return []store.VMSummary{
		{VMID: "u1", Name: "web", Account: "admin", State: domain.VMRunning, Offering: "gold", ChainLength: 3, StoredBytes: 1234,
			LastGoodAt: at, ProvenAt: at.Add(-time.Hour), ProvenBy: "validation", NotValid: 1},
		{VMID: "u2", Name: "db", Account: "admin", State: domain.VMRunning, WorkState: domain.VMBackupError},
	}, f.err
}
func (fakeCat) ListStorages(context.Context, string) ([]domain.Storage, error) {
	return []domain.Storage{{Name: "default", ZoneID: "z", Capacity: 1000, Free: 50, Used: 300, Measured: at}}, nil
}
func (fakeCat) Schedules(context.Context, string) ([]domain.Schedule, error) {
	return []domain.Schedule{{VMID: "u1", Interval: "daily"}, {VMID: "u1", Interval: "hourly"}, {VMID: "u2", Interval: "bogus"}}, nil
}
func (fakeCat) Jobs(context.Context, store.JobFilter) ([]jobs.Job, error) {
	return []jobs.Job{{Type: jobs.BackupValidation, State: jobs.Queued}, {Type: jobs.BackupValidation, State: jobs.Queued}}, nil
}
func (fakeCat) ListHosts(context.Context) ([]domain.Host, error) {
	return []domain.Host{{ID: "h1", Name: "kvm1"}, {ID: "h2", Name: "kvm2"}}, nil
}
func (fakeCat) ListHostAgents(context.Context) ([]store.HostAgent, error) {
	return []store.HostAgent{{HostID: "h1", Connection: store.AgentConnected}, {HostID: "h2", Connection: store.AgentDisconnected}}, nil
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	return string(body)
}

func TestCatalogueMetrics(t *testing.T) {
	out := scrape(t, New(fakeCat{}, nil))
	for _, want := range []string{
		`knib_catalogue_up 1`,
		`knib_vm_last_backup_timestamp_seconds{account="admin",vm="web",vm_id="u1"} 1.7963784e+09`,
		`knib_vm_last_proof_timestamp_seconds{account="admin",by="validation",vm="web",vm_id="u1"} 1.7963748e+09`,
		`knib_vm_backup_interval_seconds{account="admin",vm="web",vm_id="u1"} 3600`,
		`knib_vm_chain_length{account="admin",vm="web",vm_id="u1"} 3`,
		`knib_vm_stored_bytes{account="admin",vm="web",vm_id="u1"} 1234`,
		`knib_vm_backups_not_valid{account="admin",vm="web",vm_id="u1"} 1`,
		`knib_vm_info{account="admin",offering="",state="BackupError",vm="db",vm_id="u2"} 1`,
		`knib_storage_capacity_bytes{storage="default",zone="z"} 1000`,
		`knib_storage_free_bytes{storage="default",zone="z"} 50`,
		`knib_agent_connected{host="kvm1",state="Connected"} 1`,
		`knib_agent_connected{host="kvm2",state="Disconnected"} 0`,
		`knib_agents_connected 1`,
		`knib_jobs{state="Queued",type="BackupValidation"} 2`,
		`knib_jobs{state="Running",type="StartCompression"} 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	// Without a schedule (or with an unknown interval) no interval series.
	if strings.Contains(out, `knib_vm_backup_interval_seconds{account="admin",vm="db"`) {
		t.Error("db has no valid schedule but an interval series")
	}
	// Without a backup, no last-backup series.
	if strings.Contains(out, `knib_vm_last_backup_timestamp_seconds{account="admin",vm="db"`) {
		t.Error("db was never backed up but has a last-backup series")
	}
}

func TestCatalogueFailureIsUpZero(t *testing.T) {
	out := scrape(t, New(fakeCat{err: context.DeadlineExceeded}, nil))
	if !strings.Contains(out, "knib_catalogue_up 0\n") {
		t.Fatalf("a failed read is not catalogue_up 0:\n%s", out)
	}
	if strings.Contains(out, "knib_vm_chain_length") {
		t.Error("VM series despite a failed read")
	}
	if !strings.Contains(out, "knib_storage_used_bytes") {
		t.Error("the parts that could be read are missing")
	}
}

func TestProcessMetrics(t *testing.T) {
	m := New(nil, nil)
	m.BackupPhase("copy", 2*time.Second)
	m.BackupPhase("copy", time.Second)
	m.JobAttempt("BackupValidation", "failed", time.Minute)
	m.OperationDone("backup.create", "succeeded")
	m.Request("GET", "/api/v1/vms/{ref}", 404, time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`knib_backup_phase_duration_seconds_count{phase="copy"} 2`,
		`knib_backup_phase_duration_seconds_sum{phase="copy"} 3`,
		`knib_job_duration_seconds_count{outcome="failed",type="BackupValidation"} 1`,
		`knib_operations_total{kind="backup.create",result="succeeded"} 1`,
		`knib_http_request_duration_seconds_count{code="404",method="GET",route="/api/v1/vms/{ref}"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "knib_catalogue_up") {
		t.Error("catalogue metrics without a catalogue")
	}
}
