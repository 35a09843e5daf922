package jobs

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func q(id, vm string, typ Type, at time.Time) Job {
	return Job{ID: id, BackupID: "b-" + id, VMID: vm, Type: typ, ZoneID: "z", State: Queued, Scheduled: at}
}

func limits(enabled bool, perHost, perZone int64) func(Job) Limits {
	return func(Job) Limits {
		return Limits{Enabled: enabled, PerHost: func(string) int64 { return perHost }, PerZone: func(string) int64 { return perZone },
			MaxRetries: 2, RetryInterval: time.Hour, Timeout: 8 * time.Hour}
	}
}

var hosts = []Host{{ID: "h1", ZoneID: "z", Enabled: true}, {ID: "h2", ZoneID: "z", Enabled: true}, {ID: "off", ZoneID: "z"}, {ID: "far", ZoneID: "y", Enabled: true}}

func ids(as []Assignment) string {
	s := ""
	for _, a := range as {
		s += fmt.Sprintf("%s@%s ", a.Job.ID, a.HostID)
	}
	return s
}

func TestPlanHonoursLimitsAndSpreadsLoad(t *testing.T) {
	var queued []Job
	for i := 0; i < 6; i++ {
		queued = append(queued, q(fmt.Sprint("j", i), fmt.Sprint("vm", i), StartCompression, t0))
	}
	// Per host 2, zone 3: three jobs start, spread over the enabled hosts of the zone.
	got := ids(Plan(t0, queued, nil, hosts, limits(true, 2, 3)))
	if got != "j0@h1 j1@h2 j2@h1 " {
		t.Fatalf("plan: %s", got)
	}
	// -1 per host, zone unlimited: everything starts.
	if n := len(Plan(t0, queued, nil, hosts, limits(true, -1, 0))); n != 6 {
		t.Fatalf("unlimited: %d", n)
	}
	// Disabled family: nothing starts; enabled again: they run.
	if n := len(Plan(t0, queued, nil, hosts, limits(false, -1, 0))); n != 0 {
		t.Fatalf("disabled: %d", n)
	}
	// Running jobs count against the limits.
	running := []Job{{ID: "r", VMID: "other", Type: StartCompression, HostID: "h1", ZoneID: "z", State: Running}}
	if got := ids(Plan(t0, queued, running, hosts, limits(true, 1, 0))); got != "j0@h2 " {
		t.Fatalf("with a running job: %s", got)
	}
}

func TestPlanOneJobPerBackupAndFinalizeIsNotLimited(t *testing.T) {
	queued := []Job{
		q("a", "vm1", StartCompression, t0),
		q("b", "vm1", BackupValidation, t0),
		q("f", "vm2", FinalizeCompression, t0),
		q("later", "vm3", StartCompression, t0.Add(time.Minute)),
	}
	queued[1].BackupID = queued[0].BackupID // the same backup
	running := []Job{{ID: "r", VMID: "vm9", Type: StartCompression, HostID: "h1", ZoneID: "z", State: Running},
		{ID: "r2", VMID: "vm8", Type: StartCompression, HostID: "h2", ZoneID: "z", State: Running}}
	// Per host 1 is used up on both hosts by compressions: the compression
	// waits, the validation (its own family) and the finalize job start.
	if got := ids(Plan(t0, queued, running, hosts, limits(true, 1, 0))); got != "b@h1 f@h1 " {
		t.Fatalf("plan: %s", got)
	}
	// With room, the backup runs one job only, and the future job waits.
	if got := ids(Plan(t0, queued, nil, hosts, limits(true, 5, 0))); got != "a@h1 f@h2 " {
		t.Fatalf("plan: %s", got)
	}
	// Several backups of one VM compress in parallel; no validation of the
	// VM starts while one of its compression jobs runs (the specification);
	// a VM validates one backup at a time.
	same := []Job{q("c1", "vm1", StartCompression, t0), q("c2", "vm1", StartCompression, t0),
		q("v1", "vm1", BackupValidation, t0), q("v2", "vm1", BackupValidation, t0)}
	if got := ids(Plan(t0, same, nil, hosts, limits(true, 5, 0))); got != "c1@h1 c2@h2 " {
		t.Fatalf("one VM: %s", got)
	}
	finalizing := []Job{{ID: "fin", BackupID: "b-x", VMID: "vm1", Type: FinalizeCompression, HostID: "h1", ZoneID: "z", State: Running}}
	if got := ids(Plan(t0, same[2:], finalizing, hosts, limits(true, 5, 0))); got != "" {
		t.Fatalf("a validation started while the VM's compression is finalized: %s", got)
	}
	if got := ids(Plan(t0, same[2:], nil, hosts, limits(true, 5, 0))); got != "v1@h1 " {
		t.Fatalf("one VM validates one backup at a time: %s", got)
	}
	// A backup with a running job starts nothing else.
	running = []Job{{ID: "r", BackupID: "b-a", VMID: "vm1", Type: BackupValidation, HostID: "h2", ZoneID: "z", State: Running}}
	if got := ids(Plan(t0, queued[:2], running, hosts, limits(true, 5, 0))); got != "" {
		t.Fatalf("busy backup: %s", got)
	}
}

