package service_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/knib/knib/internal/agent"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	lv "github.com/knib/knib/internal/hypervisor/libvirt"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/schedules"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
	"github.com/knib/knib/internal/testbed"
)

// TestHourlyScheduleForADay drives a day of hourly backups of a real VM with
// --max-backups 5 through an injected clock: every due run happens exactly
// once, retention keeps five restorable backups and no orphan file, and a
// server that was down catches up once.
func TestHourlyScheduleForADay(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-sched", Start: true})
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	svc := service.New(st, clk, log)
	hv, err := lv.Open(ctx, "qemu:///system")
	if err != nil {
		t.Fatal(err)
	}
	defer hv.Close()
	storage := filepath.Join(dir, "storage")
	os.MkdirAll(storage, 0o755)
	ag := agent.NewLocal(agent.Config{Name: "localhost", StoragePath: storage}, hv, log)
	defer ag.Close()
	if _, err := svc.Hosts.RegisterHost(ctx, "default", ag, true); err != nil {
		t.Fatal(err)
	}
	if err := svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Storages.EnsureDefaultStorage(ctx, "default", storage); err != nil {
		t.Fatal(err)
	}
	acc, _ := svc.Kernel.EnsureAdmin(ctx)
	admin := domain.Principal{AccountID: acc.ID, Role: domain.RoleAdmin}
	off, err := svc.Offerings.CreateOffering(ctx, admin, domain.OfferingSpec{Name: "hourly"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.VMs.AssignVM(ctx, admin, dom.Name, off.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Schedules.CreateSchedule(ctx, admin, dom.Name, schedules.ScheduleSpec{Interval: "bi-hourly", At: "0"}); !domain.IsInvalid(err) {
		t.Fatalf("bad interval: %v", err)
	}
	sc, err := svc.Schedules.CreateSchedule(ctx, admin, dom.Name, schedules.ScheduleSpec{Interval: "hourly", At: "0", MaxBackups: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !sc.NextRun.Equal(time.Date(2030, 1, 1, 1, 0, 0, 0, time.UTC)) {
		t.Fatalf("next run: %v", sc.NextRun)
	}

	runDue := func() int {
		ops, err := svc.Schedules.RunSchedules(ctx)
		if err != nil {
			t.Fatal(err)
		}
		svc.Kernel.Wait()
		for _, op := range ops {
			got, _ := svc.Kernel.Operation(ctx, admin, op.ID)
			if got.State != domain.OpSucceeded {
				t.Fatalf("scheduled backup: %+v", got)
			}
		}
		return len(ops)
	}
	total := 0
	for h := 0; h < 24; h++ {
		clk.Advance(time.Hour)
		if n := runDue(); n != 1 {
			t.Fatalf("hour %d: %d backups started, want 1", h+1, n)
		}
		total++
		if n := runDue(); n != 0 { // the same due run never runs twice
			t.Fatalf("hour %d: a due run ran twice", h+1)
		}
	}
	all, err := st.ListBackups(ctx, store.BackupFilter{VMID: dom.UUID})
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	for _, b := range all {
		live[b.ID] = true
		if b.Status == domain.BackupBackedUp {
			for _, f := range b.Files {
				p := filepath.Join(storage, f.Path)
				if out, err := exec.Command("qemu-img", "check", "-q", p).CombinedOutput(); err != nil {
					t.Fatalf("backup %s: %v %s", b.ID, err, out)
				}
				if h, err := agent.HashFile(p); err != nil || h != f.Hash {
					t.Fatalf("backup %s: hash %s, recorded %s (%v)", b.ID, h, f.Hash, err)
				}
				if out, err := exec.Command("qemu-img", "convert", "-O", "raw", p, filepath.Join(dir, "x.raw")).CombinedOutput(); err != nil {
					t.Fatalf("backup %s does not read whole: %v %s", b.ID, err, out)
				}
			}
		}
	}
	kept := 0
	for _, b := range all {
		if b.Status == domain.BackupBackedUp {
			kept++
		}
	}
	if kept != 5 {
		t.Fatalf("%d backups kept, want 5 (of %d taken)", kept, total)
	}
	// No orphan file: every backup directory on storage is a backup in the
	// catalogue, and every Removed backup is still needed by a kept one.
	entries, _ := os.ReadDir(filepath.Join(storage, "backups", dom.UUID))
	for _, e := range entries {
		if !live[e.Name()] {
			t.Fatalf("orphan backup directory %s", e.Name())
		}
	}
	needed := map[string]bool{}
	for _, b := range all {
		if b.Status == domain.BackupBackedUp {
			for p := b.ParentID; p != ""; {
				needed[p] = true
				parent, err := st.Backup(ctx, p)
				if err != nil {
					break
				}
				p = parent.ParentID
			}
		}
	}
	for _, b := range all {
		if b.Status == domain.BackupRemoved && !needed[b.ID] {
			t.Fatalf("removed backup %s is kept though nothing needs it", b.ID)
		}
	}

	// Down for five hours: one catch-up run, then the plan goes on from now.
	clk.Advance(5 * time.Hour)
	if n := runDue(); n != 1 {
		t.Fatalf("catch-up after downtime: %d runs, want 1", n)
	}
	sc, _ = st.Schedule(ctx, sc.ID)
	if !sc.NextRun.Equal(time.Date(2030, 1, 2, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("next run after catch-up: %v", sc.NextRun)
	}
}
