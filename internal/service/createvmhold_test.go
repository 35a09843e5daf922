package service_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/restores"
)

// A VM that create-vm --quick-restore made is held while it is
// consolidated, like the VM of every other restore: recovery's pass, which
// resumes the consolidation of a quick-restored VM nobody holds, leaves it
// alone, so its disks are never pulled twice at once.
func TestQuickCreateVMHoldsTheNewVMWhileConsolidating(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	quick, err := e.svc.Offerings.CreateOffering(ctx, e.admin, domain.OfferingSpec{Name: "quick", AllowQuickRestore: true})
	if err != nil {
		t.Fatal(err)
	}
	bid := "a0000000-0000-4000-8000-000000000001"
	dir := "backups/" + vmID + "/" + bid
	now := time.Now()
	b := domain.Backup{ID: bid, VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, HostID: e.vm.HostID, OfferingID: quick.ID,
		Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp, Dir: dir, Created: now, Updated: now, StorageID: defaultStorage(t, e)}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Files = []domain.BackupFile{{Disk: "vda", Path: dir + "/vda.qcow2", Full: true, Size: 1, Hash: "xxh3-128:00"}}
	if err := e.st.SaveBackup(ctx, b, nil); err != nil {
		t.Fatal(err)
	}

	const newID = "33333333-2222-4333-8444-555555555555"
	web := e.agent.Domains[0]
	clone := func(onStorage bool) agentapi.Domain {
		d := agentapi.Disk{Target: "vda", Device: "disk", SourceType: "file", Source: "/img/clone-vda.qcow2", Format: "qcow2", VirtualSize: 1 << 20}
		if onStorage {
			d.BackingChain = []agentapi.Layer{{Path: "/st/" + dir + "/vda.qcow2", Format: "qcow2"}}
		}
		return agentapi.Domain{UUID: newID, Name: "clone", State: "running", Disks: []agentapi.Disk{d}}
	}
	consolidations, busy, reconciled := 0, "", false
	e.agent.Task = func(task agentapi.Task) agentapi.TaskStatus {
		done := agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100}
		switch task.Request.(type) {
		case agentapi.CreateVMRequest:
			e.agent.SetDomains([]agentapi.Domain{web, clone(true)})
			done.Result = agentapi.RestoreResult{UUID: newID, Name: "clone", Defined: true, Started: true,
				Disks: []agentapi.RestoredDisk{{Target: "vda", Path: "/img/clone-vda.qcow2", Verified: "overlay on the backup file"}}}
		case agentapi.ConsolidateRequest:
			consolidations++
			if !reconciled {
				// Recovery's periodic pass lands during the consolidation.
				reconciled = true
				vm, err := e.st.VM(ctx, newID)
				if err != nil {
					t.Errorf("the new VM is not in the catalogue while it is consolidated: %v", err)
				}
				busy = vm.Busy
				e.svc.Recovery.Reconcile(ctx)
			}
			e.agent.SetDomains([]agentapi.Domain{web, clone(false)})
			done.Result = agentapi.ConsolidateResult{Disks: []string{"vda"}}
		}
		return done
	}

	op, err := e.svc.Restores.CreateVMFromBackup(ctx, e.admin, bid, "clone", restores.RestoreOptions{Quick: true}, true)
	if err != nil {
		t.Fatal(err)
	}
	op = waitOp(t, e, op)
	var res domain.BackupCreateVMResult
	if err := json.Unmarshal([]byte(op.Result), &res); op.State != domain.OpSucceeded || err != nil || res.Consolidated == nil || !*res.Consolidated {
		t.Fatalf("quick create-vm: %+v", op)
	}
	if busy == "" {
		t.Fatal("the new VM was not held while create-vm consolidated it")
	}
	if consolidations != 1 {
		t.Fatalf("%d consolidations of the new VM, want 1 (recovery must leave a held VM alone)", consolidations)
	}
	if vm, err := e.st.VM(ctx, newID); err != nil || vm.Busy != "" || vm.LastError != "" {
		t.Fatalf("the new VM after create-vm: %+v %v", vm, err)
	}
}
