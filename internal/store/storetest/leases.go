package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// testLeases checks owners and leases of operations and VM locks: renewal
// touches only the owner's unfinished work, and every take-over is a
// compare-and-swap that exactly one of several concurrent callers wins.
func testLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	vm := domain.VM{ID: domain.NewID(), Name: "v", State: domain.VMRunning}
	vm2 := domain.VM{ID: domain.NewID(), Name: "w", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{vm, vm2}, acc.ID, t0))
	until := t0.Add(time.Minute)

	// Operations carry owner and lease.
	op := domain.Operation{ID: domain.NewID(), Kind: "k", VMID: vm.ID, AccountID: acc.ID, State: domain.OpRunning,
		Created: t0, Updated: t0, Owner: "a/n1/1/x", LeaseUntil: until}
	must(t, s.CreateOperation(ctx, op))
	done := op
	done.ID, done.State = domain.NewID(), domain.OpSucceeded
	must(t, s.CreateOperation(ctx, done))
	got, err := s.Operation(ctx, op.ID)
	must(t, err)
	if got.Owner != op.Owner || !got.LeaseUntil.Equal(until) {
		t.Fatalf("operation owner %q lease %v", got.Owner, got.LeaseUntil)
	}

	// VM locks carry owner and lease; a busy VM refuses another holder.
	must(t, s.AcquireVMFor(ctx, vm.ID, "backup op1", "a/n1/1/x", until))
	wantErr(t, s.AcquireVMFor(ctx, vm.ID, "x", "b/n2/2/y", until), domain.ErrConflict)
	wantErr(t, s.AcquireVMFor(ctx, "nope", "x", "b/n2/2/y", until), domain.ErrNotFound)
	must(t, s.AcquireVMFor(ctx, vm2.ID, "snapshot op2", "b/n2/2/y", until))
	locks, err := s.VMLocks(ctx)
	must(t, err)
	if len(locks) != 2 || locks[0].Owner == "" || !locks[0].Until.Equal(until) {
		t.Fatalf("locks: %+v", locks)
	}

	// Renewal: only the owner's unfinished work.
	later := until.Add(time.Minute)
	must(t, s.RenewOwner(ctx, "a/n1/1/x", later))
	got, _ = s.Operation(ctx, op.ID)
	if !got.LeaseUntil.Equal(later) {
		t.Fatalf("running operation not renewed: %v", got.LeaseUntil)
	}
	if d, _ := s.Operation(ctx, done.ID); !d.LeaseUntil.Equal(until) {
		t.Fatalf("finished operation renewed: %v", d.LeaseUntil)
	}
	locks, _ = s.VMLocks(ctx)
	for _, l := range locks {
		want := map[string]time.Time{vm.ID: later, vm2.ID: until}[l.VMID]
		if !l.Until.Equal(want) {
			t.Fatalf("lock of %s until %v, want %v", l.VMID, l.Until, want)
		}
	}

	// A stale view takes nothing; the current one is taken exactly once,
	// even by concurrent callers.
	if ok, err := s.FailOperationIf(ctx, op.ID, op.Owner, until, "stale", t0); err != nil || ok {
		t.Fatalf("stale lease view failed the operation: %v %v", ok, err)
	}
	var wins int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok1, err1 := s.FailOperationIf(ctx, op.ID, op.Owner, later, "interrupted", t0)
			ok2, err2 := s.TakeVMLock(ctx, store.VMLock{VMID: vm.ID, Holder: "backup op1", Owner: "a/n1/1/x", Until: later})
			if err1 != nil || err2 != nil {
				t.Error(err1, err2)
			}
			mu.Lock()
			wins += map[bool]int{true: 1}[ok1] + map[bool]int{true: 10}[ok2]
			mu.Unlock()
		}()
	}
	wg.Wait()
	if wins != 11 {
		t.Fatalf("take-overs: %d operation(s), %d lock(s); want one each", wins%10, wins/10)
	}
	got, _ = s.Operation(ctx, op.ID)
	if got.State != domain.OpFailed || got.Error != "interrupted" {
		t.Fatalf("operation after take-over: %s %q", got.State, got.Error)
	}
	// The old owner's late update does not overwrite the verdict.
	late := got
	late.State, late.Error = domain.OpSucceeded, ""
	if ok, err := s.UpdateOwnedOperation(ctx, late, "a/n1/1/x"); err != nil || ok {
		t.Fatalf("late update by the old owner: %v %v", ok, err)
	}
	if got, _ = s.Operation(ctx, op.ID); got.State != domain.OpFailed {
		t.Fatalf("late update overwrote the verdict: %s", got.State)
	}
	other := domain.Operation{ID: domain.NewID(), Kind: "k", AccountID: acc.ID, State: domain.OpPending, Created: t0, Updated: t0, Owner: "b/n2/2/y"}
	must(t, s.CreateOperation(ctx, other))
	other.State = domain.OpRunning
	if ok, err := s.UpdateOwnedOperation(ctx, other, "b/n2/2/y"); err != nil || !ok {
		t.Fatalf("update by the owner: %v %v", ok, err)
	}
	locks, _ = s.VMLocks(ctx)
	if len(locks) != 1 || locks[0].VMID != vm2.ID {
		t.Fatalf("locks after take-over: %+v", locks)
	}
	// A released VM is free for anyone; the old owner's renewal misses it.
	must(t, s.RenewOwner(ctx, "a/n1/1/x", later.Add(time.Hour)))
	must(t, s.AcquireVMFor(ctx, vm.ID, "restore op3", "b/n2/2/y", until))
	must(t, s.ReleaseVM(ctx, vm.ID, "restore op3"))
	locks, _ = s.VMLocks(ctx)
	if len(locks) != 1 {
		t.Fatalf("locks after release: %+v", locks)
	}

	// A job of a dead owner is reaped whatever its lease says, once.
	j := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: "b", VMID: vm.ID, ZoneID: h.ZoneID, State: jobs.Queued, Scheduled: t0}
	must(t, s.EnqueueJob(ctx, j))
	if ok, err := s.ClaimJob(ctx, j.ID, "a/n1/1/x", h.ID, t0, t0.Add(time.Hour)); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	out := jobs.Outcome{State: jobs.Queued, Scheduled: t0, Attempts: 1}
	if ok, err := s.ReapJobOf(ctx, j.ID, "b/n2/2/y", t0, out, "lost"); err != nil || ok {
		t.Fatalf("reaped with another owner: %v %v", ok, err)
	}
	if ok, err := s.ReapJobOf(ctx, j.ID, "a/n1/1/x", t0, out, "lost"); err != nil || !ok {
		t.Fatalf("not reaped: %v %v", ok, err)
	}
	if ok, _ := s.ReapJobOf(ctx, j.ID, "a/n1/1/x", t0, out, "lost"); ok {
		t.Fatal("reaped twice")
	}
	list, err := s.Jobs(ctx, store.JobFilter{ID: j.ID, All: true})
	must(t, err)
	if len(list) != 1 || list[0].State != jobs.Queued || list[0].LeaseOwner != "" || list[0].LastError != "lost" {
		t.Fatalf("reaped job: %+v", list)
	}

	// Backup status compare-and-swap.
	b := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: "v", AccountID: acc.ID, Type: domain.BackupFull, Position: 1,
		Status: domain.BackupRestoring, Dir: "backups/v/b1", Created: t0, Updated: t0}
	must(t, s.CreateBackup(ctx, b))
	if ok, err := s.SetBackupStatusIf(ctx, b.ID, domain.BackupBackingUp, domain.BackupBackedUp, t0, t0); err != nil || ok {
		t.Fatalf("status swapped from the wrong value: %v %v", ok, err)
	}
	if ok, err := s.SetBackupStatusIf(ctx, b.ID, domain.BackupRestoring, domain.BackupBackedUp, t0.Add(-time.Second), t0); err != nil || ok {
		t.Fatalf("status swapped though set again since: %v %v", ok, err)
	}
	if ok, err := s.SetBackupStatusIf(ctx, b.ID, domain.BackupRestoring, domain.BackupBackedUp, t0, t0.Add(time.Second)); err != nil || !ok {
		t.Fatalf("status not swapped: %v %v", ok, err)
	}
	if got, _ := s.Backup(ctx, b.ID); got.Status != domain.BackupBackedUp {
		t.Fatalf("backup status %s", got.Status)
	}
}
