package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/hypervisor/fake"
	"github.com/knib/knib/internal/qemuimg"
)

// Unit tests of the agent's host work on the fake hypervisor, with real
// qcow2 files and the real qemu-img: backup (running and stopped VM),
// merge, restore, quick restore and consolidation, each step failing in
// turn. The fake models the layer graph; integration tests prove the same
// against libvirt and a real guest.

type hostEnv struct {
	a       *Local
	hv      *fake.Hypervisor
	uuid    string
	primary string // the VM's disk directory
	storage string // the backup storage root
	base    string // the VM's disk
	ctx     context.Context
}

func newHostEnv(t *testing.T, running bool) *hostEnv {
	t.Helper()
	e := &hostEnv{hv: fake.New(), primary: t.TempDir(), storage: t.TempDir()}
	e.a = NewLocal(Config{Name: "h", DiskDir: t.TempDir()}, e.hv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(e.a.Close)
	e.ctx = context.Background()
	e.base = filepath.Join(e.primary, "web-vda.qcow2")
	if err := qemuimg.Default.Create(e.ctx, e.base, "qcow2", 8<<20, nil); err != nil {
		t.Fatal(err)
	}
	doc, err := (&libvirtxml.Domain{Type: "qemu", Name: "web", Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{{
		Device: "disk", Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: e.base}},
		Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
	}}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if e.uuid, err = e.hv.DefineDomain(e.ctx, doc); err != nil {
		t.Fatal(err)
	}
	if running {
		if err := e.hv.StartDomain(e.ctx, e.uuid); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *hostEnv) chain(t *testing.T) []string {
	t.Helper()
	d, err := e.hv.Domain(e.ctx, e.uuid)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{d.Disks[0].Source}
	for _, l := range d.Disks[0].BackingChain {
		out = append(out, l.Path)
	}
	return out
}

func (e *hostEnv) fullRequest(id string) agentapi.TakeBackupRequest {
	return agentapi.TakeBackupRequest{InStorage: agentapi.InStorage{Storage: e.storage}, BackupID: id, DomainUUID: e.uuid,
		Dir: "backups/" + e.uuid + "/" + id, Disks: []agentapi.BackupDiskPlan{{Target: "vda", Full: true, Frozen: e.base}}}
}

func noProgress(float64, string) {}

// afterFull takes the full backup b1 and returns its delta and the request
// of the incremental b2 that merges it.
func (e *hostEnv) afterFull(t *testing.T) (delta string, inc agentapi.TakeBackupRequest) {
	t.Helper()
	out, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	delta = DeltaPath(e.base, e.uuid, "vda", "b1")
	return delta, agentapi.TakeBackupRequest{InStorage: agentapi.InStorage{Storage: e.storage}, BackupID: "b2", DomainUUID: e.uuid,
		Dir: "backups/" + e.uuid + "/b2", Disks: []agentapi.BackupDiskPlan{{Target: "vda", Frozen: delta, Delta: delta,
			MergeInto: e.base, Layers: []string{delta}, ParentFile: out.(agentapi.TakeBackupResult).Files[0].Path}}}
}

func TestBackupOnTheFake(t *testing.T) {
	for _, running := range []bool{true, false} {
		t.Run(map[bool]string{true: "running", false: "stopped"}[running], func(t *testing.T) {
			e := newHostEnv(t, running)
			out, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
			if err != nil {
				t.Fatalf("full backup: %v", err)
			}
			res := out.(agentapi.TakeBackupResult)
			delta := DeltaPath(e.base, e.uuid, "vda", "b1")
			if got := e.chain(t); len(got) != 2 || got[0] != delta || got[1] != e.base {
				t.Fatalf("chain after the full backup: %v", got)
			}
			if len(res.Files) != 1 || res.Files[0].Hash == "" || len(res.Chains) != 1 || res.Chains[0].Top != delta || res.Domain.UUID != e.uuid {
				t.Fatalf("result %+v", res)
			}
			// Every phase is timed (the metrics' phase durations).
			for _, ph := range []string{agentapi.PhaseSnapshot, agentapi.PhaseCopy, agentapi.PhaseFsync, agentapi.PhaseMerge} {
				if d, ok := res.Phases[ph]; !ok || d < 0 {
					t.Errorf("phase %s: %v, %v (phases %v)", ph, d, ok, res.Phases)
				}
			}
			for _, f := range []string{"vda.qcow2", "manifest.json", "domain.xml"} {
				if _, err := os.Stat(filepath.Join(e.storage, "backups", e.uuid, "b1", f)); err != nil {
					t.Fatalf("backup file %s: %v", f, err)
				}
			}
			// The incremental merges the previous delta into the base.
			inc := agentapi.TakeBackupRequest{InStorage: agentapi.InStorage{Storage: e.storage}, BackupID: "b2", DomainUUID: e.uuid,
				Dir: "backups/" + e.uuid + "/b2", Disks: []agentapi.BackupDiskPlan{{Target: "vda", Frozen: delta, Delta: delta,
					MergeInto: e.base, Layers: []string{delta}, ParentFile: res.Files[0].Path}}}
			if _, err := e.a.takeBackup(e.ctx, inc, noProgress); err != nil {
				t.Fatalf("incremental backup: %v", err)
			}
			delta2 := DeltaPath(delta, e.uuid, "vda", "b2")
			if got := e.chain(t); len(got) != 2 || got[0] != delta2 || got[1] != e.base {
				t.Fatalf("chain after the incremental: %v", got)
			}
			if _, err := os.Stat(delta); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the merged delta is left: %v", err)
			}
			info, err := qemuimg.Default.Info(e.ctx, filepath.Join(e.storage, "backups", e.uuid, "b2", "vda.qcow2"), qemuimg.InfoOptions{})
			if err != nil || len(info) == 0 || info[0].BackingFilename != "../b1/vda.qcow2" {
				t.Fatalf("incremental file %+v %v", info, err)
			}
		})
	}
}

// A snapshot that fails changes nothing and says so (a clean failure).
func TestBackupSnapshotFailureIsClean(t *testing.T) {
	e := newHostEnv(t, true)
	e.hv.FailOn("SnapshotDisks", 1, nil)
	_, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
	var clean cleanError
	if !errors.Is(err, fake.ErrInjected) || !errors.As(err, &clean) {
		t.Fatalf("snapshot failure: %v", err)
	}
	if got := e.chain(t); len(got) != 1 || got[0] != e.base {
		t.Fatalf("chain after a failed snapshot: %v", got)
	}
}

// A backup whose merge fails leaves a chain that reconciliation repairs:
// every knib delta is merged, and the partial directory goes.
func TestBackupMergeFailureIsReconciled(t *testing.T) {
	e := newHostEnv(t, true)
	_, inc := e.afterFull(t)
	e.hv.FailOn("BlockCommit", 1, nil)
	_, err := e.a.takeBackup(e.ctx, inc, noProgress)
	var clean cleanError
	if !errors.Is(err, fake.ErrInjected) || errors.As(err, &clean) {
		t.Fatalf("merge failure: %v (it changed disks: not clean)", err)
	}
	if got := e.chain(t); len(got) != 3 {
		t.Fatalf("chain after a failed merge: %v", got)
	}
	rec := agentapi.ReconcileRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid, RemoveDirs: []string{inc.Dir}}
	if _, err := e.a.reconcile(e.ctx, rec, noProgress); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if got := e.chain(t); len(got) != 1 || got[0] != e.base {
		t.Fatalf("chain after reconciliation: %v", got)
	}
	if _, err := os.Stat(filepath.Join(e.storage, inc.Dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the partial backup directory is left: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(e.primary, agentapi.DeltaPrefix+"*")); len(left) != 0 {
		t.Fatalf("left-over deltas: %v", left)
	}
}

// restore writes the backup's disk over the VM's (stopped), and a quick
// restore starts it on an overlay that consolidation pulls in; a failed
// block pull leaves it running on the overlay with the reason.
func TestRestoreAndQuickRestoreOnTheFake(t *testing.T) {
	e := newHostEnv(t, false)
	out, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	files := []agentapi.RestoreFile{{Disk: "vda", Path: out.(agentapi.TakeBackupResult).Files[0].Path}}
	rec := agentapi.ReconcileRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid}
	if _, err := e.a.reconcile(e.ctx, rec, noProgress); err != nil {
		t.Fatalf("end the chain: %v", err)
	}
	req := agentapi.RestoreRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid, Dir: "backups/" + e.uuid + "/b1", Files: files}
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := e.chain(t); len(got) != 1 || got[0] != e.base {
		t.Fatalf("chain after a full restore: %v", got)
	}

	req.Quick = true
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatalf("quick restore: %v", err)
	}
	d, _ := e.hv.Domain(e.ctx, e.uuid)
	if d.State != hypervisor.StateRunning || len(d.Disks[0].BackingChain) == 0 || !strings.HasPrefix(d.Disks[0].BackingChain[0].Path, e.storage) {
		t.Fatalf("quick-restored VM: %+v", d)
	}
	cons := agentapi.ConsolidateRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid}
	e.hv.FailOn("BlockPull", 1, nil)
	if _, err := e.a.consolidate(e.ctx, cons, noProgress); !errors.Is(err, fake.ErrInjected) {
		t.Fatalf("consolidation with a failing block pull: %v", err)
	}
	// QEMU dies at the start of the pull: the VM is started again on its
	// overlays and the pull runs again; a consolidation never leaves down a
	// VM that ran.
	e.hv.FailOn("BlockPull", 1, fake.ErrQEMUDied)
	starts := e.hv.Calls("StartDomain")
	if _, err := e.a.consolidate(e.ctx, cons, noProgress); err != nil {
		t.Fatalf("consolidation: %v", err)
	}
	if got := e.hv.Calls("StartDomain") - starts; got != 1 {
		t.Fatalf("the VM whose QEMU died was started %d times, want 1", got)
	}
	d, _ = e.hv.Domain(e.ctx, e.uuid)
	if d.State != hypervisor.StateRunning {
		t.Fatalf("after consolidation the VM is %s", d.State)
	}
	if len(d.Disks[0].BackingChain) != 0 {
		t.Fatalf("after consolidation the disk still reads %v", d.Disks[0].BackingChain)
	}
	// QEMU dies as the pull ends, after it wrote the overlay's new header
	// (no backing file) and before the pulled data's metadata: the overlay
	// gets its backup file back before the VM starts again, and is pulled
	// again, so the VM never reads the zeros such an overlay would give.
	if err := e.hv.SetState(e.uuid, hypervisor.StateShutoff); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatalf("quick restore: %v", err)
	}
	d, _ = e.hv.Domain(e.ctx, e.uuid)
	overlay, backing := d.Disks[0].Source, d.Disks[0].BackingChain[0].Path
	e.hv.FailOn("WaitBlockJob", 2, fake.ErrQEMUDied)
	starts, pulls := e.hv.Calls("StartDomain"), e.hv.Calls("BlockPull")
	if _, err := e.a.consolidate(e.ctx, cons, noProgress); err != nil {
		t.Fatalf("consolidation: %v", err)
	}
	if got := e.hv.Calls("StartDomain") - starts; got != 1 {
		t.Fatalf("the VM whose QEMU died was started %d times, want 1", got)
	}
	if got := e.hv.Calls("BlockPull") - pulls; got != 2 {
		t.Fatalf("%d block pulls, want 2 (the one QEMU died under, and again)", got)
	}
	infos, err := qemuimg.Default.Info(e.ctx, overlay, qemuimg.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if infos[0].FullBackingFilename != backing {
		t.Fatalf("the overlay's backing file after QEMU died at the pull's end: %q, want %q", infos[0].FullBackingFilename, backing)
	}
	if d, _ = e.hv.Domain(e.ctx, e.uuid); d.State != hypervisor.StateRunning || len(d.Disks[0].BackingChain) != 0 {
		t.Fatalf("after consolidation: %+v", d)
	}
	// QEMU dies at every pull's end, more often than a consolidation
	// starts it again: the consolidation fails, but the overlay has its
	// backup file back, so the next one (which starts the crashed VM)
	// pulls it rather than run the VM on an overlay that reads zeros.
	if err := e.hv.SetState(e.uuid, hypervisor.StateShutoff); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatalf("quick restore: %v", err)
	}
	for n := 2; n <= 2*(consolidateRestarts+1); n += 2 {
		e.hv.FailOn("WaitBlockJob", n, fake.ErrQEMUDied)
	}
	if _, err := e.a.consolidate(e.ctx, cons, noProgress); !errors.Is(err, fake.ErrQEMUDied) {
		t.Fatalf("consolidation whose QEMU always dies: %v", err)
	}
	infos, err = qemuimg.Default.Info(e.ctx, overlay, qemuimg.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d, _ = e.hv.Domain(e.ctx, e.uuid); d.State != hypervisor.StateCrashed || infos[0].FullBackingFilename != backing {
		t.Fatalf("after giving up: the VM is %s, the overlay's backing file %q (want %q)", d.State, infos[0].FullBackingFilename, backing)
	}
	// And had QEMU rewritten the header unseen (it died as a pull ended
	// but libvirt still said running), the next consolidation finds the
	// backup file in the note beside the overlay.
	if err := qemuimg.Default.Rebase(e.ctx, overlay, "", "", true); err != nil {
		t.Fatal(err)
	}
	pulls = e.hv.Calls("BlockPull")
	if _, err := e.a.consolidate(e.ctx, cons, noProgress); err != nil {
		t.Fatalf("the next consolidation: %v", err)
	}
	if _, err := os.Stat(backingNote(overlay)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the backing note outlives the consolidation: %v", err)
	}
	if d, _ = e.hv.Domain(e.ctx, e.uuid); d.State != hypervisor.StateRunning || len(d.Disks[0].BackingChain) != 0 || e.hv.Calls("BlockPull")-pulls != 1 {
		t.Fatalf("after the next consolidation: %+v, %d pulls", d, e.hv.Calls("BlockPull")-pulls)
	}
	// Without a storage root the agent refuses, rather than guess one.
	if _, err := e.a.consolidate(context.Background(), agentapi.ConsolidateRequest{DomainUUID: e.uuid}, noProgress); err == nil {
		t.Fatal("a consolidation without a storage root ran")
	}
}

