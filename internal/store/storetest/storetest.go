// Package storetest is the conformance suite every store.Store must pass:
// the contract written in package store's documentation, as tests.
package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// Run runs the suite; open must return a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("Offerings", func(t *testing.T) { testOfferings(t, open(t)) })
	t.Run("VMs", func(t *testing.T) { testVMs(t, open(t)) })
	t.Run("SettingsAndDetails", func(t *testing.T) { testSettings(t, open(t)) })
	t.Run("TokensAndAccounts", func(t *testing.T) { testTokens(t, open(t)) })
	t.Run("Operations", func(t *testing.T) { testOperations(t, open(t)) })
	t.Run("BackupsAndChain", func(t *testing.T) { testBackups(t, open(t)) })
	t.Run("JobClaims", func(t *testing.T) { testJobs(t, open(t)) })
	t.Run("ConcurrentClaims", func(t *testing.T) { testConcurrentClaims(t, open(t)) })
	t.Run("EveryMethod", func(t *testing.T) { testEveryMethod(t, open(t)) })
	t.Run("VMMoves", func(t *testing.T) { RunMoves(t, open(t)) })
	t.Run("RemoteAgents", func(t *testing.T) { testAgents(t, open(t)) })
	t.Run("Storages", func(t *testing.T) { testStorages(t, open(t)) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, open(t)) }) // several servers (leases.go)
	t.Run("Paging", func(t *testing.T) { testPaging(t, open(t)) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, open(t)) })
	t.Run("Dashboard", func(t *testing.T) { testDashboard(t, open(t)) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open(t)) })
	t.Run("Notify", func(t *testing.T) { testNotify(t, open(t)) })
	t.Run("NotifyRaces", func(t *testing.T) { testNotifyRaces(t, open(t)) })
	t.Run("Remotes", func(t *testing.T) { testRemotes(t, open(t)) })
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

func seedHost(t *testing.T, s store.Store) (domain.Account, domain.Host) {
	ctx := context.Background()
	acc := domain.Account{ID: domain.NewID(), Name: "admin", Created: t0}
	must(t, s.CreateAccount(ctx, acc))
	z, err := s.EnsureZone(ctx, "default")
	must(t, err)
	h, err := s.UpsertHost(ctx, domain.Host{Name: "localhost", ZoneID: z.ID, URI: "qemu:///system", LastSeen: t0, Local: true,
		AgentSettings: map[string]string{"backup.validation.max.concurrent.operations.per.host": "2"}})
	must(t, err)
	return acc, h
}

func testOfferings(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	n := 3
	o1, err := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "gold", Compress: true, Validate: true, BackupChainSize: &n}, t0)
	must(t, err)
	must(t, s.CreateOffering(ctx, o1))
	got, err := s.Offering(ctx, o1.ID)
	must(t, err)
	if got.Name != "gold" || !got.Compress || !got.Validate || got.BackupChainSize == nil || *got.BackupChainSize != 3 ||
		len(got.ValidationSteps) != 1 || got.ValidationSteps[0] != domain.StepScreenshot || !got.Created.Equal(t0) || got.Removed != nil {
		t.Fatalf("offering round trip: %+v", got)
	}
	dup, _ := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "gold"}, t0)
	wantErr(t, s.CreateOffering(ctx, dup), domain.ErrConflict)
	_, err = s.Offering(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)

	list, err := s.ListOfferings(ctx, store.OfferingFilter{Compress: true})
	must(t, err)
	if len(list) != 1 {
		t.Fatalf("compress filter: %d offerings", len(list))
	}
	list, err = s.ListOfferings(ctx, store.OfferingFilter{AllowQuickRestore: true})
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("quick restore filter: %d offerings", len(list))
	}

	// Assigned offerings cannot be removed.
	vm := domain.VM{ID: domain.NewID(), Name: "vm1", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{vm}, acc.ID, t0))
	must(t, s.SetVMOffering(ctx, vm.ID, o1.ID))
	wantErr(t, s.RemoveOffering(ctx, o1.ID, t0), domain.ErrConflict)
	if o, _ := s.Offering(ctx, o1.ID); o.Removed != nil {
		t.Fatal("refused removal changed the offering")
	}
	must(t, s.SetVMOffering(ctx, vm.ID, ""))
	must(t, s.RemoveOffering(ctx, o1.ID, t0.Add(time.Hour)))
	wantErr(t, s.RemoveOffering(ctx, o1.ID, t0), domain.ErrNotFound)
	wantErr(t, s.SetVMOffering(ctx, vm.ID, o1.ID), domain.ErrNotFound)
	list, _ = s.ListOfferings(ctx, store.OfferingFilter{})
	if len(list) != 0 {
		t.Fatalf("removed offering listed by default")
	}
	list, _ = s.ListOfferings(ctx, store.OfferingFilter{ShowRemoved: true})
	if len(list) != 1 || list[0].Removed == nil {
		t.Fatalf("show removed: %+v", list)
	}
	// The name is free again once removed.
	again, _ := domain.NewOffering(domain.NewID(), domain.OfferingSpec{Name: "gold"}, t0)
	must(t, s.CreateOffering(ctx, again))
}

