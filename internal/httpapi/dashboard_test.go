package httpapi_test

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// GET /dashboard: every VM worst first with what needs a human, the
// storages for admins; a user sees only their own VMs and no storage.
func TestDashboard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin, err := e.svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var off map[string]any
	e.do(e.admin, "POST", "/offerings", `{"name":"gold"}`, 201, &off)
	e.do(e.admin, "POST", "/vms/web/assign", `{"offering_id":"`+off["id"].(string)+`"}`, 200, nil)
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	ok := domain.Backup{ID: "b0000000-0000-4000-8000-000000000001", VMID: blockUUID, VMName: "db", AccountID: admin.ID, Type: domain.BackupFull,
		Position: 1, Status: domain.BackupBackedUp, Size: 100, Dir: "backups/db/b1", Plan: "{}", Created: now, Updated: now}
	failed := ok
	failed.ID, failed.Status, failed.Size, failed.Created, failed.Dir = "b0000000-0000-4000-8000-000000000002", domain.BackupFailed, 0, now.Add(time.Hour), "backups/db/b2"
	for _, b := range []domain.Backup{ok, failed} {
		if err := e.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.SetValidation(ctx, ok.ID, domain.Valid, "", nil, false, nil); err != nil {
		t.Fatal(err)
	}
	st := addStorage(t, e, now)
	if err := e.st.SetStorageCapacity(ctx, st.ID, 1000, 50, now); err != nil {
		t.Fatal(err)
	}
	var d api.Dashboard
	e.do(e.admin, "GET", "/dashboard", "", 200, &d)
	if len(d.VMs) != 2 || d.VMs[0].Name != "db" || d.VMs[1].Name != "web" {
		t.Fatalf("dashboard rows: %+v", d.VMs)
	}
	db, web := d.VMs[0], d.VMs[1]
	if db.Severity != 3 || len(db.Attention) != 1 || db.Attention[0].What != "last backup Failed" || db.LastBackup == nil ||
		db.LastBackup.BackupID != failed.ID || db.Proven == nil || db.Proven.BackupID != ok.ID || db.Proven.How != "validation" ||
		db.LastGood == nil || !db.LastGood.Equal(now) || db.StoredBytes != 100 || db.Backups != 2 || db.Account != "admin" || db.Host != "localhost" {
		t.Fatalf("db's row: %+v", db)
	}
	if web.Severity != 2 || web.Offering != "gold" || web.Attention[0].What != "assigned, never backed up" || web.LastBackup != nil || web.Proven != nil {
		t.Fatalf("web's row: %+v", web)
	}
	if len(d.Storages) != 1 || d.Storages[0].Name != "nfs" || !d.Storages[0].Low || d.Storages[0].Free != 50 {
		t.Fatalf("an admin's dashboard lists the storages: %+v", d.Storages)
	}
	var mine api.Dashboard
	e.do(e.user, "GET", "/dashboard", "", 200, &mine)
	if len(mine.VMs) != 0 || len(mine.Storages) != 0 {
		t.Fatalf("a user's dashboard: %+v", mine)
	}
}

// POST /backups/delete/plan says what a deletion would do under the chain
// rules and changes nothing; it refuses what the deletion would refuse.
func TestDeletePlan(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin, err := e.svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	st := addStorage(t, e, now)
	full := domain.Backup{ID: "b0000000-0000-4000-8000-000000000001", VMID: vmUUID, VMName: "web", AccountID: admin.ID, Type: domain.BackupFull,
		Position: 1, Status: domain.BackupBackedUp, Dir: "backups/web/b1", Plan: "{}", Created: now, Updated: now, StorageID: st.ID}
	inc := full
	inc.ID, inc.Type, inc.Position, inc.ParentID, inc.Dir, inc.Created = "b0000000-0000-4000-8000-000000000002", domain.BackupIncremental, 2, full.ID, "backups/web/b2", now.Add(time.Hour)
	for _, b := range []domain.Backup{full, inc} {
		if err := e.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.SaveBackup(ctx, inc, &store.Chain{Head: inc.ID}); err != nil {
		t.Fatal(err)
	}
	var plan api.DeletePlan
	e.do(e.admin, "POST", "/backups/delete/plan", `{"ids":["`+full.ID+`"]}`, 200, &plan)
	if len(plan.VMs) != 1 || plan.VMs[0].VM != "web" || len(plan.VMs[0].MarkRemoved) != 1 || plan.VMs[0].MarkRemoved[0] != full.ID ||
		len(plan.VMs[0].Deleted) != 0 || plan.VMs[0].MergeHead {
		t.Fatalf("plan for the full backup: %+v", plan)
	}
	e.do(e.admin, "POST", "/backups/delete/plan", `{"ids":["`+inc.ID+`","`+full.ID+`"]}`, 200, &plan)
	if p := plan.VMs[0]; len(p.Deleted) != 2 || p.Deleted[0] != inc.ID || p.Deleted[1] != full.ID || !p.MergeHead || len(p.MarkRemoved) != 0 {
		t.Fatalf("plan for the whole chain: %+v", plan)
	}
	for _, b := range []domain.Backup{full, inc} {
		if got, err := e.st.Backup(ctx, b.ID); err != nil || got.Status != domain.BackupBackedUp {
			t.Fatalf("a plan changed backup %s: %+v %v", b.ID, got, err)
		}
	}
	e.do(e.admin, "POST", "/backups/delete/plan", `{"ids":[]}`, 400, nil)
	e.do(e.user, "POST", "/backups/delete/plan", `{"ids":["`+full.ID+`"]}`, 404, nil)
}

// addStorage records a backup storage "nfs" in the default zone.
func addStorage(t *testing.T, e *env, now time.Time) domain.Storage {
	t.Helper()
	z, err := e.st.EnsureZone(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	st := domain.Storage{ID: domain.NewID(), Name: "nfs", ZoneID: z.ID, Path: "/srv/nfs", Enabled: true, Created: now}
	if err := e.st.CreateStorage(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	return st
}