func TestRetriesTimeoutsAndLostJobs(t *testing.T) {
	l := limits(true, 1, 0)(Job{Type: StartCompression})
	if o := AfterFailure(t0, 1, l); o.State != Queued || !o.Scheduled.Equal(t0.Add(time.Hour)) {
		t.Fatalf("first failure: %+v", o)
	}
	if o := AfterFailure(t0, 2, l); o.State != Queued {
		t.Fatalf("second failure: %+v", o)
	}
	if o := AfterFailure(t0, 3, l); o.State != Failed {
		t.Fatalf("retries used up: %+v", o)
	}
	j := Job{State: Running, Started: t0, LeaseUntil: t0.Add(time.Minute)}
	if TimedOut(t0.Add(8*time.Hour), j, l) || !TimedOut(t0.Add(8*time.Hour+time.Second), j, l) {
		t.Fatal("timeout")
	}
	if Lost(t0.Add(time.Minute), j) || !Lost(t0.Add(time.Minute+time.Second), j) {
		t.Fatal("lost job")
	}
	// The specification's rule: 2.5 times the timeout after its start, a
	// running job is lost whatever its lease says.
	if Overdue(t0.Add(20*time.Hour), j, l) || !Overdue(t0.Add(20*time.Hour+time.Second), j, l) || Overdue(t0.Add(48*time.Hour), j, Limits{}) {
		t.Fatal("overdue job")
	}
}

func TestPlanValidationAvoidsTheVMsHostOnlyOnTies(t *testing.T) {
	v := func(id, vm, avoid string) Job {
		j := q(id, vm, BackupValidation, t0)
		j.Avoid = avoid
		return j
	}
	// Equal load: the other host (h2, although h1 sorts first).
	if got := ids(Plan(t0, []Job{v("a", "vm1", "h1")}, nil, hosts, limits(true, 1, 0))); got != "a@h2 " {
		t.Fatalf("tie: %s", got)
	}
	// The other host is full (per-host limit 1, one validation runs there):
	// the VM's own host takes it.
	running := []Job{{ID: "r", VMID: "other", Type: BackupValidation, HostID: "h2", ZoneID: "z", State: Running}}
	if got := ids(Plan(t0, []Job{v("a", "vm1", "h1")}, running, hosts, limits(true, 1, 0))); got != "a@h1 " {
		t.Fatalf("other host full: %s", got)
	}
	// Unlimited but the other host more loaded: least loaded wins.
	if got := ids(Plan(t0, []Job{v("a", "vm1", "h1")}, running, hosts, limits(true, -1, 0))); got != "a@h1 " {
		t.Fatalf("least loaded first: %s", got)
	}
	// Only the avoided host is enabled in the zone: it runs there.
	one := []Host{{ID: "h1", ZoneID: "z", Enabled: true}, {ID: "h2", ZoneID: "z"}}
	if got := ids(Plan(t0, []Job{v("a", "vm1", "h1")}, nil, one, limits(true, 1, 0))); got != "a@h1 " {
		t.Fatalf("only the VM's host: %s", got)
	}
}