func testVMs(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	other := domain.Account{ID: domain.NewID(), Name: "alice", Created: t0}
	must(t, s.CreateAccount(ctx, other))
	disks := []domain.Disk{{Target: "vda", Device: "disk", SourceType: "file", Source: "/a.qcow2", Format: "qcow2", VirtualSize: 1 << 20,
		BackingChain: []domain.Layer{{Path: "/base.qcow2", Format: "qcow2"}}}}
	a := domain.VM{ID: domain.NewID(), Name: "a", State: domain.VMRunning, Disks: disks, VCPUs: 2, MemoryBytes: 3 << 30}
	b := domain.VM{ID: domain.NewID(), Name: "b", State: domain.VMStopped}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{a, b}, acc.ID, t0))
	must(t, s.SetVMOwner(ctx, b.ID, other.ID))
	must(t, s.SetVMWorkState(ctx, a.ID, domain.VMBackingUp))

	// A later sync keeps owner and work state, updates state, marks missing.
	a.State = domain.VMStopped
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{a}, acc.ID, t0.Add(time.Minute)))
	got, err := s.VM(ctx, "a")
	must(t, err)
	if got.State != domain.VMStopped || got.WorkState != domain.VMBackingUp || got.EffectiveState() != domain.VMBackingUp ||
		len(got.Disks) != 1 || got.Disks[0].BackingChain[0].Path != "/base.qcow2" || got.VCPUs != 2 || got.MemoryBytes != 3<<30 {
		t.Fatalf("vm a after sync: %+v", got)
	}
	// One VM's disks after a command: owner, offering and work state stay.
	newDisks := []domain.Disk{{Target: "vda", Device: "disk", SourceType: "file", Source: "/d.qcow2", Format: "qcow2", VirtualSize: 1 << 20,
		BackingChain: []domain.Layer{{Path: "/a.qcow2", Format: "qcow2"}, {Path: "/base.qcow2", Format: "qcow2"}}}}
	must(t, s.RecordVMDisks(ctx, a.ID, domain.VMRunning, newDisks, t0.Add(2*time.Minute)))
	got, err = s.VM(ctx, a.ID)
	must(t, err)
	if got.State != domain.VMRunning || got.WorkState != domain.VMBackingUp || got.AccountID != acc.ID ||
		len(got.Disks) != 1 || got.Disks[0].Source != "/d.qcow2" || len(got.Disks[0].BackingChain) != 2 {
		t.Fatalf("vm a after RecordVMDisks: %+v", got)
	}
	wantErr(t, s.RecordVMDisks(ctx, "nope", domain.VMRunning, nil, t0), domain.ErrNotFound)
	// A sync read before that record (an inventory read while a merge
	// changed the disks) leaves the newer record alone, and does not count
	// the VM missing; a later sync updates it.
	stale := a
	stale.Disks = disks
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{stale}, acc.ID, t0.Add(90*time.Second)))
	got, err = s.VM(ctx, a.ID)
	must(t, err)
	if got.State != domain.VMRunning || len(got.Disks) != 1 || got.Disks[0].Source != "/d.qcow2" || len(got.Disks[0].BackingChain) != 2 {
		t.Fatalf("vm a after a sync read before its record: %+v", got)
	}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{stale}, acc.ID, t0.Add(3*time.Minute)))
	got, err = s.VM(ctx, a.ID)
	must(t, err)
	if got.State != domain.VMStopped || got.Disks[0].Source != "/a.qcow2" {
		t.Fatalf("vm a after a later sync: %+v", got)
	}
	gotB, err := s.VM(ctx, b.ID)
	must(t, err)
	if gotB.State != domain.VMMissing || gotB.AccountID != other.ID {
		t.Fatalf("vm b after sync: %+v", gotB)
	}
	mine, err := s.ListVMs(ctx, store.VMFilter{AccountID: other.ID})
	must(t, err)
	if len(mine) != 1 || mine[0].ID != b.ID {
		t.Fatalf("account filter: %+v", mine)
	}
	_, err = s.VM(ctx, "zzz")
	wantErr(t, err, domain.ErrNotFound)
	wantErr(t, s.SetVMOwner(ctx, "nope", acc.ID), domain.ErrNotFound)
}

