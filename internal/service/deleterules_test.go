package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// The specification's deletion rules: a backup being validated is not
// deleted (the validation VM's overlays read its files); an Error backup
// is not deleted while its VM is in BackupError; a deletion whose files
// cannot be deleted makes the backup Error unless --forced, and deleting
// it again deletes its files and the removed ancestors it held.
func TestDeletionRulesOfTheSpecification(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	st := defaultStorage(t, e)
	now := time.Now()
	mk := func(id, parent string, pos int, status domain.BackupStatus) domain.Backup {
		t.Helper()
		typ := domain.BackupFull
		if parent != "" {
			typ = domain.BackupIncremental
		}
		dir := "backups/" + vmID + "/" + id
		b := domain.Backup{ID: id, ParentID: parent, VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, HostID: e.vm.HostID, Type: typ,
			Position: pos, Status: status, Dir: dir, Created: now.Add(time.Duration(pos) * time.Minute), Updated: now, StorageID: st}
		if err := e.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Files = []domain.BackupFile{{Disk: "vda", Path: dir + "/vda.qcow2", Full: parent == "", Size: 1, Hash: "xxh3-128:00"}}
		if err := e.st.SaveBackup(ctx, b, nil); err != nil {
			t.Fatal(err)
		}
		return b
	}
	status := func(id string) domain.Backup {
		t.Helper()
		b, err := e.st.Backup(ctx, id)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			t.Fatal(err)
		}
		if errors.Is(err, domain.ErrNotFound) {
			b.Status = domain.BackupExpunged
		}
		return b
	}
	del := func(forced bool, ids ...string) (domain.Operation, error) {
		t.Helper()
		op, err := e.svc.Backups.DeleteBackups(ctx, e.admin, ids, forced)
		if err == nil {
			op = waitOp(t, e, op)
		}
		return op, err
	}
	var deleted [][]string
	failDelete := true
	e.agent.Task = func(task agentapi.Task) agentapi.TaskStatus {
		if req, ok := task.Request.(agentapi.DeleteFilesRequest); ok {
			deleted = append(deleted, req.Dirs)
			if failDelete {
				return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "remove backups/x: read-only file system"}
			}
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: agentapi.DeleteFilesResult{Removed: req.Dirs}}
		}
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100}
	}

	// 1. Being validated: refused, nothing changes.
	b1 := mk("a0000000-0000-4000-8000-000000000001", "", 1, domain.BackupBackedUp)
	if err := e.st.SetValidation(ctx, b1.ID, domain.Validating, "", nil, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := del(false, b1.ID); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "validated") {
		t.Fatalf("deleting a backup being validated: %v", err)
	}
	if got := status(b1.ID); got.Status != domain.BackupBackedUp || len(deleted) != 0 {
		t.Fatalf("a refused deletion changed something: %+v, deleted %v", got, deleted)
	}
	if err := e.st.SetValidation(ctx, b1.ID, domain.Valid, "", nil, false, nil); err != nil {
		t.Fatal(err)
	}

	// 2. b1 <- b2 <- b3: b2 is marked Removed; deleting b3 fails on the
	// files: b3 becomes Error with the reason, b2 stays Removed, and
	// nothing leaves the catalogue.
	b2 := mk("a0000000-0000-4000-8000-000000000002", b1.ID, 2, domain.BackupBackedUp)
	b3 := mk("a0000000-0000-4000-8000-000000000003", b2.ID, 3, domain.BackupBackedUp)
	if op, err := del(false, b2.ID); err != nil || op.State != domain.OpSucceeded || status(b2.ID).Status != domain.BackupRemoved {
		t.Fatalf("delete b2: %+v %v %+v", op, err, status(b2.ID))
	}
	op, err := del(false, b3.ID)
	if err != nil || op.State != domain.OpFailed || !strings.Contains(op.Error, "read-only") {
		t.Fatalf("a failed deletion: %+v %v", op, err)
	}
	if got := status(b3.ID); got.Status != domain.BackupError || !strings.Contains(got.Error, "read-only") || len(got.Files) == 0 {
		t.Fatalf("after a failed deletion b3 is %+v, want Error with its files", got)
	}
	if got := status(b2.ID); got.Status != domain.BackupRemoved {
		t.Fatalf("after a failed deletion b2 is %s, want Removed", got.Status)
	}

	// 3. While the VM is in BackupError, its Error backup is not deleted.
	if err := e.st.SetVMWorkState(ctx, vmID, domain.VMBackupError); err != nil {
		t.Fatal(err)
	}
	if _, err := del(false, b3.ID); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "BackupError") {
		t.Fatalf("deleting an Error backup of a VM in BackupError: %v", err)
	}
	if err := e.st.SetVMWorkState(ctx, vmID, ""); err != nil {
		t.Fatal(err)
	}

	// 4. Deleting it again deletes its files and b2's, and both leave.
	failDelete, deleted = false, nil
	if op, err := del(false, b3.ID); err != nil || op.State != domain.OpSucceeded {
		t.Fatalf("deleting the Error backup again: %+v %v", op, err)
	}
	if len(deleted) != 1 || strings.Join(deleted[0], " ") != b3.Dir+" "+b2.Dir {
		t.Fatalf("deleted directories %v, want b3's and b2's", deleted)
	}
	if status(b3.ID).Status != domain.BackupExpunged || status(b2.ID).Status != domain.BackupExpunged || status(b1.ID).Status != domain.BackupBackedUp {
		t.Fatalf("after the retry: b1 %s b2 %s b3 %s", status(b1.ID).Status, status(b2.ID).Status, status(b3.ID).Status)
	}

	// 5. --forced: the files can't be deleted, the backup leaves anyway.
	failDelete = true
	if op, err := del(true, b1.ID); err != nil || op.State != domain.OpSucceeded || status(b1.ID).Status != domain.BackupExpunged {
		t.Fatalf("forced deletion: %+v %v %+v", op, err, status(b1.ID))
	}
}