// create-vm undoes its steps when the new VM cannot start: no domain, no
// disk file is left.
func TestCreateVMUndoesItsSteps(t *testing.T) {
	e := newHostEnv(t, false)
	out, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	files := []agentapi.RestoreFile{{Disk: "vda", Path: out.(agentapi.TakeBackupResult).Files[0].Path}}
	req := agentapi.CreateVMRequest{InStorage: agentapi.InStorage{Storage: e.storage}, Dir: "backups/" + e.uuid + "/b1", Files: files, Name: "copy", Start: true}
	e.hv.FailOn("StartDomain", 1, nil)
	if _, err := e.a.createVM(e.ctx, req, noProgress); !errors.Is(err, fake.ErrInjected) {
		t.Fatalf("create-vm with a failing start: %v", err)
	}
	if ids, _ := e.hv.DomainsNamed(e.ctx, "copy"); len(ids) != 0 {
		t.Fatalf("the half-made VM is left: %v", ids)
	}
	if left, _ := filepath.Glob(filepath.Join(e.primary, "copy-*")); len(left) != 0 {
		t.Fatalf("the half-made VM's disks are left: %v", left)
	}
	res, err := e.a.createVM(e.ctx, req, noProgress)
	if err != nil {
		t.Fatalf("create-vm: %v", err)
	}
	if r := res.(agentapi.RestoreResult); !r.Started || !r.Defined || len(r.Disks) != 1 {
		t.Fatalf("create-vm result %+v", r)
	}
}