func testSettings(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	must(t, s.SetSetting(ctx, store.Setting{Scope: "global", Key: "backup.chain.size", Value: "3"}))
	must(t, s.SetSetting(ctx, store.Setting{Scope: "global", Key: "backup.chain.size", Value: "4"}))
	must(t, s.SetSetting(ctx, store.Setting{Scope: "host", ScopeID: h.ID, Key: "backup.compression.max.concurrent.operations.per.host", Value: "-1"}))
	all, err := s.ListSettings(ctx)
	must(t, err)
	if len(all) != 2 || all[0].Key != "backup.chain.size" || all[0].Value != "4" {
		t.Fatalf("settings: %+v", all)
	}
	must(t, s.DeleteSetting(ctx, "global", "", "backup.chain.size"))
	wantErr(t, s.DeleteSetting(ctx, "global", "", "backup.chain.size"), domain.ErrNotFound)

	vm := domain.VM{ID: domain.NewID(), Name: "v", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{vm}, acc.ID, t0))
	must(t, s.SetVMDetail(ctx, vm.ID, "backupValidationCommand", "echo"))
	must(t, s.SetVMDetail(ctx, vm.ID, "backupValidationCommand", "cat"))
	d, err := s.VMDetails(ctx, vm.ID)
	must(t, err)
	if len(d) != 1 || d["backupValidationCommand"] != "cat" {
		t.Fatalf("details: %v", d)
	}
	wantErr(t, s.DeleteVMDetail(ctx, vm.ID, "other"), domain.ErrNotFound)

	hh, err := s.Host(ctx, "localhost")
	must(t, err)
	if hh.AgentSettings["backup.validation.max.concurrent.operations.per.host"] != "2" || !hh.Enabled || !hh.Local {
		t.Fatalf("host: %+v", hh)
	}
}

func testTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, _ := seedHost(t, s)
	wantErr(t, s.CreateAccount(ctx, domain.Account{ID: domain.NewID(), Name: "admin", Created: t0}), domain.ErrConflict)
	must(t, s.CreateToken(ctx, store.Token{ID: domain.NewID(), AccountID: acc.ID, Role: domain.RoleAdmin, Name: "x", Hash: "h1", Created: t0}))
	tok, err := s.TokenByHash(ctx, "h1")
	must(t, err)
	if tok.AccountID != acc.ID || tok.Role != domain.RoleAdmin {
		t.Fatalf("token: %+v", tok)
	}
	_, err = s.TokenByHash(ctx, "h2")
	wantErr(t, err, domain.ErrNotFound)
	got, err := s.Account(ctx, "admin")
	must(t, err)
	if got.ID != acc.ID || !got.Created.Equal(t0) || got.Limits != domain.NoLimits {
		t.Fatalf("account: %+v", got)
	}
	// Limits: a new account has none; they are replaced whole.
	lim := domain.Limits{VMs: 3, VCPUs: 0, MemoryBytes: domain.Unlimited}
	must(t, s.SetAccountLimits(ctx, acc.ID, lim))
	list, err := s.ListAccounts(ctx)
	must(t, err)
	if len(list) != 1 || list[0].Limits != lim {
		t.Fatalf("accounts after setting limits: %+v", list)
	}
	wantErr(t, s.SetAccountLimits(ctx, "nope", lim), domain.ErrNotFound)
}

