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

	merge := holdTask(a, agentapi.KindMergeBackup, agentapi.MergeBackupResult{})
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
	merge.waitStarted(t)
	vm, err := e.st.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if vm.WorkState != domain.VMBackingUp || vm.Busy == "" {
		t.Fatalf("vm while its merge runs: %+v", vm)
	}
	// The next backup waits for the merge.
	backupWaitsFor(t, e, "the merge", merge.let)
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
	recovery := holdTask(a, agentapi.KindReconcile, agentapi.ReconcileResult{})
	reconciled := make(chan struct{})
	go func() {
		e.svc.Recovery.Reconcile(ctx)
		close(reconciled)
	}()
	recovery.waitStarted(t)
	backupWaitsFor(t, e, "the recovery", func() {
		recovery.let()
		<-reconciled
	})
}

// heldTask is a command of the fake agent that runs until let is called;
// the agent's other commands are a backup's.
type heldTask struct {
	mu            sync.Mutex
	held, started bool
	command       string
}

func holdTask(a *migHost, command string, result any) *heldTask {
	h := &heldTask{held: true, command: command}
	a.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if req.Command != command {
			return a.backupTask(req)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.started = true
		if h.held {
			return agentapi.TaskStatus{State: agentapi.TaskRunning, Message: "held by the test"}
		}
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: result}
	}
	return h
}

// waitStarted waits until the command was asked for.
func (h *heldTask) waitStarted(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		started := h.started
		h.mu.Unlock()
		if started {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s task", h.command)
		}
	}
}

// let lets the command succeed.
func (h *heldTask) let() {
	h.mu.Lock()
	h.held = false
	h.mu.Unlock()
}

// backupWaitsFor asks for a backup of the test VM while work holds it: the
// request is not answered until release lets that work end, and then the
// backup succeeds.
func backupWaitsFor(t *testing.T, e *env, what string, release func()) {
	t.Helper()
	type created struct {
		op  domain.Operation
		err error
	}
	next := make(chan created, 1)
	go func() {
		op, err := e.svc.Backups.CreateBackup(context.Background(), e.admin, "web", false, false)
		next <- created{op, err}
	}()
	select {
	case c := <-next:
		t.Fatalf("a backup was answered while %s runs: %+v %v", what, c.op, c.err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	c := <-next
	if c.err != nil {
		t.Fatalf("the backup after %s: %v", what, c.err)
	}
	if got := waitOp(t, e, c.op); got.State != domain.OpSucceeded {
		t.Fatalf("the backup after %s: %+v", what, got)
	}
}
