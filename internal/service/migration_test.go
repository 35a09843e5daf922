package service_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/restores"
	"github.com/knib/knib/internal/store"
)

// A VM migrated outside knib (virsh migrate) between two hosts of a zone:
// the fakes play the two daemons, each with the same VM definition moving
// from one to the other.

// migHost is one fake host: its agent simulates a backup on the domains
// it holds (a new delta on top of every disk, the previous delta merged),
// so that the next plan sees the real chain the backup left.
type migHost struct {
	*agenttest.Fake
	id string
}

func (h *migHost) backupTask(t agentapi.Task) agentapi.TaskStatus {
	req, ok := t.Request.(agentapi.TakeBackupRequest)
	if !ok {
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100}
	}
	doms, _ := h.Inventory(context.Background())
	i := slices.IndexFunc(doms, func(d agentapi.Domain) bool { return d.UUID == req.DomainUUID })
	if i < 0 {
		return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "domain " + req.DomainUUID + ": unknown domain"}
	}
	dom := doms[i]
	res := agentapi.TakeBackupResult{}
	for _, p := range req.Disks {
		res.Files = append(res.Files, agentapi.BackupFile{Disk: p.Target, Path: req.Dir + "/" + p.Target + ".qcow2", Full: p.Full,
			Size: 1 << 16, VirtualSize: 1 << 20, Hash: "xxh3-128:1"})
		top := filepath.Join(filepath.Dir(p.Frozen), agentapi.DeltaPrefix+req.DomainUUID+"."+p.Target+"."+req.BackupID+".qcow2")
		base := p.NewDeltaBase()
		for k, d := range dom.Disks {
			if d.Target != p.Target {
				continue
			}
			chain := append([]agentapi.Layer{{Path: d.Source, Format: "qcow2"}}, d.BackingChain...)
			j := slices.IndexFunc(chain, func(l agentapi.Layer) bool { return l.Path == base })
			dom.Disks[k].Source, dom.Disks[k].BackingChain = top, append([]agentapi.Layer(nil), chain[j:]...)
		}
		res.Chains = append(res.Chains, agentapi.DiskChain{Target: p.Target, Top: top, Base: base})
	}
	doms[i] = dom
	h.SetDomains(doms)
	res.Domain = dom
	return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: res}
}

// migEnv is newEnv with a two-disk VM "web" running on host A
// ("localhost") and a second host B ("hostb") in the same zone, both
// simulating backups.
func migEnv(t *testing.T) (*env, *migHost, *migHost) {
	t.Helper()
	e := newEnv(t, "")
	ctx := context.Background()
	a := &migHost{Fake: e.agent, id: e.vm.HostID}
	a.Task = a.backupTask
	a.SetDomains([]agentapi.Domain{webDomain("running", "/img/vda.qcow2", "/img/vdb.qcow2")})
	b := &migHost{Fake: &agenttest.Fake{Report: agentapi.HostReport{Name: "hostb", StoragePath: "/st"}}}
	b.Task = b.backupTask
	hb, err := e.svc.Hosts.RegisterHost(ctx, "default", b.Fake, true)
	if err != nil {
		t.Fatal(err)
	}
	b.id = hb.ID
	if err := e.svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	return e, a, b
}

func webDomain(state string, sources ...string) agentapi.Domain {
	d := agentapi.Domain{UUID: vmID, Name: "web", State: state}
	for i, src := range sources {
		d.Disks = append(d.Disks, agentapi.Disk{Target: "vd" + string(rune('a'+i)), Device: "disk", SourceType: "file",
			Source: src, Format: "qcow2", VirtualSize: 1 << 20})
	}
	return d
}

// migrate moves the VM's domain from one fake host to the other as virsh
// migrate does: the same disks, running on the target; keep leaves a
// shut-off definition on the source (no --undefinesource).
func migrate(t *testing.T, from, to *migHost, keep bool) {
	t.Helper()
	doms, _ := from.Inventory(context.Background())
	i := slices.IndexFunc(doms, func(d agentapi.Domain) bool { return d.UUID == vmID })
	if i < 0 {
		t.Fatal("the VM is not on the source host")
	}
	moved := doms[i]
	moved.State = "running"
	to.SetDomains([]agentapi.Domain{moved})
	if keep {
		doms[i].State = "shutoff"
		from.SetDomains(doms)
	} else {
		from.SetDomains(nil)
	}
}

