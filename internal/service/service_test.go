package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/config"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
)

const vmID = "11111111-2222-4333-8444-555555555555"

type env struct {
	svc   *service.Service
	st    store.Store
	agent *agenttest.Fake
	admin domain.Principal
	vm    domain.VM
}

func newEnv(t *testing.T, backing string) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(st, clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	acc, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := agentapi.Disk{Target: "vda", Device: "disk", SourceType: "file", Source: "/img/vda.qcow2", Format: "qcow2", VirtualSize: 1 << 20}
	if backing != "" {
		disk.BackingChain = []agentapi.Layer{{Path: backing, Format: "qcow2"}}
	}
	fake := &agenttest.Fake{
		Report:  agentapi.HostReport{Name: "localhost", StoragePath: "/st"},
		Domains: []agentapi.Domain{{UUID: vmID, Name: "web", State: "running", Disks: []agentapi.Disk{disk}}},
	}
	if _, err := svc.Hosts.RegisterHost(ctx, "default", fake, true); err != nil {
		t.Fatal(err)
	}
	if err := svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Storages.EnsureDefaultStorage(ctx, "default", "/st"); err != nil {
		t.Fatal(err)
	}
	admin := domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: domain.RoleAdmin}
	o, err := svc.Offerings.CreateOffering(ctx, admin, domain.OfferingSpec{Name: "o"})
	if err != nil {
		t.Fatal(err)
	}
	vm, err := svc.VMs.AssignVM(ctx, admin, "web", o.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, st: st, agent: fake, admin: admin, vm: vm}
}

func waitOp(t *testing.T, e *env, op domain.Operation) domain.Operation {
	t.Helper()
	e.svc.Kernel.Wait()
	got, err := e.svc.Kernel.Operation(context.Background(), e.admin, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A second operation on a busy VM is refused with a clear message.
func TestOneOperationPerVM(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	if err := e.st.AcquireVM(ctx, vmID, "a restore (started now)"); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "busy with a restore") {
		t.Fatalf("backup of a busy VM: %v", err)
	}
	if list, _ := e.st.ListBackups(ctx, store.BackupFilter{}); len(list) != 0 {
		t.Fatalf("a refused backup left a record: %+v", list)
	}
}

// knib.timeout bounds a backup: the backup becomes Error, recovery runs at
// once and the VM comes back with its chain ended.
func TestBackupTimeoutIsRecovered(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	if _, err := e.svc.Config.SetSetting(ctx, e.admin, "knib.timeout", "1", config.ScopeRef{}); err != nil {
		t.Fatal(err)
	}
	e.agent.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if req.Command == agentapi.KindTakeBackup {
			return agentapi.TaskStatus{State: agentapi.TaskRunning, Message: "copying"} // never ends
		}
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded}
	}
	op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	op = waitOp(t, e, op)
	if op.State != domain.OpFailed || !strings.Contains(op.Error, "knib.timeout") {
		t.Fatalf("operation: %+v", op)
	}
	list, _ := e.st.ListBackups(ctx, store.BackupFilter{})
	if len(list) != 1 || list[0].Status != domain.BackupError {
		t.Fatalf("backup after a timeout: %+v", list)
	}
	vm, _ := e.st.VM(ctx, vmID)
	if vm.WorkState != "" || vm.Busy != "" || vm.ChainHead != "" {
		t.Fatalf("VM after recovery: %+v", vm)
	}
	if got := strings.Join(e.agent.Started, ","); got != "backup.take,vm.reconcile" {
		t.Fatalf("tasks: %s", got)
	}
}

// A VM running on backup files (quick restore not consolidated) may not be
// backed up, and those backups may not be deleted.
func TestDependencyOnBackupFilesIsGuarded(t *testing.T) {
	bid := "22222222-2222-4333-8444-555555555555"
	dir := "backups/" + vmID + "/" + bid
	e := newEnv(t, "/st/"+dir+"/vda.qcow2")
	ctx := context.Background()
	now := time.Now()
	b := domain.Backup{ID: bid, VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, HostID: e.vm.HostID, Type: domain.BackupFull,
		Position: 1, Status: domain.BackupBackedUp, Dir: dir, Created: now, Updated: now, StorageID: defaultStorage(t, e)}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "consolidate") {
		t.Fatalf("backup of a VM on backup files: %v", err)
	}
	_, err = e.svc.Backups.DeleteBackups(ctx, e.admin, []string{bid}, false)
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "web") {
		t.Fatalf("deleting the files a VM runs on: %v", err)
	}
	if got, _ := e.st.Backup(ctx, bid); got.Status != domain.BackupBackedUp {
		t.Fatalf("a refused deletion changed the backup: %+v", got)
	}
}

// defaultStorage is the id of the env's default backup storage.
func defaultStorage(t *testing.T, e *env) string {
	t.Helper()
	st, err := e.st.Storage(context.Background(), domain.DefaultStorageName)
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}