func testOperations(t *testing.T, s store.Store) {
	ctx := context.Background()
	op := domain.Operation{ID: domain.NewID(), Kind: "inventory.refresh", State: domain.OpPending, Created: t0, Updated: t0}
	must(t, s.CreateOperation(ctx, op))
	op.State, op.Progress, op.Result, op.Updated = domain.OpSucceeded, 100, `{"ok":true}`, t0.Add(time.Second)
	must(t, s.UpdateOperation(ctx, op))
	got, err := s.Operation(ctx, op.ID)
	must(t, err)
	if got.State != domain.OpSucceeded || got.Progress != 100 || got.Result != `{"ok":true}` || !got.Updated.Equal(op.Updated) {
		t.Fatalf("operation: %+v", got)
	}
	open, err := s.ListOperations(ctx, store.OperationFilter{})
	must(t, err)
	if len(open) != 0 {
		t.Fatalf("done operation listed as open")
	}
	all, _ := s.ListOperations(ctx, store.OperationFilter{All: true})
	if len(all) != 1 {
		t.Fatalf("all operations: %d", len(all))
	}
	_, err = s.Operation(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
}

func testBackups(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	vm := domain.VM{ID: domain.NewID(), Name: "v", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{vm}, acc.ID, t0))

	// One operation at a time per VM.
	must(t, s.AcquireVM(ctx, vm.ID, "backup op1"))
	err := s.AcquireVM(ctx, vm.ID, "delete op2")
	wantErr(t, err, domain.ErrConflict)
	if !strings.Contains(err.Error(), "backup op1") {
		t.Fatalf("conflict must name the holder: %v", err)
	}
	must(t, s.ReleaseVM(ctx, vm.ID, "delete op2")) // not the holder: no effect
	wantErr(t, s.AcquireVM(ctx, vm.ID, "x"), domain.ErrConflict)
	must(t, s.ReleaseVM(ctx, vm.ID, "backup op1"))
	must(t, s.AcquireVM(ctx, vm.ID, "x"))
	wantErr(t, s.AcquireVM(ctx, "nope", "x"), domain.ErrNotFound)

	b := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: "v", AccountID: acc.ID, Type: domain.BackupFull, Position: 1,
		Status: domain.BackupBackingUp, Dir: "backups/v/b1", Plan: `{"disks":[]}`, Created: t0, Updated: t0}
	must(t, s.CreateBackup(ctx, b))
	b.Status, b.Size = domain.BackupBackedUp, 42
	b.Files = []domain.BackupFile{{Disk: "vda", Path: "backups/v/b1/vda.qcow2", Full: true, Size: 42, VirtualSize: 100, Hash: "xxh3-128:00"}}
	c := store.Chain{Head: b.ID, Deltas: []domain.Delta{{VMID: vm.ID, Disk: "vda", BackupID: b.ID, Delta: "/d", Base: "/b"}}}
	must(t, s.SaveBackup(ctx, b, &c))
	got, err := s.Backup(ctx, b.ID)
	must(t, err)
	if got.Status != domain.BackupBackedUp || got.Size != 42 || len(got.Files) != 1 || got.Files[0].Hash != "xxh3-128:00" || !got.Files[0].Full {
		t.Fatalf("backup round trip: %+v", got)
	}
	gc, err := s.Chain(ctx, vm.ID)
	must(t, err)
	if gc.Head != b.ID || len(gc.Deltas) != 1 || gc.Deltas[0].Delta != "/d" {
		t.Fatalf("chain: %+v", gc)
	}
	v, _ := s.VM(ctx, vm.ID)
	if v.ChainHead != b.ID || v.Busy != "x" {
		t.Fatalf("vm chain head/busy: %+v", v)
	}
	list, err := s.ListBackups(ctx, store.BackupFilter{VMID: vm.ID})
	must(t, err)
	if len(list) != 1 || len(list[0].Files) != 1 {
		t.Fatalf("list: %+v", list)
	}
	must(t, s.SetChain(ctx, vm.ID, store.Chain{}))
	gc, _ = s.Chain(ctx, vm.ID)
	if gc.Head != "" || len(gc.Deltas) != 0 {
		t.Fatalf("chain not cleared: %+v", gc)
	}
	must(t, s.ExpungeBackup(ctx, b.ID))
	_, err = s.Backup(ctx, b.ID)
	wantErr(t, err, domain.ErrNotFound)
	wantErr(t, s.ExpungeBackup(ctx, b.ID), domain.ErrNotFound)
}