// backupOn takes a backup and checks that it ran on the wanted host (its
// agent took it, the other did not), with the wanted type and disks
// copied full.
func backupOn(t *testing.T, e *env, want, other *migHost, typ domain.BackupType, full ...string) domain.Backup {
	t.Helper()
	ctx := context.Background()
	before, otherBefore := len(want.Started), len(other.Started)
	op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if op = waitOp(t, e, op); op.State != domain.OpSucceeded {
		t.Fatalf("backup: %+v", op)
	}
	// The backup, then the merge that follows it (both where the VM runs).
	if len(want.Started) != before+2 || len(other.Started) != otherBefore {
		t.Fatalf("backup tasks: wanted host %v, other host %v", want.Started[before:], other.Started[otherBefore:])
	}
	var res domain.BackupCreateResult
	if err := json.Unmarshal([]byte(op.Result), &res); err != nil {
		t.Fatal(err)
	}
	b, err := e.st.Backup(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	var gotFull []string
	for _, f := range b.Files {
		if f.Full {
			gotFull = append(gotFull, f.Disk)
		}
	}
	if b.Type != typ || b.HostID != want.id || strings.Join(gotFull, ",") != strings.Join(full, ",") {
		t.Fatalf("backup %s on %s, full disks %v; want %s on %s, full %v", b.Type, b.HostID, gotFull, typ, want.id, full)
	}
	vm, err := e.st.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if vm.HostID != want.id || vm.Busy != "" || vm.WorkState != "" || vm.ChainHead != b.ID {
		t.Fatalf("vm after the backup: %+v", vm)
	}
	return b
}

// Seed interactions 1-5 with the VM migrated outside knib and backed up
// before any inventory pass: the backup runs where the VM runs now;
// incremental while the deltas moved with it, full for a disk whose
// storage was copied (a flat file, no delta); a shut-off definition left
// on the old host is never backed up.
func TestBackupFollowsAVMMigratedOutsideKnib(t *testing.T) {
	e, a, b := migEnv(t)
	b1 := backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
	b2 := backupOn(t, e, a, b, domain.BackupIncremental)

	// Plain live migration A → B (--undefinesource): incremental on B.
	migrate(t, a, b, false)
	b3 := backupOn(t, e, b, a, domain.BackupIncremental)
	if b3.ParentID != b2.ID || b2.ParentID != b1.ID {
		t.Fatalf("chain: b3's parent %s, b2's %s", b3.ParentID, b2.ParentID)
	}

	// B → A with vdb's storage copied into a flat file: vda incremental,
	// vdb full.
	migrate(t, b, a, false)
	doms, _ := a.Inventory(context.Background())
	doms[0].Disks[1].Source, doms[0].Disks[1].BackingChain = "/img/copied/vdb.qcow2", nil
	a.SetDomains(doms)
	backupOn(t, e, a, b, domain.BackupIncremental, "vdb")

	// A → B leaving a shut-off definition on A: the backup runs on B.
	migrate(t, a, b, true)
	backupOn(t, e, b, a, domain.BackupIncremental)
	// Stopped on B now, the stale definition on A is still not used.
	doms, _ = b.Inventory(context.Background())
	doms[0].State = "shutoff"
	b.SetDomains(doms)
	backupOn(t, e, b, a, domain.BackupIncremental)
}

// The inventory follows a migrated VM whatever order the hosts are read
// in: the host it left never marks it Missing, a shut-off definition left
// behind never takes it back, and its chain is kept.
func TestInventoryFollowsAMigratedVM(t *testing.T) {
	ctx := context.Background()
	for _, keep := range []bool{false, true} {
		for _, sourceFirst := range []bool{true, false} {
			e, a, b := migEnv(t)
			b1 := backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
			migrate(t, a, b, keep)
			order := []*migHost{a, b, a, b}
			if !sourceFirst {
				order = []*migHost{b, a, b, a}
			}
			for i, h := range order {
				if err := e.svc.Kernel.SyncHost(ctx, h.id, h.Fake, e.admin.AccountID); err != nil {
					t.Fatal(err)
				}
				vm, err := e.st.VM(ctx, vmID)
				if err != nil {
					t.Fatal(err)
				}
				// Before B was read, A (read first) found the VM on B itself.
				if vm.HostID != b.id || vm.State != domain.VMRunning {
					t.Fatalf("keep %v, source first %v, after sync %d: vm on %s, %s; want on B, Running", keep, sourceFirst, i, vm.HostID, vm.State)
				}
			}
			c, err := e.st.Chain(ctx, vmID)
			if err != nil || c.Head != b1.ID || len(c.Deltas) != 2 {
				t.Fatalf("chain after the migration: %+v, %v", c, err)
			}
			// A restore now sees a running VM: refused, nothing started.
			if _, err := e.svc.Restores.RestoreBackup(ctx, e.admin, b1.ID, restores.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "stop it") {
				t.Fatalf("restore of the migrated VM: %v", err)
			}
		}
	}
}

// A VM defined on two hosts and running on neither (migrated with
// --persistent but without --undefinesource, then shut down) stays on
// the host the catalogue records; a definition that appears elsewhere
// while the VM runs on its host is ignored; a VM no host defines any more
// becomes Missing.
func TestInventoryKeepsAVMWhereItIs(t *testing.T) {
	ctx := context.Background()
	e, a, b := migEnv(t)
	doms, _ := a.Inventory(ctx)
	copyOnB := doms[0] // a copy of the definition on B, shut off
	copyOnB.State = "shutoff"
	b.SetDomains([]agentapi.Domain{copyOnB})
	sync := func(hs ...*migHost) domain.VM {
		t.Helper()
		for _, h := range hs {
			if err := e.svc.Kernel.SyncHost(ctx, h.id, h.Fake, e.admin.AccountID); err != nil {
				t.Fatal(err)
			}
		}
		vm, err := e.st.VM(ctx, vmID)
		if err != nil {
			t.Fatal(err)
		}
		return vm
	}
	if vm := sync(b, a, b); vm.HostID != a.id || vm.State != domain.VMRunning {
		t.Fatalf("running on A, defined on B: %+v", vm)
	}
	doms[0].State = "shutoff"
	a.SetDomains(doms)
	if vm := sync(a, b, a, b); vm.HostID != a.id || vm.State != domain.VMStopped {
		t.Fatalf("shut off on both: %+v", vm)
	}
	backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
	a.SetDomains(nil)
	if vm := sync(a); vm.HostID != b.id || vm.State != domain.VMStopped {
		t.Fatalf("undefined on A, defined on B: %+v", vm)
	}
	b.SetDomains(nil)
	if vm := sync(b, a); vm.HostID != b.id || vm.State != domain.VMMissing {
		t.Fatalf("defined nowhere: %+v", vm)
	}
	if list, _ := e.st.ListVMs(ctx, store.VMFilter{}); len(list) != 1 {
		t.Fatalf("VMs: %+v", list)
	}
}

// The merge that follows a backup pauses the VM for milliseconds to flush
// its images; a live migration started in that window moves the VM paused,
// and the resume on the host it left fails. The merge goes on on the new
// host, which resumes the VM first: it is never left paused.
func TestMergeResumesAVMMigratedWhilePaused(t *testing.T) {
	e, a, b := migEnv(t)
	backupOn(t, e, a, b, domain.BackupFull, "vda", "vdb")
	a.Task = func(task agentapi.Task) agentapi.TaskStatus {
		if _, ok := task.Request.(agentapi.MergeBackupRequest); !ok {
			return a.backupTask(task)
		}
		migrate(t, a, b, false)
		doms, _ := b.Inventory(context.Background())
		doms[0].State = "paused"
		b.SetDomains(doms)
		return agentapi.TaskStatus{State: agentapi.TaskFailed, LeftPaused: true,
			Error: "merge previous delta of vda: flush after the block job on vda: resume: Domain not found: the domain was left paused after a flush"}
	}
	var asked []bool
	b.Task = func(task agentapi.Task) agentapi.TaskStatus {
		req, ok := task.Request.(agentapi.MergeBackupRequest)
		if !ok {
			return b.backupTask(task)
		}
		asked = append(asked, req.ResumePaused)
		doms, _ := b.Inventory(context.Background())
		if req.ResumePaused && doms[0].State == "paused" {
			doms[0].State = "running"
			b.SetDomains(doms)
		}
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: agentapi.MergeBackupResult{Domain: doms[0]}}
	}
	ctx := context.Background()
	op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if op = waitOp(t, e, op); op.State != domain.OpSucceeded {
		t.Fatalf("backup: %+v", op)
	}
	e.svc.Kernel.AwaitFollowUp(ctx, vmID)
	if len(asked) != 1 || !asked[0] {
		t.Fatalf("merges on the new host: %v, want one that resumes the VM", asked)
	}
	doms, _ := b.Inventory(ctx)
	vm, err := e.st.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if doms[0].State != "running" || vm.HostID != b.id || vm.WorkState != "" || vm.State != domain.VMRunning {
		t.Fatalf("after the merge: domain %s on B, vm %+v", doms[0].State, vm)
	}
}