// A merge whose flush left the VM paused (hypervisor.ErrLeftPaused) fails
// with TaskStatus.LeftPaused; the merge asked to resume a paused VM
// (ResumePaused) resumes it, then merges live.
func TestMergeLeftPausedThenResumed(t *testing.T) {
	e := newHostEnv(t, true)
	delta, inc := e.afterFull(t)
	inc.DeferMerge = true
	if _, err := e.a.takeBackup(e.ctx, inc, noProgress); err != nil {
		t.Fatal(err)
	}
	merge := agentapi.MergeBackupRequestOf(inc)
	e.hv.FailOn("WaitBlockJob", 1, fmt.Errorf("flush after the block job on vda: resume: %w", hypervisor.ErrLeftPaused))
	if err := e.a.StartTask(e.ctx, agentapi.MergeBackup.Task("m1", merge)); err != nil {
		t.Fatal(err)
	}
	st := waitTask(t, e.a, "m1")
	if st.State != agentapi.TaskFailed || !st.LeftPaused {
		t.Fatalf("merge whose flush left the VM paused: %+v", st)
	}
	if err := e.hv.SetState(e.uuid, hypervisor.StatePaused); err != nil {
		t.Fatal(err)
	}
	merge.ResumePaused = true
	if err := e.a.StartTask(e.ctx, agentapi.MergeBackup.Task("m2", merge)); err != nil {
		t.Fatal(err)
	}
	if st := waitTask(t, e.a, "m2"); st.State != agentapi.TaskSucceeded {
		t.Fatalf("merge that resumes the VM: %+v", st)
	}
	d, err := e.hv.Domain(e.ctx, e.uuid)
	if err != nil || d.State != hypervisor.StateRunning {
		t.Fatalf("after the merge: %s %v", d.State, err)
	}
	if _, err := os.Stat(delta); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the merged delta is left: %v", err)
	}
}

// waitTask waits for a task of the agent to finish.
func waitTask(t *testing.T, a *Local, id string) agentapi.TaskStatus {
	t.Helper()
	for {
		st, err := a.TaskStatus(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == agentapi.TaskSucceeded || st.State == agentapi.TaskFailed {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}
