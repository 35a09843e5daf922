package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/config"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// After the last attempt of a compression fails, the compressed copies
// are removed (the finalize job's cleanup mode) and the backup is
// CompressionError; a rate limit the agent's qemu-img can't apply is
// said in the job's message.
func TestCompressionFailureCleansUpAndSkippedRateLimitIsSaid(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	now := time.Now()
	dir := "backups/" + vmID + "/c1"
	b := domain.Backup{ID: domain.NewID(), VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, OfferingID: e.vm.OfferingID, HostID: e.vm.HostID,
		Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp, Dir: dir, Created: now, Updated: now, StorageID: defaultStorage(t, e)}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Files = []domain.BackupFile{{Disk: "vda", Path: dir + "/vda.qcow2", Full: true, Size: 1, Hash: "xxh3-128:00"}}
	if err := e.st.SaveBackup(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	host, err := e.st.Host(ctx, e.vm.HostID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Config.SetSetting(ctx, e.admin, settings.KeyCompressionMaxJobRetries, "0", config.ScopeRef{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Config.SetSetting(ctx, e.admin, settings.KeyCompressionRateLimit, "50", config.ScopeRef{}); err != nil {
		t.Fatal(err)
	}
	var cleanups []agentapi.FinalizeCompressionRequest
	var rate int64
	e.agent.Task = func(task agentapi.Task) agentapi.TaskStatus {
		switch req := task.Request.(type) {
		case agentapi.CompressRequest:
			rate = req.RateLimitMBps
			res := agentapi.CompressResult{RateLimitSkipped: "backup.compression.rate.limit 50 MB/s not applied: this qemu-img has no convert -r"}
			for _, f := range req.Files {
				res.Files = append(res.Files, agentapi.CompressedFile{Disk: f.Disk, Path: f.Path, Size: 1, UncompressedSize: 2})
			}
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: res}
		case agentapi.FinalizeCompressionRequest:
			if req.Cleanup {
				cleanups = append(cleanups, req)
				return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: agentapi.CompressResult{}}
			}
			return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "rename vda.qcow2.compressed: input/output error"}
		}
		return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "unexpected"}
	}
	start := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: b.ID, VMID: vmID, ZoneID: host.ZoneID, State: jobs.Queued, Scheduled: now.Add(-time.Minute)}
	if err := e.st.EnqueueJob(ctx, start); err != nil {
		t.Fatal(err)
	}
	run := func() {
		if err := e.svc.Jobs.RunJobs(ctx, e.svc.Kernel.Owner()); err != nil {
			t.Fatal(err)
		}
		e.svc.Jobs.WaitJobs()
	}
	run()
	got, err := e.st.Job(ctx, start.ID)
	if err != nil || got.State != jobs.Succeeded || rate != 50 || !strings.Contains(got.LastError, "not applied") {
		t.Fatalf("compression with a rate limit qemu-img lacks: rate %d, job %+v %v", rate, got, err)
	}
	// The finalize job fails once, which is its last attempt.
	run()
	list, err := e.st.Jobs(ctx, storeJobsOf(b.ID))
	if err != nil {
		t.Fatal(err)
	}
	var fin jobs.Job
	for _, j := range list {
		if j.Type == jobs.FinalizeCompression {
			fin = j
		}
	}
	if fin.State != jobs.Failed {
		t.Fatalf("finalize job: %+v", fin)
	}
	if len(cleanups) != 1 || len(cleanups[0].Files) != 1 || cleanups[0].Files[0].Path != dir+"/vda.qcow2" || cleanups[0].JobID != "" {
		t.Fatalf("cleanup requests after the final failure: %+v", cleanups)
	}
	if bb, err := e.st.Backup(ctx, b.ID); err != nil || bb.CompressionStatus != domain.CompressionError {
		t.Fatalf("backup after the final failure: %+v %v", bb.CompressionStatus, err)
	}
}

func storeJobsOf(backupID string) store.JobFilter {
	return store.JobFilter{BackupID: backupID, All: true}
}
