package notify_test

import (
	"slices"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/notify"
	"github.com/knib/knib/internal/store"
)

// TestDeriveEveryKind: each kind of condition is found where the catalogue
// records it, with its zone and account, and is gone once that clears.
func TestDeriveEveryKind(t *testing.T) {
	f := setup(t)
	ctx := f.ctx
	cfg := notify.Config{AgentDownAfter: 5 * time.Minute, StorageFreePercent: 10, MaxAttempts: 3}
	keys := func() map[string]notify.Condition {
		t.Helper()
		cs, err := f.svc.Derive(ctx, cfg)
		must(t, err)
		out := map[string]notify.Condition{}
		for _, c := range cs {
			if _, dup := out[c.Key]; dup {
				t.Fatalf("key %s twice", c.Key)
			}
			out[c.Key] = c
		}
		return out
	}
	if got := keys(); len(got) != 0 {
		t.Fatalf("conditions of a quiet catalogue: %v", got)
	}
	mk := func(n int, st domain.BackupStatus) domain.Backup {
		b := domain.Backup{ID: domain.NewID(), VMID: f.vm.ID, VMName: f.vm.Name, AccountID: f.acc.ID, Type: domain.BackupFull, Position: n,
			Status: st, Dir: "backups/web1", Plan: "{}", Created: t0.Add(time.Duration(n) * time.Minute), Updated: t0}
		must(t, f.st.CreateBackup(ctx, b))
		return b
	}
	good := mk(1, domain.BackupBackedUp)
	must(t, f.st.SetCompression(ctx, good.ID, domain.CompressionError, 0, 0, nil))
	failedJob := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: good.ID, VMID: f.vm.ID, ZoneID: f.zone.ID,
		State: jobs.Failed, Attempts: 3, LastError: "no space", Scheduled: t0, Ended: t0}
	must(t, f.st.EnqueueJob(ctx, failedJob))
	bad := mk(2, domain.BackupError)
	// A daily schedule made three days ago; the last good backup is t0+1m,
	// now is t0: stale only once now passes two days after that.
	must(t, f.st.SaveSchedule(ctx, domain.Schedule{ID: domain.NewID(), VMID: f.vm.ID, Interval: "daily", At: "01:00", NextRun: t0, Created: t0.Add(-72 * time.Hour)}))
	h, err := f.st.Host(ctx, "localhost")
	must(t, err)
	must(t, f.st.SetHostIdentity(ctx, h.ID, "1", "https://h:1", t0))
	must(t, f.st.SetHostConnection(ctx, h.ID, store.AgentDisconnected, t0.Add(-10*time.Minute)))
	stor := domain.Storage{ID: domain.NewID(), Name: "nfs", ZoneID: f.zone.ID, Path: "/srv/nfs", Enabled: true, Capacity: 1000, Free: 50, Measured: t0, Created: t0}
	must(t, f.st.CreateStorage(ctx, stor))

	got := keys()
	want := []string{
		notify.KindCompressionFailed + "/" + good.ID,
		notify.KindJobExhausted + "/" + failedJob.ID,
		notify.KindBackupFailed + "/" + bad.ID,
		notify.KindAgentDown + "/" + h.ID,
		notify.KindStorageLow + "/" + stor.ID,
	}
	var gotKeys []string
	for k := range got {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(gotKeys)
	slices.Sort(want)
	if !slices.Equal(gotKeys, want) {
		t.Fatalf("keys:\n got %v\nwant %v", gotKeys, want)
	}
	if c := got[notify.KindBackupFailed+"/"+bad.ID]; c.ZoneID != f.zone.ID || c.AccountID != f.acc.ID || c.Details.VM != "web1" {
		t.Fatalf("backup.failed: %+v", c)
	}
	if c := got[notify.KindJobExhausted+"/"+failedJob.ID]; c.Details.Reason != "no space" || c.AccountID != f.acc.ID {
		t.Fatalf("job.exhausted: %+v", c)
	}
	f.clk.Advance(47 * time.Hour)
	if _, ok := keys()[notify.KindVMStale+"/"+f.vm.ID]; ok {
		t.Fatalf("vm.stale before two intervals passed")
	}
	f.clk.Advance(2 * time.Hour)
	if _, ok := keys()[notify.KindVMStale+"/"+f.vm.ID]; !ok {
		t.Fatalf("no vm.stale two days after the last good backup")
	}

	// Everything clears.
	newer := domain.Backup{ID: domain.NewID(), VMID: f.vm.ID, VMName: f.vm.Name, AccountID: f.acc.ID, Type: domain.BackupFull, Position: 3,
		Status: domain.BackupBackedUp, Dir: "backups/web1", Plan: "{}", Created: f.clk.Now(), Updated: f.clk.Now()}
	must(t, f.st.CreateBackup(ctx, newer))
	okJob := failedJob
	okJob.ID, okJob.State, okJob.Ended = domain.NewID(), jobs.Succeeded, t0.Add(time.Hour)
	must(t, f.st.EnqueueJob(ctx, okJob))
	must(t, f.st.SetCompression(ctx, good.ID, domain.Compressed, 0, 0, nil))
	must(t, f.st.SetHostConnection(ctx, h.ID, store.AgentConnected, f.clk.Now()))
	must(t, f.st.SetStorageCapacity(ctx, stor.ID, 1000, 500, f.clk.Now()))
	if got := keys(); len(got) != 0 {
		t.Fatalf("after clearing: %v", got)
	}
}
