package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/config"
	"github.com/knib/knib/internal/settings"
)

// Every scope the registry accepts for a job setting is honoured by the
// scheduler: task.enabled and the validation retries per account, the
// compression retries and both timeouts per host. Each setting is set at
// its non-global scope only, and the test observes its effect on the jobs
// of that account or host, next to a job of another account that keeps
// the defaults. (The concurrency limits per host and zone have their own
// tests.) Every attempt fails at once: the backups have no storage.
func TestJobSettingsHonourEveryScope(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	bob, err := e.svc.Accounts.CreateAccount(ctx, e.admin, "bob")
	if err != nil {
		t.Fatal(err)
	}
	host, err := e.st.Host(ctx, e.vm.HostID)
	if err != nil {
		t.Fatal(err)
	}
	set := func(key, value string, ref config.ScopeRef) {
		t.Helper()
		if _, err := e.svc.Config.SetSetting(ctx, e.admin, key, value, ref); err != nil {
			t.Fatalf("set %s: %v", key, err)
		}
	}
	reset := func(key string, ref config.ScopeRef) {
		t.Helper()
		if _, err := e.svc.Config.ResetSetting(ctx, e.admin, key, ref); err != nil {
			t.Fatalf("reset %s: %v", key, err)
		}
	}
	n := 0
	enqueue := func(typ jobs.Type, account string) jobs.Job {
		t.Helper()
		n++
		now := time.Now()
		b := domain.Backup{ID: domain.NewID(), VMID: domain.NewID(), VMName: "vm", AccountID: account, HostID: host.ID,
			Type: domain.BackupFull, Status: domain.BackupBackedUp, Dir: "b", Created: now, Updated: now}
		if err := e.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		j := jobs.Job{ID: domain.NewID(), Type: typ, BackupID: b.ID, VMID: b.VMID, ZoneID: host.ZoneID, State: jobs.Queued, Scheduled: now.Add(-10 * time.Minute)}
		if err := e.st.EnqueueJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		return j
	}
	run := func() {
		t.Helper()
		if err := e.svc.Jobs.RunJobs(ctx, e.svc.Kernel.Owner()); err != nil {
			t.Fatal(err)
		}
		e.svc.Jobs.WaitJobs()
	}
	job := func(j jobs.Job) jobs.Job {
		t.Helper()
		got, err := e.st.Job(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// retryIn is how long after its attempt a failed job waits.
	retryIn := func(j jobs.Job) time.Duration {
		t.Helper()
		got := job(j)
		if got.State != jobs.Queued || got.Attempts != 1 {
			t.Fatalf("job %s after one failed attempt: %+v", j.Type, got)
		}
		return got.Scheduled.Sub(got.Started).Round(time.Minute)
	}
	admins := config.ScopeRef{Account: e.admin.AccountID}
	onHost := config.ScopeRef{Host: host.ID}

	// task.enabled per account: the admin account's jobs wait, bob's run.
	for _, c := range []struct {
		key string
		typ jobs.Type
	}{{settings.KeyCompressionTaskEnabled, jobs.StartCompression}, {settings.KeyValidationTaskEnabled, jobs.BackupValidation}} {
		set(c.key, "false", admins)
		mine, bobs := enqueue(c.typ, e.admin.AccountID), enqueue(c.typ, bob.ID)
		run()
		if got := job(mine); got.Attempts != 0 || got.State != jobs.Queued {
			t.Fatalf("%s=false for the account, yet its job ran: %+v", c.key, got)
		}
		if got := job(bobs); got.Attempts != 1 {
			t.Fatalf("%s=false for another account stopped bob's job: %+v", c.key, got)
		}
		reset(c.key, admins)
		run()
		if got := job(mine); got.Attempts != 1 {
			t.Fatalf("%s reset: the job still waits: %+v", c.key, got)
		}
	}

	// Compression retries and interval per host.
	set(settings.KeyCompressionRetryInterval, "7", onHost)
	if d := retryIn(enqueueAndRun(t, enqueue, run, jobs.StartCompression, bob.ID)); d != 7*time.Minute {
		t.Fatalf("compression retry interval 7 min on the host: the retry waits %s", d)
	}
	set(settings.KeyCompressionMaxJobRetries, "0", onHost)
	if got := job(enqueueAndRun(t, enqueue, run, jobs.StartCompression, bob.ID)); got.State != jobs.Failed || got.Attempts != 1 {
		t.Fatalf("compression retries 0 on the host: %+v", got)
	}

	// Validation retries and interval per account.
	set(settings.KeyValidationRetryInterval, "11", admins)
	if d := retryIn(enqueueAndRun(t, enqueue, run, jobs.BackupValidation, e.admin.AccountID)); d != 11*time.Minute {
		t.Fatalf("validation retry interval 11 min for the account: the retry waits %s", d)
	}
	if d := retryIn(enqueueAndRun(t, enqueue, run, jobs.BackupValidation, bob.ID)); d != time.Hour {
		t.Fatalf("another account's validation retry waits %s, want the default hour", d)
	}
	set(settings.KeyValidationMaxJobRetries, "0", admins)
	if got := job(enqueueAndRun(t, enqueue, run, jobs.BackupValidation, e.admin.AccountID)); got.State != jobs.Failed {
		t.Fatalf("validation retries 0 for the account: %+v", got)
	}
	if got := job(enqueueAndRun(t, enqueue, run, jobs.BackupValidation, bob.ID)); got.State != jobs.Queued {
		t.Fatalf("another account's validation has no retry left: %+v", got)
	}

	// Timeouts per host: a job claimed by another (live) server is lost
	// 2.5 times the host's timeout after it started.
	// (With the family's task off for bob, the reaped job is not retried
	// at once, so its error stays the lost-job one.)
	for _, c := range []struct {
		key, enabled string
		typ          jobs.Type
	}{{settings.KeyCompressionTimeout, settings.KeyCompressionTaskEnabled, jobs.StartCompression},
		{settings.KeyValidationTimeout, settings.KeyValidationTaskEnabled, jobs.BackupValidation}} {
		set(c.key, "40", onHost)
		set(c.enabled, "false", config.ScopeRef{Account: bob.ID})
		j := enqueue(c.typ, bob.ID)
		started := time.Now().Add(-101 * time.Second) // 2.5 × 40 s ago, and a second
		if ok, err := e.st.ClaimJob(ctx, j.ID, "other/node/1/abcdabcd", host.ID, started, started.Add(24*time.Hour)); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		run()
		if got := job(j); got.State == jobs.Running || !strings.Contains(got.LastError, "(40s)") {
			t.Fatalf("%s=40 on the host: the job is not lost after 101 s: %+v", c.key, got)
		}
	}
}

func enqueueAndRun(t *testing.T, enqueue func(jobs.Type, string) jobs.Job, run func(), typ jobs.Type, account string) jobs.Job {
	t.Helper()
	j := enqueue(typ, account)
	run()
	return j
}