func testJobs(t *testing.T, s store.Store) {
	ctx := context.Background()
	j := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: "b", VMID: "v", ZoneID: "z", State: jobs.Queued, Scheduled: t0}
	must(t, s.EnqueueJob(ctx, j))
	later := jobs.Job{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: "b2", VMID: "v2", ZoneID: "z", State: jobs.Queued, Scheduled: t0.Add(time.Hour)}
	must(t, s.EnqueueJob(ctx, later))

	// Not due yet: no claim.
	ok, err := s.ClaimJob(ctx, later.ID, "srv1", "h1", t0, t0.Add(time.Minute))
	must(t, err)
	if ok {
		t.Fatal("claimed a job before its time")
	}
	// A batch claims what is due and queued, and only that.
	batch := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: "b3", VMID: "v3", ZoneID: "z", State: jobs.Queued, Scheduled: t0}
	must(t, s.EnqueueJob(ctx, batch))
	won, err := s.ClaimJobs(ctx, []store.JobClaim{{JobID: later.ID, HostID: "h1"}, {JobID: batch.ID, HostID: "h2"}, {JobID: "nope", HostID: "h1"}},
		"srv3", t0, t0.Add(time.Minute))
	must(t, err)
	if len(won) != 1 || won[0].JobID != batch.ID || won[0].HostID != "h2" {
		t.Fatalf("batch claims won: %+v", won)
	}
	if got, _ := s.Job(ctx, batch.ID); got.State != jobs.Running || got.LeaseOwner != "srv3" || got.HostID != "h2" {
		t.Fatalf("batch-claimed job: %+v", got)
	}
	if again, err := s.ClaimJobs(ctx, []store.JobClaim{{JobID: batch.ID, HostID: "h1"}}, "srv4", t0, t0.Add(time.Minute)); err != nil || len(again) != 0 {
		t.Fatalf("a claimed job claimed again: %+v %v", again, err)
	}
	if ok, err := s.FinishJob(ctx, batch.ID, "srv3", jobs.Outcome{State: jobs.Succeeded, Attempts: 1}, "", t0); err != nil || !ok {
		t.Fatalf("finish the batch-claimed job: %v %v", ok, err)
	}

	// Two servers claim the same job: exactly one wins.
	ok1, err := s.ClaimJob(ctx, j.ID, "srv1", "h1", t0, t0.Add(time.Minute))
	must(t, err)
	ok2, err := s.ClaimJob(ctx, j.ID, "srv2", "h2", t0, t0.Add(time.Minute))
	must(t, err)
	if !ok1 || ok2 {
		t.Fatalf("claims: %v %v", ok1, ok2)
	}
	got, err := s.Job(ctx, j.ID)
	must(t, err)
	if got.State != jobs.Running || got.LeaseOwner != "srv1" || got.HostID != "h1" || got.Attempts != 1 {
		t.Fatalf("claimed job: %+v", got)
	}
	if ok, _ := s.RenewLease(ctx, j.ID, "srv2", t0.Add(time.Hour)); ok {
		t.Fatal("a non-owner renewed the lease")
	}
	if ok, _ := s.RenewLease(ctx, j.ID, "srv1", t0.Add(2*time.Minute)); !ok {
		t.Fatal("the owner could not renew")
	}
	running, err := s.Jobs(ctx, store.JobFilter{Executing: true})
	must(t, err)
	if len(running) != 1 || running[0].ID != j.ID {
		t.Fatalf("executing: %+v", running)
	}
	scheduled, err := s.Jobs(ctx, store.JobFilter{Scheduled: true, Now: t0})
	must(t, err)
	if len(scheduled) != 1 || scheduled[0].ID != later.ID {
		t.Fatalf("scheduled: %+v", scheduled)
	}
	// A failed attempt is queued again for later; only the owner can finish it.
	retry := jobs.Outcome{State: jobs.Queued, Scheduled: t0.Add(time.Hour), Attempts: 1}
	if ok, _ := s.FinishJob(ctx, j.ID, "srv2", retry, "x", t0); ok {
		t.Fatal("a non-owner finished the job")
	}
	ok, err = s.FinishJob(ctx, j.ID, "srv1", retry, "disk full", t0.Add(time.Second))
	must(t, err)
	got, _ = s.Job(ctx, j.ID)
	if !ok || got.State != jobs.Queued || !got.Scheduled.Equal(t0.Add(time.Hour)) || got.LastError != "disk full" || got.LeaseOwner != "" {
		t.Fatalf("retry: %+v", got)
	}
	all, _ := s.Jobs(ctx, store.JobFilter{All: true, Type: jobs.BackupValidation})
	if len(all) != 1 {
		t.Fatalf("type filter: %+v", all)
	}
}

