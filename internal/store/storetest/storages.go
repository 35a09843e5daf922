package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

func testStorages(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	z, err := s.Zone(ctx, h.ZoneID)
	must(t, err)
	z2, err := s.EnsureZone(ctx, "east")
	must(t, err)

	a := domain.Storage{ID: domain.NewID(), Name: "nfs-a", ZoneID: z.ID, Path: "/mnt/a", Tag: "fast", Enabled: true, Created: t0}
	must(t, s.CreateStorage(ctx, a))
	b := domain.Storage{ID: domain.NewID(), Name: "nfs-b", ZoneID: z.ID, Path: "/mnt/b", Enabled: true, Created: t0}
	must(t, s.CreateStorage(ctx, b))
	// Same path in another zone is another storage; same name or same path
	// in the same zone is refused.
	must(t, s.CreateStorage(ctx, domain.Storage{ID: domain.NewID(), Name: "east-a", ZoneID: z2.ID, Path: "/mnt/a", Enabled: true, Created: t0}))
	wantErr(t, s.CreateStorage(ctx, domain.Storage{ID: domain.NewID(), Name: "nfs-a", ZoneID: z2.ID, Path: "/mnt/x", Created: t0}), domain.ErrConflict)
	wantErr(t, s.CreateStorage(ctx, domain.Storage{ID: domain.NewID(), Name: "other", ZoneID: z.ID, Path: "/mnt/b", Created: t0}), domain.ErrConflict)

	got, err := s.Storage(ctx, "nfs-a")
	must(t, err)
	if got.ID != a.ID || got.Path != "/mnt/a" || got.Tag != "fast" || !got.Enabled || !got.Created.Equal(t0) || got.Used != 0 || !got.Measured.IsZero() {
		t.Fatalf("storage round trip: %+v", got)
	}
	if byID, err := s.Storage(ctx, a.ID); err != nil || byID.Name != "nfs-a" {
		t.Fatalf("storage by id: %+v %v", byID, err)
	}
	_, err = s.Storage(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)

	list, err := s.ListStorages(ctx, z.ID)
	must(t, err)
	if len(list) != 2 || list[0].Name != "nfs-a" || list[1].Name != "nfs-b" {
		t.Fatalf("storages of the zone: %+v", list)
	}
	all, err := s.ListStorages(ctx, "")
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("all storages: %d", len(all))
	}

	must(t, s.SetStorageEnabled(ctx, b.ID, false))
	t1 := t0.Add(time.Minute)
	must(t, s.SetStorageCapacity(ctx, b.ID, 1000, 400, t1))
	got, err = s.Storage(ctx, b.ID)
	must(t, err)
	if got.Enabled || got.Capacity != 1000 || got.Free != 400 || !got.Measured.Equal(t1) {
		t.Fatalf("disable and measure: %+v", got)
	}
	wantErr(t, s.SetStorageEnabled(ctx, "nope", true), domain.ErrNotFound)

	// Backups: an old one without storage is adopted; Used counts live backups only.
	vm := domain.VM{ID: domain.NewID(), Name: "v", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{vm}, acc.ID, t0))
	old := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: "v", AccountID: acc.ID, Type: domain.BackupFull, Position: 1,
		Status: domain.BackupBackedUp, Size: 10, Dir: "backups/v/old", Created: t0, Updated: t0}
	must(t, s.CreateBackup(ctx, old))
	n, err := s.AdoptBackups(ctx, a.ID)
	must(t, err)
	if n != 1 {
		t.Fatalf("adopted %d backups, want 1", n)
	}
	if n, _ := s.AdoptBackups(ctx, b.ID); n != 0 {
		t.Fatalf("adopting twice moved %d backups", n)
	}
	failed := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: "v", AccountID: acc.ID, Type: domain.BackupFull, Position: 1,
		Status: domain.BackupFailed, Size: 5, StorageID: b.ID, Dir: "backups/v/failed", Created: t0, Updated: t0}
	must(t, s.CreateBackup(ctx, failed))
	if gb, _ := s.Backup(ctx, old.ID); gb.StorageID != a.ID {
		t.Fatalf("adopted backup names storage %q", gb.StorageID)
	}
	if gb, _ := s.Backup(ctx, failed.ID); gb.StorageID != b.ID {
		t.Fatalf("backup names storage %q, want %q", gb.StorageID, b.ID)
	}
	if used, err := s.StorageUsed(ctx, a.ID); err != nil || used != 10 {
		t.Fatalf("used of a: %d (%v), want 10", used, err)
	}
	if used, _ := s.StorageUsed(ctx, b.ID); used != 0 {
		t.Fatalf("used of b counts a failed backup: %d", used)
	}
	list, err = s.ListStorages(ctx, "")
	must(t, err)
	for _, st := range list {
		if want := map[bool]int64{true: 10}[st.ID == a.ID]; st.Used != want {
			t.Fatalf("storage list: %s used %d, want %d", st.Name, st.Used, want)
		}
	}
	_, err = s.StorageUsed(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)

	// Moves: recorded all or none, switched in one step, then forgotten.
	m := store.StorageMove{BackupID: old.ID, VMID: vm.ID, From: a.ID, To: b.ID, OperationID: "op", Created: t0}
	must(t, s.StartStorageMoves(ctx, []store.StorageMove{m}))
	wantErr(t, s.StartStorageMoves(ctx, []store.StorageMove{m}), domain.ErrConflict)
	moves, err := s.StorageMoves(ctx)
	must(t, err)
	if len(moves) != 1 || moves[0].State != store.MoveCopying || moves[0].From != a.ID || moves[0].To != b.ID || moves[0].OperationID != "op" {
		t.Fatalf("moves: %+v", moves)
	}
	wantErr(t, s.RemoveStorage(ctx, b.ID), domain.ErrConflict) // a move targets it
	must(t, s.SwitchStorageMoves(ctx, []string{old.ID}))
	if gb, _ := s.Backup(ctx, old.ID); gb.StorageID != b.ID {
		t.Fatalf("switched backup names storage %q", gb.StorageID)
	}
	moves, _ = s.StorageMoves(ctx)
	if len(moves) != 1 || moves[0].State != store.MoveSwitched {
		t.Fatalf("moves after switch: %+v", moves)
	}
	wantErr(t, s.SwitchStorageMoves(ctx, []string{"nope"}), domain.ErrNotFound)
	must(t, s.EndStorageMove(ctx, old.ID))
	if moves, _ := s.StorageMoves(ctx); len(moves) != 0 {
		t.Fatalf("moves after end: %+v", moves)
	}

	// Remove: refused while a live backup is on it; catalogue-only ones are detached.
	wantErr(t, s.RemoveStorage(ctx, b.ID), domain.ErrConflict)
	must(t, s.RemoveStorage(ctx, a.ID))
	_, err = s.Storage(ctx, a.ID)
	wantErr(t, err, domain.ErrNotFound)
	must(t, s.ExpungeBackup(ctx, old.ID))
	must(t, s.RemoveStorage(ctx, b.ID))
	if gb, _ := s.Backup(ctx, failed.ID); gb.StorageID != "" {
		t.Fatalf("a failed backup still names a removed storage: %q", gb.StorageID)
	}
	wantErr(t, s.RemoveStorage(ctx, b.ID), domain.ErrNotFound)

	// Offerings keep their storage tag.
	o, err := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "tagged", StorageTag: "fast"}, t0)
	must(t, err)
	must(t, s.CreateOffering(ctx, o))
	if got, _ := s.Offering(ctx, o.ID); got.StorageTag != "fast" {
		t.Fatalf("offering storage tag: %q", got.StorageTag)
	}
}
