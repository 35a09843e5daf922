package service_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// `knib chain finish` ends the chain as every other end of a chain does
// (kboss-behaviour.md §4, finishBackupChain): the VM's deltas are merged
// (the agent's reconcile), the chain head is cleared, and the old head is
// marked the end of its chain, so the next backup is full.
func TestChainFinishMarksTheHeadEndOfChain(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	st := defaultStorage(t, e)
	now := time.Now()
	var ids []string
	for i, id := range []string{"a0000000-0000-4000-8000-000000000001", "a0000000-0000-4000-8000-000000000002"} {
		typ, parent := domain.BackupFull, ""
		if i > 0 {
			typ, parent = domain.BackupIncremental, ids[i-1]
		}
		dir := "backups/" + vmID + "/" + id
		b := domain.Backup{ID: id, ParentID: parent, VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, HostID: e.vm.HostID, Type: typ,
			Position: i + 1, Status: domain.BackupBackedUp, Dir: dir, Created: now.Add(time.Duration(i) * time.Minute), Updated: now, StorageID: st}
		if err := e.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	delta := "/img/knib-delta." + vmID + ".vda." + ids[1] + ".qcow2"
	if err := e.st.SetChain(ctx, vmID, store.Chain{Head: ids[1], Deltas: []domain.Delta{{VMID: vmID, Disk: "vda", BackupID: ids[1], Delta: delta, Base: "/img/vda.qcow2"}}}); err != nil {
		t.Fatal(err)
	}

	var reconciled []agentapi.ReconcileRequest
	e.agent.Task = func(task agentapi.Task) agentapi.TaskStatus {
		if req, ok := task.Request.(agentapi.ReconcileRequest); ok {
			reconciled = append(reconciled, req)
		}
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100}
	}
	op, err := e.svc.Backups.FinishChain(ctx, e.admin, "web")
	if err != nil {
		t.Fatal(err)
	}
	if op = waitOp(t, e, op); op.State != domain.OpSucceeded {
		t.Fatalf("chain finish: %+v", op)
	}
	// One reconcile of the VM that keeps no delta: every one is merged.
	if got := strings.Join(e.agent.Started, ","); got != "vm.reconcile" || len(reconciled) != 1 ||
		reconciled[0].DomainUUID != vmID || len(reconciled[0].Keep) != 0 {
		t.Fatalf("tasks: %s %+v, want the deltas merged by one vm.reconcile", got, reconciled)
	}
	c, err := e.st.Chain(ctx, vmID)
	if err != nil || c.Head != "" || len(c.Deltas) != 0 {
		t.Fatalf("chain after finish: %+v %v", c, err)
	}
	head, err := e.st.Backup(ctx, ids[1])
	if err != nil || !head.EndOfChain || head.Status != domain.BackupBackedUp {
		t.Fatalf("the old head after chain finish: %+v %v", head, err)
	}
	if first, _ := e.st.Backup(ctx, ids[0]); first.EndOfChain {
		t.Fatalf("only the head ends the chain: %+v", first)
	}
}