// RunMoves checks the VM move records (restore onto another host).
func RunMoves(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	z, err := s.EnsureZone(ctx, "zm")
	must(t, err)
	a, err := s.UpsertHost(ctx, domain.Host{Name: "ma", ZoneID: z.ID, Enabled: true, LastSeen: t0})
	must(t, err)
	b, err := s.UpsertHost(ctx, domain.Host{Name: "mb", ZoneID: z.ID, Enabled: true, LastSeen: t0})
	must(t, err)
	acc := domain.Account{ID: domain.NewID(), Name: "movers", Created: t0}
	must(t, s.CreateAccount(ctx, acc))
	vm := domain.VM{ID: "11111111-2222-4333-8444-555555555555", Name: "mover", State: domain.VMStopped}
	must(t, s.SyncHostVMs(ctx, a.ID, []domain.VM{vm}, acc.ID, t0))

	m := store.VMMove{VMID: vm.ID, FromHost: a.ID, ToHost: b.ID, BackupID: "b1", Quick: true, Created: t0}
	must(t, s.RecordVMMove(ctx, m))
	if err := s.RecordVMMove(ctx, m); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("second move of the same VM: %v, want ErrConflict", err)
	}
	got, err := s.VMMoves(ctx)
	must(t, err)
	if len(got) != 1 || got[0] != m {
		t.Fatalf("moves %+v, want [%+v]", got, m)
	}
	must(t, s.SetVMHost(ctx, vm.ID, b.ID))
	v, err := s.VM(ctx, vm.ID)
	must(t, err)
	if v.HostID != b.ID {
		t.Errorf("vm host %s, want %s", v.HostID, b.ID)
	}
	if err := s.SetVMHost(ctx, "no-such-vm", b.ID); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("SetVMHost of an unknown VM: %v, want ErrNotFound", err)
	}
	must(t, s.FinishVMMove(ctx, vm.ID))
	must(t, s.FinishVMMove(ctx, vm.ID))
	if got, err := s.VMMoves(ctx); err != nil || len(got) != 0 {
		t.Fatalf("moves after finish: %v %v", got, err)
	}
}
