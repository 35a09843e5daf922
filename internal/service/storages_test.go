package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/storages"
	"github.com/knib/knib/internal/store"
)

// A backup that would start a chain with no enabled storage in the VM's zone
// is refused at once (409) and records nothing.
func TestBackupWithoutStorageIsRefused(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	if _, err := e.svc.Storages.SetStorageEnabled(ctx, e.admin, domain.DefaultStorageName, false); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("backup with every storage disabled: %v", err)
	}
	if list, _ := e.st.ListBackups(ctx, store.BackupFilter{}); len(list) != 0 {
		t.Fatalf("a refused backup left a record: %+v", list)
	}
	if len(e.agent.Started) != 0 {
		t.Fatalf("a refused backup started agent tasks: %v", e.agent.Started)
	}
}

// The default storage is created once, and adopts backups recorded before
// storages existed.
func TestDefaultStorageIsIdempotent(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	first, err := e.st.Storage(ctx, domain.DefaultStorageName)
	if err != nil {
		t.Fatal(err)
	}
	old := domain.Backup{ID: domain.NewID(), VMID: vmID, VMName: "web", Type: domain.BackupFull, Position: 1,
		Status: domain.BackupBackedUp, Dir: "backups/" + vmID + "/old"}
	if err := e.st.CreateBackup(ctx, old); err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.Storages.EnsureDefaultStorage(ctx, "default", "/st")
	if err != nil || again.ID != first.ID {
		t.Fatalf("second start: %+v %v (first %s)", again, err, first.ID)
	}
	if b, _ := e.st.Backup(ctx, old.ID); b.StorageID != first.ID {
		t.Fatalf("old backup not adopted: %q", b.StorageID)
	}
	if all, _ := e.st.ListStorages(ctx, ""); len(all) != 1 {
		t.Fatalf("%d storages after two starts", len(all))
	}
}

// Bad storage input is refused before anything is asked of an agent.
func TestAddStorageValidates(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	for _, spec := range []struct{ path, zone, tag string }{
		{"relative/dir", "default", ""}, {"/mnt/../etc", "default", ""}, {"/mnt/x/", "default", ""},
		{"/mnt/x", "default", "bad tag"}, {"/mnt/x", "", ""},
	} {
		_, err := e.svc.Storages.AddStorage(ctx, e.admin, serviceStorageSpec(spec.zone, spec.path, spec.tag))
		if !domain.IsInvalid(err) {
			t.Errorf("%+v: got %v, want invalid input", spec, err)
		}
	}
	_, err := e.svc.Storages.AddStorage(ctx, e.admin, serviceStorageSpec("nozone", "/mnt/x", ""))
	if !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown zone: %v", err)
	}
	user := domain.Principal{AccountID: "u", Role: domain.RoleUser}
	if _, err := e.svc.Storages.AddStorage(ctx, user, serviceStorageSpec("default", "/mnt/x", "")); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("user adds a storage: %v", err)
	}
	if len(e.agent.Started) != 0 {
		t.Fatalf("refused input reached the agent: %v", e.agent.Started)
	}
}

func serviceStorageSpec(zone, path, tag string) storages.StorageSpec {
	return storages.StorageSpec{Zone: zone, Path: path, Tag: tag}
}

// A migration is refused, and records nothing, while a VM runs on the files
// (quick restore not consolidated) or a job works on them.
func TestMigrateRefusedWhileFilesAreInUse(t *testing.T) {
	bid := domain.NewID()
	e := newEnv(t, "/st/backups/"+vmID+"/"+bid+"/vda.qcow2")
	ctx := context.Background()
	def, err := e.st.Storage(ctx, domain.DefaultStorageName)
	if err != nil {
		t.Fatal(err)
	}
	other := domain.Storage{ID: domain.NewID(), Name: "other", ZoneID: def.ZoneID, Path: "/other", Enabled: true}
	if err := e.st.CreateStorage(ctx, other); err != nil {
		t.Fatal(err)
	}
	b := domain.Backup{ID: bid, VMID: vmID, VMName: "web", Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp,
		StorageID: def.ID, Dir: "backups/" + vmID + "/" + bid}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Storages.MigrateStorage(ctx, e.admin, "default", "other", "")
	if !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "still runs on its files") {
		t.Fatalf("migrate while a VM runs on the files: %v", err)
	}
	if moves, _ := e.st.StorageMoves(ctx); len(moves) != 0 {
		t.Fatalf("a refused migration recorded moves: %+v", moves)
	}
	if vm, _ := e.st.VM(ctx, vmID); vm.Busy != "" {
		t.Fatalf("a refused migration left the VM locked: %q", vm.Busy)
	}
	if _, err := e.svc.Storages.MigrateStorage(ctx, e.admin, "default", "default", ""); !domain.IsInvalid(err) {
		t.Fatalf("migrate to itself: %v", err)
	}
	if _, err := e.svc.Storages.MigrateStorage(ctx, e.admin, "default", "nope", ""); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("migrate to an unknown storage: %v", err)
	}
}

// A storage inside another, around another, or in a system directory is
// refused: the validation cleanup of one would remove the other's backups.
func TestAddStorageRefusesOverlaps(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	if _, err := e.svc.Storages.EnsureDefaultStorage(ctx, "default", "/var/tmp/knib-overlap/storage"); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/var/tmp/knib-overlap/storage", "/var/tmp/knib-overlap/storage/validation", "/var/tmp/knib-overlap",
		"/etc/knib", "/proc/self", "/usr", "/var"} {
		_, err := e.svc.Storages.AddStorage(ctx, e.admin, serviceStorageSpec("default", path, ""))
		if !domain.IsInvalid(err) {
			t.Errorf("storage at %s: got %v, want invalid input", path, err)
		}
	}
	if all, _ := e.st.ListStorages(ctx, ""); len(all) != 1 {
		t.Fatalf("refused paths added storages: %d", len(all))
	}
	if len(e.agent.Started) != 0 {
		t.Fatalf("refused input reached the agent: %v", e.agent.Started)
	}
}
