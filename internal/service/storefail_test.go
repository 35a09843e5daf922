package service_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/restores"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/faultstore"
	"github.com/knib/knib/internal/store/sqlstore"
)

// The store-failure twin of the crash-point tests: every operation below
// is run once per store write it performs, with that write failing. The
// caller gets an error, or the operation ends with one, or it succeeded
// without that write mattering; then, once the store works again and
// recovery has run, no VM is stuck, no backup is lost, no operation is left
// running and no agent task is left behind. (Files on disk are the agent's:
// the fake agent has none, and the real agent's reconciliation removes what
// a failed operation left, which the integration crash tests check.)

type failEnv struct {
	svc   *service.Service
	fs    *faultstore.Store
	agent *agenttest.Fake
	admin domain.Principal
	vm    domain.VM
	state string // the fake domain's state
}

const delta0 = "/img/vda.qcow2"

func newFailEnv(t *testing.T, state string) *failEnv {
	t.Helper()
	ctx := context.Background()
	inner, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	fs := faultstore.New(inner)
	svc := service.New(fs, clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	svc.Kernel.SetIdentity("node", "host/node/1/aaaaaaaa")
	acc, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := &failEnv{svc: svc, fs: fs, state: state}
	disk := agentapi.Disk{Target: "vda", Device: "disk", SourceType: "file", Source: delta0, Format: "qcow2", VirtualSize: 1 << 20, BackingChain: []agentapi.Layer{}}
	e.agent = &agenttest.Fake{
		Report:  agentapi.HostReport{Name: "localhost", StoragePath: "/st"},
		Domains: []agentapi.Domain{{UUID: vmID, Name: "web", State: state, Disks: []agentapi.Disk{disk}}},
		Task:    e.task,
	}
	if _, err := svc.Hosts.RegisterHost(ctx, "default", e.agent, true); err != nil {
		t.Fatal(err)
	}
	if err := svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Storages.EnsureDefaultStorage(ctx, "default", "/st"); err != nil {
		t.Fatal(err)
	}
	e.admin = domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: domain.RoleAdmin}
	o, err := svc.Offerings.CreateOffering(ctx, e.admin, domain.OfferingSpec{Name: "o", AllowQuickRestore: true, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.vm, err = svc.VMs.AssignVM(ctx, e.admin, "web", o.ID); err != nil {
		t.Fatal(err)
	}
	return e
}

// task answers every command at once with a plausible typed result.
func (e *failEnv) task(t agentapi.Task) agentapi.TaskStatus {
	ok := func(res any) agentapi.TaskStatus {
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100, Result: res}
	}
	switch req := t.Request.(type) {
	case agentapi.TakeBackupRequest:
		res := agentapi.TakeBackupResult{}
		for _, d := range req.Disks {
			res.Files = append(res.Files, agentapi.BackupFile{Disk: d.Target, Path: req.Dir + "/" + d.Target + ".qcow2", Full: d.Full, Size: 1 << 16, VirtualSize: 1 << 20, Hash: "xxh3-128:1"})
			top := "/img/knib-delta." + req.DomainUUID + "." + d.Target + "." + req.BackupID + ".qcow2"
			base := d.Frozen
			if d.MergeInto != "" && d.Delta == d.Frozen {
				base = d.MergeInto
			}
			if !req.MergeNewDelta {
				res.Chains = append(res.Chains, agentapi.DiskChain{Target: d.Target, Top: top, Base: base})
			}
		}
		return ok(res)
	case agentapi.CompressRequest:
		res := agentapi.CompressResult{}
		for _, f := range req.Files {
			res.Files = append(res.Files, agentapi.CompressedFile{Disk: f.Disk, Path: f.Path, Size: 1 << 15, UncompressedSize: 1 << 16, Hash: "xxh3-128:2", Library: "zstd"})
		}
		return ok(res)
	case agentapi.FinalizeCompressionRequest:
		res := agentapi.CompressResult{}
		for _, f := range req.Files {
			res.Files = append(res.Files, agentapi.CompressedFile{Disk: f.Disk, Path: f.Path, Size: 1 << 15, Hash: "xxh3-128:2", Library: "zstd"})
		}
		return ok(res)
	case agentapi.RestoreRequest:
		return ok(agentapi.RestoreResult{UUID: req.DomainUUID, Name: "web", Defined: true})
	}
	return ok(nil) // reconcile, delete files, consolidate, hash, cleanup: nothing to report
}

func (e *failEnv) wait(t *testing.T, op domain.Operation) domain.Operation {
	t.Helper()
	e.svc.Kernel.Wait()
	got, err := e.svc.Kernel.Operation(context.Background(), e.admin, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// backup takes one backup with a healthy store and returns its id.
func (e *failEnv) backup(t *testing.T) string {
	t.Helper()
	op, err := e.svc.Backups.CreateBackup(context.Background(), e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if op = e.wait(t, op); op.State != domain.OpSucceeded {
		t.Fatalf("backup: %+v", op)
	}
	list, err := e.fs.ListBackups(context.Background(), store.BackupFilter{VMID: vmID})
	if err != nil || len(list) == 0 {
		t.Fatalf("backups: %v %v", list, err)
	}
	return list[len(list)-1].ID
}

// runJobs runs the queued jobs until none is left that can run now.
func (e *failEnv) runJobs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if err := e.svc.Jobs.RunJobs(ctx, e.svc.Kernel.Owner()); err != nil {
			t.Logf("run jobs: %v", err)
		}
		e.svc.Jobs.WaitJobs()
	}
}

type storeFailCase struct {
	name  string
	state string
	// setup prepares with a healthy store; it returns the backups that the
	// operation must not lose.
	setup func(t *testing.T, e *failEnv) (keep []string)
	// run performs the operation; it returns its error, the caller's or
	// the operation's.
	run func(t *testing.T, e *failEnv) error
}

func opErr(t *testing.T, e *failEnv, op domain.Operation, err error) error {
	if err != nil {
		return err
	}
	if op = e.wait(t, op); op.State == domain.OpFailed {
		if op.Error == "" {
			t.Fatalf("operation failed without a message: %+v", op)
		}
		return &opError{op.Error}
	}
	return nil
}

type opError struct{ msg string }

func (e *opError) Error() string { return e.msg }

func storeFailCases() []storeFailCase {
	restore := func(quick bool) func(t *testing.T, e *failEnv) error {
		return func(t *testing.T, e *failEnv) error {
			list, _ := e.fs.ListBackups(context.Background(), store.BackupFilter{VMID: vmID})
			op, err := e.svc.Restores.RestoreBackup(context.Background(), e.admin, list[len(list)-1].ID, restores.RestoreOptions{Quick: quick})
			return opErr(t, e, op, err)
		}
	}
	oneBackup := func(t *testing.T, e *failEnv) []string { return []string{e.backup(t)} }
	return []storeFailCase{
		{name: "backup", state: "running",
			setup: oneBackup,
			run: func(t *testing.T, e *failEnv) error {
				op, err := e.svc.Backups.CreateBackup(context.Background(), e.admin, "web", false, false)
				return opErr(t, e, op, err)
			}},
		{name: "restore", state: "shutoff", setup: oneBackup, run: restore(false)},
		{name: "quick restore", state: "shutoff", setup: oneBackup, run: restore(true)},
		{name: "delete", state: "running",
			setup: func(t *testing.T, e *failEnv) []string {
				first := e.backup(t)
				e.backup(t)
				return []string{first}
			},
			run: func(t *testing.T, e *failEnv) error {
				list, _ := e.fs.ListBackups(context.Background(), store.BackupFilter{VMID: vmID})
				op, err := e.svc.Backups.DeleteBackups(context.Background(), e.admin, []string{list[len(list)-1].ID}, false)
				return opErr(t, e, op, err)
			}},
		{name: "compression", state: "running",
			setup: oneBackup,
			run: func(t *testing.T, e *failEnv) error {
				e.runJobs(t)
				return nil
			}},
	}
}

func TestEveryStoreWriteFailureIsRecovered(t *testing.T) {
	if testing.Short() {
		t.Skip("runs each operation once per store write")
	}
	ctx := context.Background()
	for _, c := range storeFailCases() {
		t.Run(c.name, func(t *testing.T) {
			// Count the writes of a healthy run.
			e := newFailEnv(t, c.state)
			c.setup(t, e)
			e.fs.FailWrite(0)
			if err := c.run(t, e); err != nil {
				t.Fatalf("healthy run: %v", err)
			}
			writes := e.fs.Writes()
			t.Logf("%s performs %d store writes; each fails once in turn", c.name, writes)
			if writes == 0 {
				t.Fatal("the operation wrote nothing")
			}
			for n := 1; n <= writes; n++ {
				e := newFailEnv(t, c.state)
				keep := c.setup(t, e)
				e.fs.FailWrite(n)
				err := c.run(t, e)
				failed := e.fs.Failed()
				e.fs.Heal()
				if len(failed) == 0 {
					continue // this run wrote less (a progress message fewer)
				}
				if err != nil && strings.TrimSpace(err.Error()) == "" {
					t.Fatalf("write %d (%s): an empty error", n, failed[0])
				}
				// Recovery, as a server runs it at start and periodically.
				if _, rerr := e.svc.Recovery.RecoverOrphans(ctx); rerr != nil {
					t.Fatalf("write %d (%s): recover orphans: %v", n, failed[0], rerr)
				}
				e.svc.Recovery.Reconcile(ctx)
				e.runJobs(t)
				e.svc.Recovery.Reconcile(ctx)
				checkNothingStuck(t, e, keep, n, failed[0], err)
			}
		})
	}
}

func checkNothingStuck(t *testing.T, e *failEnv, keep []string, n int, write string, opErr error) {
	t.Helper()
	ctx := context.Background()
	where := func() string {
		return "write " + strconv.Itoa(n) + " (" + write + "), operation error: " + errText(opErr)
	}
	vm, err := e.fs.VM(ctx, vmID)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Busy != "" {
		t.Errorf("%s: the VM stays locked: %q", where(), vm.Busy)
	}
	switch vm.WorkState {
	case "":
	case domain.VMBackupError, domain.VMRestoreError:
		if vm.LastError == "" {
			t.Errorf("%s: the VM is %s without a reason", where(), vm.WorkState)
		}
	default:
		t.Errorf("%s: the VM is stuck %s", where(), vm.WorkState)
	}
	ops, err := e.fs.ListOperations(ctx, store.OperationFilter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if op.State == domain.OpPending || op.State == domain.OpRunning {
			t.Errorf("%s: operation %s (%s) is left %s", where(), op.ID, op.Kind, op.State)
		}
	}
	list, err := e.fs.ListBackups(ctx, store.BackupFilter{VMID: vmID})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]domain.Backup{}
	for _, b := range list {
		byID[b.ID] = b
		if b.Status == domain.BackupBackingUp || b.Status == domain.BackupRestoring {
			t.Errorf("%s: backup %s is left %s", where(), b.ID, b.Status)
		}
		if b.CompressionStatus == domain.Compressing || b.CompressionStatus == domain.FinalizingCompression {
			if js, _ := e.fs.Jobs(ctx, store.JobFilter{BackupID: b.ID, All: true}); !hasLiveJob(js) {
				t.Errorf("%s: backup %s is %s with no job to finish it", where(), b.ID, b.CompressionStatus)
			}
		}
	}
	for _, id := range keep {
		if b, ok := byID[id]; !ok || b.Status != domain.BackupBackedUp {
			t.Errorf("%s: backup %s was lost: %+v", where(), id, b)
		}
	}
}

func hasLiveJob(js []jobs.Job) bool {
	for _, j := range js {
		if j.State == jobs.Queued || j.State == jobs.Running {
			return true
		}
	}
	return false
}

func errText(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
