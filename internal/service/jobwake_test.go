package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// A job that ends wakes the scheduler (Jobs.Wake): the finalize job that a
// compression queued is started by the pass that wake-up triggers, not by
// the next tick.
func TestJobEndWakesTheScheduler(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	now := time.Now()
	dir := "backups/" + vmID + "/w1"
	b := domain.Backup{ID: domain.NewID(), VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, OfferingID: e.vm.OfferingID, HostID: e.vm.HostID,
		Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp, Dir: dir, Created: now, Updated: now, StorageID: defaultStorage(t, e)}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Files = []domain.BackupFile{{Disk: "vda", Path: dir + "/vda.qcow2", Full: true, Size: 2, Hash: "xxh3-128:00"}}
	if err := e.st.SaveBackup(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	host, err := e.st.Host(ctx, e.vm.HostID)
	if err != nil {
		t.Fatal(err)
	}
	e.agent.Task = func(task agentapi.Task) agentapi.TaskStatus {
		switch req := task.Request.(type) {
		case agentapi.CompressRequest:
			res := agentapi.CompressResult{}
			for _, f := range req.Files {
				res.Files = append(res.Files, agentapi.CompressedFile{Disk: f.Disk, Path: f.Path, Size: 1, UncompressedSize: 2})
			}
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: res}
		case agentapi.FinalizeCompressionRequest:
			res := agentapi.CompressResult{}
			for _, f := range req.Files {
				res.Files = append(res.Files, agentapi.CompressedFile{Disk: f.Disk, Path: f.Path, Size: 1, UncompressedSize: 2, Hash: "xxh3-128:01"})
			}
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: res}
		}
		return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "unexpected"}
	}
	start := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: b.ID, VMID: vmID, ZoneID: host.ZoneID, State: jobs.Queued, Scheduled: now.Add(-time.Minute)}
	if err := e.st.EnqueueJob(ctx, start); err != nil {
		t.Fatal(err)
	}
	wake := e.svc.Jobs.Wake()
	select {
	case <-wake:
		t.Fatal("woken before any job ended")
	default:
	}
	if err := e.svc.Jobs.RunJobs(ctx, e.svc.Kernel.Owner()); err != nil {
		t.Fatal(err)
	}
	e.svc.Jobs.WaitJobs()
	select {
	case <-wake:
	default:
		t.Fatal("the end of the compression job did not wake the scheduler")
	}
	// The pass the wake-up runs starts the finalize job.
	if err := e.svc.Jobs.RunJobs(ctx, e.svc.Kernel.Owner()); err != nil {
		t.Fatal(err)
	}
	e.svc.Jobs.WaitJobs()
	got, err := e.st.Backup(ctx, b.ID)
	if err != nil || got.CompressionStatus != domain.Compressed {
		t.Fatalf("after the woken pass the backup is %q (%v), want Compressed", got.CompressionStatus, err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("the end of the finalize job did not wake the scheduler")
	}
}
