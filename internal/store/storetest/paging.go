package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// pages reads a whole list a page of n at a time and checks that it is the
// list read at once.
func pages[T any](t *testing.T, what string, n int, read func(store.Page) ([]T, error), cursor func(T) *store.Cursor, id func(T) string) {
	t.Helper()
	all, err := read(store.Page{})
	must(t, err)
	var got []string
	page := store.Page{Limit: n}
	for i := 0; ; i++ {
		list, err := read(page)
		must(t, err)
		if len(list) > n {
			t.Fatalf("%s: a page of %d holds %d", what, n, len(list))
		}
		for _, x := range list {
			got = append(got, id(x))
		}
		if len(list) < n {
			break
		}
		if i > len(all) {
			t.Fatalf("%s: paging does not end", what)
		}
		page.After = cursor(list[len(list)-1])
	}
	var want []string
	for _, x := range all {
		want = append(want, id(x))
	}
	if !slices.Equal(got, want) || len(want) < 2*n {
		t.Fatalf("%s: pages of %d give %v, the whole list %v", what, n, got, want)
	}
}

// testPaging checks keyset paging of every list, with ties on the sort key
// (the id breaks them) and filters.
func testPaging(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	var vms []domain.VM
	for i := range 7 {
		vms = append(vms, domain.VM{ID: domain.NewID(), Name: fmt.Sprintf("vm-%d", i%3), State: domain.VMRunning})
	}
	// Names repeat across hosts only; one host here, so give each a suffix.
	for i := range vms {
		vms[i].Name = fmt.Sprintf("%s-%d", vms[i].Name, i)
	}
	must(t, s.SyncHostVMs(ctx, h.ID, vms, acc.ID, t0))
	vmID := func(v domain.VM) string { return v.ID }
	pages(t, "VMs", 3, func(p store.Page) ([]domain.VM, error) { return s.ListVMs(ctx, store.VMFilter{Page: p}) }, store.VMCursor, vmID)
	pages(t, "VMs of an account", 2, func(p store.Page) ([]domain.VM, error) {
		return s.ListVMs(ctx, store.VMFilter{AccountID: acc.ID, Page: p})
	}, store.VMCursor, vmID)

	for i := range 9 {
		created := t0.Add(time.Duration(i/3) * time.Second) // three backups per instant
		b := domain.Backup{ID: domain.NewID(), VMID: vms[0].ID, VMName: vms[0].Name, AccountID: acc.ID, Type: domain.BackupFull, Position: 1,
			Status: domain.BackupBackedUp, Dir: fmt.Sprintf("backups/v/b%d", i), Created: created, Updated: created}
		must(t, s.CreateBackup(ctx, b))
		b.Files = []domain.BackupFile{{Disk: "vda", Path: b.Dir + "/vda.qcow2", Full: true, Size: int64(i)}}
		must(t, s.SaveBackup(ctx, b, nil))
	}
	backupID := func(b domain.Backup) string { return b.ID }
	for _, f := range []store.BackupFilter{{VMID: vms[0].ID}, {AccountID: acc.ID}, {}, {Status: domain.BackupBackedUp}} {
		pages(t, fmt.Sprintf("backups %+v", f), 2, func(p store.Page) ([]domain.Backup, error) {
			f := f
			f.Page = p
			list, err := s.ListBackups(ctx, f)
			for _, b := range list {
				if len(b.Files) != 1 || b.Files[0].Path != b.Dir+"/vda.qcow2" {
					t.Fatalf("backup %s listed with files %+v", b.ID, b.Files)
				}
			}
			return list, err
		}, store.BackupCursor, backupID)
	}

	for i := range 8 {
		j := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: "b", VMID: "v", ZoneID: "z", State: jobs.Queued,
			Scheduled: t0.Add(time.Duration(i/2) * time.Minute)}
		must(t, s.EnqueueJob(ctx, j))
	}
	jobID := func(j jobs.Job) string { return j.ID }
	pages(t, "jobs", 3, func(p store.Page) ([]jobs.Job, error) { return s.Jobs(ctx, store.JobFilter{Page: p}) }, store.JobCursor, jobID)
	pages(t, "due jobs", 2, func(p store.Page) ([]jobs.Job, error) {
		return s.Jobs(ctx, store.JobFilter{Due: true, Now: t0.Add(time.Hour), Page: p})
	}, store.JobCursor, jobID)
	due, err := s.Jobs(ctx, store.JobFilter{Due: true, Now: t0.Add(90 * time.Second)})
	must(t, err)
	if len(due) != 4 {
		t.Fatalf("due at t0+90s: %d jobs, want 4", len(due))
	}

	for i := range 7 {
		at := t0.Add(time.Duration(i/2) * time.Second)
		must(t, s.CreateOperation(ctx, domain.Operation{ID: domain.NewID(), Kind: "backup.create", State: domain.OpRunning, Created: at, Updated: at}))
	}
	opID := func(o domain.Operation) string { return o.ID }
	pages(t, "operations", 3, func(p store.Page) ([]domain.Operation, error) {
		return s.ListOperations(ctx, store.OperationFilter{Page: p})
	}, store.OperationCursor, opID)
	ops, err := s.ListOperations(ctx, store.OperationFilter{})
	must(t, err)
	for i := 1; i < len(ops); i++ {
		if ops[i].Created.After(ops[i-1].Created) {
			t.Fatalf("operations not newest first: %v after %v", ops[i].Created, ops[i-1].Created)
		}
	}

	// Due schedules: only those due, the most overdue first, bounded.
	for i, at := range []time.Duration{time.Hour, -time.Hour, 0} {
		must(t, s.SaveSchedule(ctx, domain.Schedule{ID: fmt.Sprintf("sched-%d", i), VMID: vms[0].ID, Interval: "daily", At: "02:00",
			Timezone: "UTC", NextRun: t0.Add(at), Created: t0}))
	}
	due2, err := s.DueSchedules(ctx, t0, 10)
	must(t, err)
	if len(due2) != 2 || due2[0].ID != "sched-1" || due2[1].ID != "sched-2" {
		t.Fatalf("due schedules: %+v", due2)
	}
	if one, err := s.DueSchedules(ctx, t0, 1); err != nil || len(one) != 1 || one[0].ID != "sched-1" {
		t.Fatalf("due schedules, limit 1: %+v %v", one, err)
	}

	hostOf, err := s.HostsOfVMs(ctx, []string{vms[0].ID, vms[1].ID, "nope"})
	must(t, err)
	if len(hostOf) != 2 || hostOf[vms[0].ID] != h.ID || hostOf[vms[1].ID] != h.ID {
		t.Fatalf("hosts of VMs: %v", hostOf)
	}

	// UsingPath finds the VMs that read a directory.
	vms[1].Disks = []domain.Disk{{Target: "vda", Source: "/var/lib/knib/storage/backups/x/vda.qcow2"}}
	must(t, s.SyncHostVMs(ctx, h.ID, vms, acc.ID, t0.Add(time.Minute)))
	using, err := s.ListVMs(ctx, store.VMFilter{UsingPath: "/var/lib/knib/storage/backups/x"})
	must(t, err)
	if len(using) != 1 || using[0].ID != vms[1].ID {
		t.Fatalf("VMs using a path: %+v", using)
	}
}
