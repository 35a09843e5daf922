package service_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// The merge of the previous delta follows the backup (issue 17): the
// operation succeeds while the merge still runs, the VM stays BackingUp and
// held until it ends, and a backup asked for meanwhile waits for it and
// then runs.
func TestMergeFollowsTheBackup(t *testing.T) {
	e, a, b := migEnv(t)
	backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
	ctx := context.Background()

	var mu sync.Mutex
	hold, merging := true, false
	a.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if req.Command == agentapi.KindMergeBackup {
			mu.Lock()
			defer mu.Unlock()
			merging = true
			if hold {
				return agentapi.TaskStatus{State: agentapi.TaskRunning, Message: "merging"}
			}
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: agentapi.MergeBackupResult{}}
		}
		return a.backupTask(req)
	}
	op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := e.svc.Kernel.Operation(ctx, e.admin, op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == domain.OpSucceeded {
			break
		}
		if got.State == domain.OpFailed || time.Now().After(deadline) {
			t.Fatalf("the backup did not succeed before its merge: %+v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for {
		mu.Lock()
		seen := merging
		mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no merge task after the backup")
		}
		time.Sleep(5 * time.Millisecond)
	}
	vm, err := e.st.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if vm.WorkState != domain.VMBackingUp || vm.Busy == "" {
		t.Fatalf("vm while its merge runs: %+v", vm)
	}
	// The next backup waits for the merge.
	type created struct {
		op  domain.Operation
		err error
	}
	next := make(chan created, 1)
	go func() {
		op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
		next <- created{op, err}
	}()
	select {
	case c := <-next:
		t.Fatalf("a backup started while the previous merge runs: %+v %v", c.op, c.err)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	hold = false
	mu.Unlock()
	c := <-next
	if c.err != nil {
		t.Fatalf("the backup after the merge: %v", c.err)
	}
	if got := waitOp(t, e, c.op); got.State != domain.OpSucceeded {
		t.Fatalf("the backup after the merge: %+v", got)
	}
	vm, err = e.st.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if vm.WorkState != "" || vm.Busy != "" {
		t.Fatalf("vm after the merges: %+v", vm)
	}
}

// A merge that fails after the backup was committed leaves the backup
// BackedUp; the VM is recovered at once (its chain ends) and not left busy.
func TestFailedMergeAfterTheBackupIsRecovered(t *testing.T) {
	e, a, b := migEnv(t)
	backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
	ctx := context.Background()
	a.Task = func(req agentapi.Task) agentapi.TaskStatus {
		switch req.Command {
		case agentapi.KindMergeBackup:
			return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "block commit failed"}
		case agentapi.KindReconcile:
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: agentapi.ReconcileResult{}}
		}
		return a.backupTask(req)
	}
	before := len(a.Started)
	op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	op = waitOp(t, e, op)
	if op.State != domain.OpSucceeded {
		t.Fatalf("the backup itself: %+v", op)
	}
	if got := strings.Join(a.Started[before:], ","); got != "backup.take,backup.merge,vm.reconcile" {
		t.Fatalf("tasks: %s", got)
	}
	vm, err := e.st.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if vm.WorkState != "" || vm.Busy != "" || vm.ChainHead != "" {
		t.Fatalf("vm after the failed merge: %+v", vm)
	}
	bs, _, err := e.svc.Backups.Backups(ctx, e.admin, "web", store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	last := bs[len(bs)-1]
	if last.Status != domain.BackupBackedUp || last.Type != domain.BackupIncremental || !last.EndOfChain {
		t.Fatalf("the backup whose merge failed: %+v", last)
	}
}

// A request that needs a VM while the server's own recovery holds it (the
// reconciliation right after a restart) waits for the recovery and then
// runs, instead of being refused because the VM is busy.
func TestRequestsWaitForRecovery(t *testing.T) {
	e, a, b := migEnv(t)
	backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
	ctx := context.Background()
	if err := e.st.SetVMWorkState(ctx, vmID, domain.VMBackupError); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hold, reconciling := true, false
	a.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if req.Command == agentapi.KindReconcile {
			mu.Lock()
			defer mu.Unlock()
			reconciling = true
			if hold {
				return agentapi.TaskStatus{State: agentapi.TaskRunning, Message: "merging"}
			}
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: agentapi.ReconcileResult{}}
		}
		return a.backupTask(req)
	}
	reconciled := make(chan struct{})
	go func() {
		e.svc.Recovery.Reconcile(ctx)
		close(reconciled)
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		seen := reconciling
		mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no recovery task")
		}
	}
	type created struct {
		op  domain.Operation
		err error
	}
	next := make(chan created, 1)
	go func() {
		op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
		next <- created{op, err}
	}()
	select {
	case c := <-next:
		t.Fatalf("a backup was answered while the recovery runs: %+v %v", c.op, c.err)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	hold = false
	mu.Unlock()
	<-reconciled
	c := <-next
	if c.err != nil {
		t.Fatalf("the backup after the recovery: %v", c.err)
	}
	if got := waitOp(t, e, c.op); got.State != domain.OpSucceeded {
		t.Fatalf("the backup after the recovery: %+v", got)
	}
}
