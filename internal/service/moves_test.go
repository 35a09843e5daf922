package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/restores"
	"github.com/knib/knib/internal/store"
)

// moveEnv is newEnv with the VM stopped, a backup of it, and a second host
// "hostb" (in zone) with its own fake agent.
func moveEnv(t *testing.T, zone string) (*env, *agenttest.Fake, domain.Host, domain.Backup) {
	t.Helper()
	e := newEnv(t, "")
	ctx := context.Background()
	doms, _ := e.agent.Inventory(ctx)
	doms[0].State = "shutoff"
	e.agent.SetDomains(doms)
	b := &agenttest.Fake{Report: agentapi.HostReport{Name: "hostb", StoragePath: "/st"}}
	hb, err := e.svc.Hosts.RegisterHost(ctx, zone, b, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	bk := domain.Backup{ID: "22222222-2222-4333-8444-555555555555", VMID: vmID, VMName: "web", AccountID: e.admin.AccountID,
		HostID: e.vm.HostID, OfferingID: e.vm.OfferingID, Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp,
		Dir: "backups/" + vmID + "/x", Created: now, Updated: now, StorageID: defaultStorage(t, e)}
	if err := e.st.CreateBackup(ctx, bk); err != nil {
		t.Fatal(err)
	}
	return e, b, hb, bk
}

// Bad --host values are refused before anything is recorded or started.
func TestRestoreOntoAnotherHostRefusals(t *testing.T) {
	ctx := context.Background()
	e, b, _, bk := moveEnv(t, "elsewhere")
	user := domain.Principal{AccountID: e.admin.AccountID, AccountName: "admin", Role: domain.RoleUser}
	for _, c := range []struct {
		p    domain.Principal
		host string
		want error
	}{
		{e.admin, "nosuchhost", domain.ErrNotFound},
		{e.admin, "hostb", domain.ErrConflict}, // another zone
		{e.admin, "../x", nil},                 // invalid: checked below
		{user, "localhost", domain.ErrForbidden},
	} {
		_, err := e.svc.Restores.RestoreBackup(ctx, c.p, bk.ID, restores.RestoreOptions{Host: c.host})
		if c.want == nil {
			if !domain.IsInvalid(err) {
				t.Errorf("restore --host %s: %v, want invalid input", c.host, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("restore --host %s as %s: %v, want %v", c.host, c.p.Role, err, c.want)
		}
		_, err = e.svc.Restores.CreateVMFromBackup(ctx, c.p, bk.ID, "web2", restores.RestoreOptions{Host: c.host}, false)
		if !errors.Is(err, c.want) {
			t.Errorf("create-vm --host %s as %s: %v, want %v", c.host, c.p.Role, err, c.want)
		}
	}
	if moves, _ := e.st.VMMoves(ctx); len(moves) != 0 {
		t.Fatalf("a refused restore recorded a move: %+v", moves)
	}
	if len(e.agent.Started)+len(b.Started) != 0 {
		t.Fatalf("a refused restore started tasks: %v %v", e.agent.Started, b.Started)
	}
}

// A move the target host never got to (the VM is not defined there) rolls
// back: the VM stays on its host, RestoreError with the reason.
func TestMoveRecoveryRollsBack(t *testing.T) {
	ctx := context.Background()
	e, _, hb, bk := moveEnv(t, "default")
	if err := e.st.RecordVMMove(ctx, store.VMMove{VMID: vmID, FromHost: e.vm.HostID, ToHost: hb.ID, BackupID: bk.ID, Quick: true, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.svc.Recovery.Reconcile(ctx)
	vm, _ := e.st.VM(ctx, vmID)
	if vm.HostID != e.vm.HostID || vm.WorkState != domain.VMRestoreError || !strings.Contains(vm.LastError, "interrupted") {
		t.Fatalf("vm after roll-back: %+v", vm)
	}
	if moves, _ := e.st.VMMoves(ctx); len(moves) != 0 {
		t.Fatalf("move left after roll-back: %+v", moves)
	}
}

// A move whose VM is defined on the target rolls forward: for a quick
// restore whose VM does not run there yet, the same restore-here command
// again (idempotent); the catalogue's host becomes the target, the old host
// undefines it, and its inventory no longer claims it.
func TestMoveRecoveryRollsForward(t *testing.T) {
	ctx := context.Background()
	e, b, hb, bk := moveEnv(t, "default")
	doms, _ := e.agent.Inventory(ctx)
	b.SetDomains([]agentapi.Domain{{UUID: vmID, Name: "web", State: "shutoff", Disks: doms[0].Disks}})
	ok := func(agentapi.Task) agentapi.TaskStatus {
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded}
	}
	b.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if req.Command == agentapi.KindRestoreHere {
			b.SetDomains([]agentapi.Domain{{UUID: vmID, Name: "web", State: "running", Disks: doms[0].Disks}})
		}
		return ok(req)
	}
	e.agent.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if req.Command == agentapi.KindUndefine {
			e.agent.SetDomains(nil)
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Result: agentapi.UndefineResult{Undefined: true}}
		}
		return ok(req)
	}
	if err := e.st.RecordVMMove(ctx, store.VMMove{VMID: vmID, FromHost: e.vm.HostID, ToHost: hb.ID, BackupID: bk.ID, Quick: true, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// While the move is recorded, host A's inventory does not pull the VM back.
	if err := e.svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	e.svc.Recovery.Reconcile(ctx)
	vm, _ := e.st.VM(ctx, vmID)
	if vm.HostID != hb.ID || vm.WorkState != "" || vm.LastError != "" {
		t.Fatalf("vm after roll-forward: %+v", vm)
	}
	if moves, _ := e.st.VMMoves(ctx); len(moves) != 0 {
		t.Fatalf("move left after roll-forward: %+v", moves)
	}
	if !strings.Contains(strings.Join(b.Started, ","), agentapi.KindRestoreHere) || !strings.Contains(strings.Join(e.agent.Started, ","), agentapi.KindUndefine) {
		t.Fatalf("tasks: target %v, source %v", b.Started, e.agent.Started)
	}
	if err := e.svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	if vm, _ := e.st.VM(ctx, vmID); vm.HostID != hb.ID || vm.State != domain.VMRunning {
		t.Fatalf("vm after the next inventory: %+v", vm)
	}
}
