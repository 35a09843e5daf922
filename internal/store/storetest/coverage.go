package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// testEveryMethod exercises the methods (and filters) the other tests leave
// out, so that every statement runs on every engine.
func testEveryMethod(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)

	// Accounts, zones, hosts.
	must(t, s.CreateAccount(ctx, domain.Account{ID: domain.NewID(), Name: "bob", Created: t0}))
	accs, err := s.ListAccounts(ctx)
	must(t, err)
	if len(accs) != 2 || accs[0].Name != "admin" || accs[1].Name != "bob" || !accs[1].Created.Equal(t0) {
		t.Fatalf("accounts: %+v", accs)
	}
	z2, err := s.EnsureZone(ctx, "east")
	must(t, err)
	if again, _ := s.EnsureZone(ctx, "east"); again.ID != z2.ID {
		t.Fatalf("EnsureZone twice: %s then %s", z2.ID, again.ID)
	}
	if byID, err := s.Zone(ctx, z2.ID); err != nil || byID.Name != "east" {
		t.Fatalf("zone by id: %+v %v", byID, err)
	}
	_, err = s.Zone(ctx, "west")
	wantErr(t, err, domain.ErrNotFound)
	zones, err := s.ListZones(ctx)
	must(t, err)
	if len(zones) != 2 || zones[0].Name != "default" || zones[1].Name != "east" {
		t.Fatalf("zones: %+v", zones)
	}
	h2, err := s.UpsertHost(ctx, domain.Host{Name: "kvm2", ZoneID: z2.ID, URI: "qemu+tls://kvm2/system", CPUs: 8,
		MemoryBytes: 1 << 40, StorageCapacity: 1 << 42, StorageFree: 1 << 41, LastSeen: t0, StoragePath: "/mnt/b"})
	must(t, err)
	// An update keeps the id; sizes above 2^31 survive.
	h2b, err := s.UpsertHost(ctx, domain.Host{Name: "kvm2", ZoneID: z2.ID, URI: "qemu+tls://kvm2/system", CPUs: 16,
		MemoryBytes: 1 << 40, StorageCapacity: 1 << 42, StorageFree: 1 << 40, LastSeen: t0.Add(time.Minute), StoragePath: "/mnt/b"})
	must(t, err)
	if h2b.ID != h2.ID || h2b.CPUs != 16 || h2b.StorageFree != 1<<40 || h2b.MemoryBytes != 1<<40 || !h2b.Enabled || h2b.Local ||
		h2b.StoragePath != "/mnt/b" || !h2b.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("host update: %+v", h2b)
	}
	hosts, err := s.ListHosts(ctx)
	must(t, err)
	if len(hosts) != 2 || hosts[0].Name != "kvm2" || hosts[1].Name != "localhost" {
		t.Fatalf("hosts: %+v", hosts)
	}
	_, err = s.Host(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)

	// Offerings: the remaining filters.
	o, err := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "silver", Validate: true, AllowExtractFile: true}, t0)
	must(t, err)
	must(t, s.CreateOffering(ctx, o))
	for _, f := range []store.OfferingFilter{{ID: o.ID}, {Validate: true}, {AllowExtractFile: true}} {
		list, err := s.ListOfferings(ctx, f)
		must(t, err)
		if len(list) != 1 || list[0].ID != o.ID || list[0].BackupChainSize != nil {
			t.Fatalf("offerings %+v: %+v", f, list)
		}
	}

	// VMs on two hosts; errors recorded and cleared.
	v1 := domain.VM{ID: domain.NewID(), Name: "v1", State: domain.VMRunning}
	v2 := domain.VM{ID: domain.NewID(), Name: "v2", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{v1}, acc.ID, t0))
	must(t, s.SyncHostVMs(ctx, h2.ID, []domain.VM{v2}, acc.ID, t0))
	onH2, err := s.ListVMs(ctx, store.VMFilter{HostID: h2.ID})
	must(t, err)
	if len(onH2) != 1 || onH2[0].ID != v2.ID {
		t.Fatalf("host filter: %+v", onH2)
	}
	must(t, s.SetVMError(ctx, v1.ID, "chain broken"))
	if got, _ := s.VM(ctx, v1.ID); got.LastError != "chain broken" || got.OfferingID != "" {
		t.Fatalf("vm error: %+v", got)
	}
	must(t, s.SetVMError(ctx, v1.ID, ""))
	wantErr(t, s.SetVMError(ctx, "nope", "x"), domain.ErrNotFound)
	wantErr(t, s.SetVMWorkState(ctx, "nope", domain.VMBackingUp), domain.ErrNotFound)
	wantErr(t, s.SetVMOffering(ctx, "nope", ""), domain.ErrNotFound)
	must(t, s.SetVMOffering(ctx, v1.ID, o.ID))
	if got, _ := s.VM(ctx, v1.ID); got.OfferingID != o.ID {
		t.Fatalf("vm offering: %+v", got)
	}
	if d, err := s.VMDetails(ctx, v2.ID); err != nil || len(d) != 0 {
		t.Fatalf("no details: %v %v", d, err)
	}
	must(t, s.SetVMDetail(ctx, v2.ID, "k", "v"))
	must(t, s.DeleteVMDetail(ctx, v2.ID, "k"))
	if d, _ := s.VMDetails(ctx, v2.ID); len(d) != 0 {
		t.Fatalf("deleted detail still there: %v", d)
	}
	// A name on two hosts: the VM still defined wins over a Missing one;
	// two defined ones make the name ambiguous.
	twinA := domain.VM{ID: domain.NewID(), Name: "twin", State: domain.VMRunning}
	twinB := domain.VM{ID: domain.NewID(), Name: "twin", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{v1, twinA}, acc.ID, t0))
	must(t, s.SyncHostVMs(ctx, h2.ID, []domain.VM{v2, twinB}, acc.ID, t0))
	_, err = s.VM(ctx, "twin")
	wantErr(t, err, domain.ErrConflict)
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{v1}, acc.ID, t0.Add(time.Minute))) // twinA goes Missing
	if got, err := s.VM(ctx, "twin"); err != nil || got.ID != twinB.ID {
		t.Fatalf("the defined twin: %+v %v", got, err)
	}
	if got, err := s.VM(ctx, twinA.ID); err != nil || got.State != domain.VMMissing {
		t.Fatalf("the missing twin by id: %+v %v", got, err)
	}

	// Backups: status, compression, validation, end of chain, filters.
	b := domain.Backup{ID: domain.NewID(), VMID: v1.ID, VMName: "v1", AccountID: acc.ID, OfferingID: o.ID, HostID: h.ID,
		Type: domain.BackupFull, Position: 1, Status: domain.BackupBackingUp, Dir: "backups/v1/b", Isolated: true,
		ScheduleID: "sched1", Created: t0, Updated: t0}
	must(t, s.CreateBackup(ctx, b))
	b.Status, b.Size, b.VirtualSize = domain.BackupBackedUp, 5<<30, 10<<30
	b.Files = []domain.BackupFile{{Disk: "vda", Path: "backups/v1/b/vda.qcow2", Full: true, Size: 5 << 30, VirtualSize: 10 << 30},
		{Disk: "vdb", Path: "backups/v1/b/vdb.qcow2", Full: true, Size: 1, VirtualSize: 2}}
	must(t, s.SaveBackup(ctx, b, nil))
	wantErr(t, s.SaveBackup(ctx, domain.Backup{ID: "nope"}, nil), domain.ErrNotFound)
	must(t, s.SetCompression(ctx, b.ID, domain.Compressing, 0, 0, nil))
	must(t, s.SetCompression(ctx, b.ID, domain.Compressed, 3<<30, 5<<30,
		[]domain.BackupFile{{Disk: "vda", Size: 3 << 30, Hash: "h-vda"}}))
	wantErr(t, s.SetCompression(ctx, "nope", domain.Compressed, 0, 0, nil), domain.ErrNotFound)
	must(t, s.SetValidation(ctx, b.ID, domain.Valid, "booted", nil, true, map[string]string{"vdb": "h-vdb"}))
	steps := []domain.ValidationStepRun{{Step: domain.StepWaitForBoot, Outcome: domain.StepPassed},
		{Step: domain.StepExecuteCommand, Outcome: domain.StepSkipped, Detail: "no command"}}
	must(t, s.SetValidation(ctx, b.ID, domain.Valid, "again", steps, false, nil)) // the screenshot stays
	wantErr(t, s.SetValidation(ctx, "nope", domain.Valid, "", nil, false, nil), domain.ErrNotFound)
	must(t, s.MarkEndOfChain(ctx, b.ID))
	must(t, s.SetBackupStatus(ctx, b.ID, domain.BackupRemoved, t0.Add(time.Hour)))
	wantErr(t, s.SetBackupStatus(ctx, "nope", domain.BackupRemoved, t0), domain.ErrNotFound)
	got, err := s.Backup(ctx, b.ID)
	must(t, err)
	if got.Status != domain.BackupRemoved || !got.Updated.Equal(t0.Add(time.Hour)) || got.CompressionStatus != domain.Compressed ||
		got.Size != 3<<30 || got.UncompressedSize != 5<<30 || got.VirtualSize != 10<<30 || got.ValidationStatus != domain.Valid ||
		got.ValidationReason != "again" || !got.HasScreenshot || !got.EndOfChain || !got.Isolated || got.ScheduleID != "sched1" ||
		got.OfferingID != o.ID || got.HostID != h.ID || len(got.Files) != 2 ||
		got.Files[0].Size != 3<<30 || got.Files[0].Hash != "h-vda" || got.Files[1].Hash != "h-vdb" || got.Files[1].Size != 1 ||
		!slices.Equal(got.ValidationSteps, steps) {
		t.Fatalf("backup after the field updates: %+v", got)
	}
	// A new verdict replaces the steps; nil records none.
	must(t, s.SetValidation(ctx, b.ID, domain.UnableToValidate, "gone", nil, false, nil))
	if got, err := s.Backup(ctx, b.ID); err != nil || got.ValidationSteps != nil || got.ValidationReason != "gone" {
		t.Fatalf("steps after a verdict without steps: %+v, %v", got.ValidationSteps, err)
	}
	must(t, s.SetValidation(ctx, b.ID, domain.Valid, "again", steps, false, nil))
	b2 := domain.Backup{ID: domain.NewID(), VMID: v2.ID, VMName: "v2", AccountID: "other", Type: domain.BackupFull, Position: 1,
		Status: domain.BackupBackedUp, Dir: "backups/v2/b", Created: t0.Add(time.Second), Updated: t0}
	must(t, s.CreateBackup(ctx, b2))
	for _, c := range []struct {
		f    store.BackupFilter
		want string
	}{{store.BackupFilter{Status: domain.BackupRemoved}, b.ID}, {store.BackupFilter{AccountID: "other"}, b2.ID}, {store.BackupFilter{VMID: v2.ID}, b2.ID}} {
		list, err := s.ListBackups(ctx, c.f)
		must(t, err)
		if len(list) != 1 || list[0].ID != c.want {
			t.Fatalf("backups %+v: %+v", c.f, list)
		}
	}
	if all, _ := s.ListBackups(ctx, store.BackupFilter{}); len(all) != 2 || all[0].ID != b.ID {
		t.Fatalf("all backups oldest first: %+v", all)
	}
	_, err = s.Chain(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	wantErr(t, s.SetChain(ctx, "nope", store.Chain{}), domain.ErrNotFound)

	// Snapshots.
	sn := domain.Snapshot{ID: domain.NewID(), VMID: v1.ID, Name: "before-upgrade", Status: domain.SnapshotReady,
		Files: []domain.SnapshotFile{{Disk: "vda", Frozen: "/a.qcow2"}}, Created: t0}
	must(t, s.SaveSnapshot(ctx, sn))
	sn.Status = domain.SnapshotRemoved
	must(t, s.SaveSnapshot(ctx, sn))
	must(t, s.SaveSnapshot(ctx, domain.Snapshot{ID: domain.NewID(), VMID: v1.ID, Name: "later", Status: domain.SnapshotReady, Created: t0.Add(time.Minute)}))
	gs, err := s.Snapshot(ctx, sn.ID)
	must(t, err)
	if gs.Status != domain.SnapshotRemoved || len(gs.Files) != 1 || gs.Files[0].Frozen != "/a.qcow2" || !gs.Created.Equal(t0) {
		t.Fatalf("snapshot: %+v", gs)
	}
	sns, err := s.Snapshots(ctx, v1.ID)
	must(t, err)
	if len(sns) != 2 || sns[0].ID != sn.ID || sns[1].Name != "later" {
		t.Fatalf("snapshots: %+v", sns)
	}
	must(t, s.DeleteSnapshot(ctx, sn.ID))
	wantErr(t, s.DeleteSnapshot(ctx, sn.ID), domain.ErrNotFound)
	_, err = s.Snapshot(ctx, sn.ID)
	wantErr(t, err, domain.ErrNotFound)

	// Schedules.
	sc := domain.Schedule{ID: domain.NewID(), VMID: v1.ID, Interval: "daily", At: "02:30", Timezone: "Europe/Paris", MaxBackups: 7,
		NextRun: t0.Add(time.Hour), Created: t0}
	must(t, s.SaveSchedule(ctx, sc))
	sc.MaxBackups, sc.Isolated = 3, true
	must(t, s.SaveSchedule(ctx, sc))
	must(t, s.SaveSchedule(ctx, domain.Schedule{ID: domain.NewID(), VMID: v2.ID, Interval: "hourly", At: "15", NextRun: t0, Created: t0.Add(time.Second)}))
	gsc, err := s.Schedule(ctx, sc.ID)
	must(t, err)
	if gsc.MaxBackups != 3 || !gsc.Isolated || gsc.Interval != "daily" || gsc.At != "02:30" || gsc.Timezone != "Europe/Paris" || !gsc.NextRun.Equal(t0.Add(time.Hour)) {
		t.Fatalf("schedule: %+v", gsc)
	}
	if mine, _ := s.Schedules(ctx, v1.ID); len(mine) != 1 || mine[0].ID != sc.ID {
		t.Fatalf("schedules of v1: %+v", mine)
	}
	if all, _ := s.Schedules(ctx, ""); len(all) != 2 {
		t.Fatalf("all schedules: %+v", all)
	}
	if ok, err := s.AdvanceSchedule(ctx, sc.ID, t0, t0.Add(2*time.Hour)); ok || err != nil {
		t.Fatalf("advanced from a stale next run: %v %v", ok, err)
	}
	must(t, s.DeleteSchedule(ctx, sc.ID))
	wantErr(t, s.DeleteSchedule(ctx, sc.ID), domain.ErrNotFound)
	_, err = s.Schedule(ctx, sc.ID)
	wantErr(t, err, domain.ErrNotFound)

	// Jobs: a dead runner's job is reaped once its lease ran out; filters.
	j := jobs.Job{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: b.ID, VMID: v1.ID, ZoneID: "z1", State: jobs.Queued, Scheduled: t0}
	must(t, s.EnqueueJob(ctx, j))
	if ok, _ := s.ClaimJob(ctx, j.ID, "dead", h.ID, t0, t0.Add(time.Minute)); !ok {
		t.Fatal("claim")
	}
	retry := jobs.Outcome{State: jobs.Queued, Scheduled: t0.Add(5 * time.Minute)}
	if ok, err := s.ReapJob(ctx, j.ID, t0.Add(30*time.Second), retry, "lost"); ok || err != nil {
		t.Fatalf("reaped a job whose lease still runs: %v %v", ok, err)
	}
	for _, f := range []store.JobFilter{{ID: j.ID}, {BackupID: b.ID}, {HostID: h.ID}, {ZoneID: "z1"}} {
		list, err := s.Jobs(ctx, f)
		must(t, err)
		if len(list) != 1 || list[0].ID != j.ID {
			t.Fatalf("jobs %+v: %+v", f, list)
		}
	}
	if ok, err := s.ReapJob(ctx, j.ID, t0.Add(2*time.Minute), retry, "lost"); !ok || err != nil {
		t.Fatalf("reap: %v %v", ok, err)
	}
	gj, err := s.Job(ctx, j.ID)
	must(t, err)
	if gj.State != jobs.Queued || gj.HostID != "" || gj.LeaseOwner != "" || !gj.LeaseUntil.IsZero() || gj.LastError != "lost" ||
		!gj.Scheduled.Equal(t0.Add(5*time.Minute)) || !gj.Ended.Equal(t0.Add(2*time.Minute)) || gj.Attempts != 1 {
		t.Fatalf("reaped job: %+v", gj)
	}
	if ok, _ := s.ClaimJob(ctx, j.ID, "srv", h.ID, t0.Add(5*time.Minute), t0.Add(6*time.Minute)); !ok {
		t.Fatal("claim after reap")
	}
	if ok, _ := s.FinishJob(ctx, j.ID, "srv", jobs.Outcome{State: jobs.Failed, Attempts: 2}, "boom", t0.Add(6*time.Minute)); !ok {
		t.Fatal("finish")
	}
	gj, _ = s.Job(ctx, j.ID)
	if gj.State != jobs.Failed || gj.Attempts != 2 || gj.HostID != h.ID || gj.LastError != "boom" {
		t.Fatalf("failed job: %+v", gj)
	}
	if open, _ := s.Jobs(ctx, store.JobFilter{ID: j.ID}); len(open) != 0 {
		t.Fatalf("a finished job is listed without All: %+v", open)
	}
	_, err = s.Job(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	wantErr(t, s.UpdateOperation(ctx, domain.Operation{ID: "nope"}), domain.ErrNotFound)
}
