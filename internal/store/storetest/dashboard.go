package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// testDashboard: VMSummaries aggregates each VM's backups, schedules and
// failed jobs, and an account sees only its VMs.
func testDashboard(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	tenant := domain.Account{ID: domain.NewID(), Name: "tenant", Created: t0}
	must(t, s.CreateAccount(ctx, tenant))
	gold, err := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "gold"}, t0)
	must(t, err)
	must(t, s.CreateOffering(ctx, gold))
	a := domain.VM{ID: domain.NewID(), Name: "a", State: domain.VMRunning}
	b := domain.VM{ID: domain.NewID(), Name: "b", State: domain.VMStopped}
	c := domain.VM{ID: domain.NewID(), Name: "c", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{c, a, b}, acc.ID, t0))
	must(t, s.SetVMOffering(ctx, a.ID, gold.ID))
	must(t, s.SetVMOwner(ctx, b.ID, tenant.ID))
	must(t, s.SetVMWorkState(ctx, c.ID, domain.VMBackupError))

	backup := func(vm domain.VM, n int, typ domain.BackupType, st domain.BackupStatus, size int64) domain.Backup {
		x := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: vm.Name, AccountID: acc.ID, Type: typ, Position: n,
			Status: st, Size: size, Dir: "backups/" + vm.Name, Plan: "{}", Created: t0.Add(time.Duration(n) * time.Hour), Updated: t0}
		must(t, s.CreateBackup(ctx, x))
		return x
	}
	a1 := backup(a, 1, domain.BackupFull, domain.BackupBackedUp, 10)
	a2 := backup(a, 2, domain.BackupIncremental, domain.BackupBackedUp, 5)
	a3 := backup(a, 3, domain.BackupIncremental, domain.BackupError, 0)
	must(t, s.SetValidation(ctx, a1.ID, domain.Valid, "", nil, false, nil))
	must(t, s.SetValidation(ctx, a2.ID, domain.NotValid, "boot", nil, false, nil))
	a2.Status = domain.BackupBackedUp
	must(t, s.SaveBackup(ctx, a2, &store.Chain{Head: a2.ID}))
	c1 := backup(c, 1, domain.BackupFull, domain.BackupRemoved, 7)
	c2 := backup(c, 2, domain.BackupFull, domain.BackupBackedUp, 3)
	must(t, s.SetValidation(ctx, c1.ID, domain.Valid, "", nil, false, nil))
	must(t, s.SetValidation(ctx, c2.ID, domain.UnableToValidate, "no agent", nil, false, nil))
	for _, j := range []jobs.Job{
		{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: c2.ID, VMID: c.ID, ZoneID: "z", State: jobs.Failed, Scheduled: t0},
		{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: c1.ID, VMID: c.ID, ZoneID: "z", State: jobs.Failed, Scheduled: t0}, // of a Removed backup
		{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: c2.ID, VMID: c.ID, ZoneID: "z", State: jobs.Queued, Scheduled: t0},
	} {
		must(t, s.EnqueueJob(ctx, j))
	}
	must(t, s.SaveSchedule(ctx, domain.Schedule{ID: domain.NewID(), VMID: b.ID, Interval: "daily", At: "01:00", NextRun: t0.Add(2 * time.Hour), Created: t0}))
	must(t, s.SaveSchedule(ctx, domain.Schedule{ID: domain.NewID(), VMID: b.ID, Interval: "hourly", At: "00", NextRun: t0.Add(time.Hour), Created: t0}))

	// A succeeded restore of c1 after its validation proves it anew; an
	// older one, a failed one and one of another kind do not count.
	for _, op := range []domain.Operation{
		{ID: domain.NewID(), Kind: "backup.restore", VMID: c.ID, State: domain.OpSucceeded, Result: `{"vm":"c","backup":"` + c1.ID + `"}`, Created: t0, Updated: t0.Add(5 * time.Hour)},
		{ID: domain.NewID(), Kind: "backup.restore", VMID: c.ID, State: domain.OpSucceeded, Result: `{"vm":"c","backup":"old"}`, Created: t0, Updated: t0.Add(4 * time.Hour)},
		{ID: domain.NewID(), Kind: "backup.restore", VMID: c.ID, State: domain.OpFailed, Result: `{"vm":"c","backup":"failed"}`, Created: t0, Updated: t0.Add(9 * time.Hour)},
		{ID: domain.NewID(), Kind: "backup.create", VMID: c.ID, State: domain.OpSucceeded, Result: `{"backup":"created"}`, Created: t0, Updated: t0.Add(9 * time.Hour)},
	} {
		must(t, s.CreateOperation(ctx, op))
	}

	all, err := s.VMSummaries(ctx, "")
	must(t, err)
	if len(all) != 3 || all[0].Name != "a" || all[1].Name != "b" || all[2].Name != "c" {
		t.Fatalf("summaries: %+v", all)
	}
	sa, sb, sc := all[0], all[1], all[2]
	if sa.VMID != a.ID || sa.Account != "admin" || sa.Host != "localhost" || sa.Offering != "gold" || sa.OfferingID != gold.ID ||
		sa.State != domain.VMRunning || sa.ChainHead != a2.ID || sa.ChainLength != 2 || sa.Backups != 3 ||
		sa.LastBackupID != a3.ID || sa.LastBackupStatus != domain.BackupError || !sa.LastBackupAt.Equal(a3.Created) ||
		!sa.LastGoodAt.Equal(a2.Created) || !sa.ProvenAt.Equal(a1.Created) || sa.ProvenBackupID != a1.ID ||
		sa.StoredBytes != 15 || sa.NotValid != 1 || sa.UnableToValidate != 0 || sa.FailedBackups != 1 || sa.FailedJobs != 0 || !sa.NextRun.IsZero() {
		t.Fatalf("summary of a: %+v", sa)
	}
	if sb.Account != "tenant" || sb.Offering != "" || sb.Backups != 0 || sb.LastBackupID != "" || !sb.LastBackupAt.IsZero() ||
		!sb.ProvenAt.IsZero() || sb.ChainLength != 0 || !sb.NextRun.Equal(t0.Add(time.Hour)) {
		t.Fatalf("summary of b: %+v", sb)
	}
	if sa.ProvenBy != "validation" {
		t.Fatalf("a's proof: %q", sa.ProvenBy)
	}
	if sc.WorkState != domain.VMBackupError || sc.StoredBytes != 10 || sc.UnableToValidate != 1 || sc.FailedJobs != 1 ||
		!sc.ProvenAt.Equal(t0.Add(5*time.Hour)) || sc.ProvenBy != "restore" || sc.ProvenBackupID != c1.ID || sc.LastBackupID != c2.ID || !sc.LastGoodAt.Equal(c2.Created) {
		t.Fatalf("summary of c: %+v", sc)
	}
	mine, err := s.VMSummaries(ctx, tenant.ID)
	must(t, err)
	if len(mine) != 1 || mine[0].VMID != b.ID {
		t.Fatalf("the tenant's summaries: %+v", mine)
	}
}
