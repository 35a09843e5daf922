package service_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/store"
)

// haEnv is one catalogue with work recorded by a server "other": an
// operation, the VM lock it holds and a backup it restores from.
type haEnv struct {
	*env
	clk    *clock.Fake
	op     domain.Operation
	lock   store.VMLock
	backup domain.Backup
}

const lease = 30 * time.Second

func newHAEnv(t *testing.T, owner string) *haEnv {
	t.Helper()
	e := newEnv(t, "")
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	now := clk.Now()
	h := &haEnv{env: e, clk: clk}
	h.op = domain.Operation{ID: domain.NewID(), Kind: "backup.restore", VMID: e.vm.ID, AccountID: e.admin.AccountID,
		State: domain.OpRunning, Created: now, Updated: now, Owner: owner, LeaseUntil: now.Add(lease)}
	if err := e.st.CreateOperation(ctx, h.op); err != nil {
		t.Fatal(err)
	}
	h.lock = store.VMLock{VMID: e.vm.ID, Holder: "a restore, operation " + h.op.ID, Owner: owner, Until: now.Add(lease)}
	if err := e.st.AcquireVMFor(ctx, e.vm.ID, h.lock.Holder, owner, h.lock.Until); err != nil {
		t.Fatal(err)
	}
	h.backup = domain.Backup{ID: domain.NewID(), VMID: e.vm.ID, VMName: e.vm.Name, AccountID: e.vm.AccountID, OfferingID: e.vm.OfferingID,
		HostID: e.vm.HostID, Type: domain.BackupFull, Status: domain.BackupRestoring, Dir: "b", Created: now, Updated: now}
	if err := e.st.CreateBackup(ctx, h.backup); err != nil {
		t.Fatal(err)
	}
	return h
}

// server is a service over the shared catalogue, as one knib server
// process: node and owner name it in leases.
func (h *haEnv) server(node, owner string) *service.Service {
	s := service.New(h.st, h.clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Kernel.SetJobLease(lease)
	s.Kernel.SetIdentity(node, owner)
	return s
}

// state returns the operation's state, the VM's lock and the backup's status.
func (h *haEnv) state(t *testing.T) (domain.OperationState, string, domain.BackupStatus) {
	t.Helper()
	ctx := context.Background()
	op, err := h.st.Operation(ctx, h.op.ID)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := h.st.VM(ctx, h.vm.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.st.Backup(ctx, h.backup.ID)
	if err != nil {
		t.Fatal(err)
	}
	return op.State, vm.Busy, b.Status
}

func TestLiveLeaseOfAnotherServerIsUntouched(t *testing.T) {
	h := newHAEnv(t, "hostb/nodeB/200/aaaaaaaa")
	me := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	h.clk.Advance(lease - time.Second)
	n, err := me.Recovery.RecoverOrphans(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, busy, bs := h.state(t)
	if n != 0 || st != domain.OpRunning || busy != h.lock.Holder || bs != domain.BackupRestoring {
		t.Fatalf("a live lease was taken over: released %d, op %s, vm busy %q, backup %s", n, st, busy, bs)
	}
}

func TestRenewedLeaseOutlivesItsFirstTerm(t *testing.T) {
	owner := "hostb/nodeB/200/aaaaaaaa"
	h := newHAEnv(t, owner)
	other := h.server("nodeB", owner)
	me := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	h.clk.Advance(lease / 3)
	if err := other.Recovery.RenewLeases(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(lease) // past the first term, within the renewed one
	if _, err := me.Recovery.RecoverOrphans(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, busy, _ := h.state(t); st != domain.OpRunning || busy == "" {
		t.Fatalf("a renewed lease was taken over: op %s, vm busy %q", st, busy)
	}
	h.clk.Advance(lease)
	if n, err := me.Recovery.RecoverOrphans(context.Background()); err != nil || n != 1 {
		t.Fatalf("the lease ran out and was not recovered: released %d, %v", n, err)
	}
}

func TestExpiredLeaseIsRecoveredOnceByTwoRecoverers(t *testing.T) {
	h := newHAEnv(t, "hostb/nodeB/200/aaaaaaaa")
	a := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	c := h.server("nodeC", "hostc/nodeC/300/cccccccc")
	h.clk.Advance(lease + time.Second)
	var wg sync.WaitGroup
	released := make([]int, 2)
	for i, s := range []*service.Service{a, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.Recovery.RecoverOrphans(context.Background())
			if err != nil {
				t.Error(err)
			}
			released[i] = n
		}()
	}
	wg.Wait()
	if released[0]+released[1] != 1 {
		t.Fatalf("the lock was released %d times, want once", released[0]+released[1])
	}
	st, busy, bs := h.state(t)
	if st != domain.OpFailed || busy != "" || bs != domain.BackupBackedUp {
		t.Fatalf("after recovery: op %s, vm busy %q, backup %s", st, busy, bs)
	}
	op, _ := h.st.Operation(context.Background(), h.op.ID)
	if op.Error == "" {
		t.Fatal("the failed operation gives no reason")
	}
	// The conditional update is what makes it once: a second try with the
	// same view of the operation does nothing.
	ok, err := h.st.FailOperationIf(context.Background(), h.op.ID, h.op.Owner, h.op.LeaseUntil, "again", h.clk.Now())
	if err != nil || ok {
		t.Fatalf("the operation was failed a second time: %v %v", ok, err)
	}
	if ok, err := h.st.TakeVMLock(context.Background(), h.lock); err != nil || ok {
		t.Fatalf("the lock was taken a second time: %v %v", ok, err)
	}
}

func TestPreviousLifeOfThisNodeIsRecoveredAtOnce(t *testing.T) {
	h := newHAEnv(t, "hosta/nodeA/99/oldoldol")
	// Another node waits for the lease…
	other := h.server("nodeB", "hostb/nodeB/200/aaaaaaaa")
	if n, _ := other.Recovery.RecoverOrphans(context.Background()); n != 0 {
		t.Fatalf("another node took over a live lease")
	}
	// …the restarted server of the same node does not.
	me := h.server("nodeA", "hosta/nodeA/100/newnewne")
	n, err := me.Recovery.RecoverOrphans(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("previous life not recovered at once: released %d, %v", n, err)
	}
	if st, busy, bs := h.state(t); st != domain.OpFailed || busy != "" || bs != domain.BackupBackedUp {
		t.Fatalf("after recovery: op %s, vm busy %q, backup %s", st, busy, bs)
	}
}

func TestOwnWorkIsNeverRecovered(t *testing.T) {
	owner := "hosta/nodeA/100/bbbbbbbb"
	h := newHAEnv(t, owner)
	me := h.server("nodeA", owner)
	h.clk.Advance(10 * lease)
	if n, _ := me.Recovery.RecoverOrphans(context.Background()); n != 0 {
		t.Fatal("a server recovered its own live work")
	}
	if st, busy, _ := h.state(t); st != domain.OpRunning || busy == "" {
		t.Fatalf("own work touched: op %s, busy %q", st, busy)
	}
}

func TestOperationsAndLocksNameTheirOwner(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	e.svc.Kernel.SetIdentity("nodeA", "hosta/nodeA/100/bbbbbbbb")
	op, err := e.svc.Backups.CreateBackup(ctx, e.admin, "web", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if op.Owner != "hosta/nodeA/100/bbbbbbbb" || op.LeaseUntil.IsZero() {
		t.Fatalf("operation owner %q lease %v", op.Owner, op.LeaseUntil)
	}
	got, err := e.st.Operation(ctx, op.ID)
	if err != nil || got.Owner != op.Owner {
		t.Fatalf("stored owner %q: %v", got.Owner, err)
	}
	waitOp(t, e, op)
}

// A backup Restoring without its VM's lock (a new VM restored from it) stays
// Restoring while a live create-vm operation of any server runs, and goes
// back to BackedUp once that operation's owner is dead.
func TestRestoringBackupOfALiveCreateVMIsUntouched(t *testing.T) {
	h := newHAEnv(t, "hostb/nodeB/200/aaaaaaaa")
	ctx := context.Background()
	// The restore of the VM itself ended; a create-vm of server B runs.
	if err := h.st.ReleaseVM(ctx, h.vm.ID, h.lock.Holder); err != nil {
		t.Fatal(err)
	}
	if err := h.st.UpdateOperation(ctx, domain.Operation{ID: h.op.ID, State: domain.OpSucceeded, Updated: h.clk.Now()}); err != nil {
		t.Fatal(err)
	}
	now := h.clk.Now()
	create := domain.Operation{ID: domain.NewID(), Kind: "backup.create-vm", AccountID: h.admin.AccountID, State: domain.OpRunning,
		Created: now, Updated: now, Owner: "hostb/nodeB/200/aaaaaaaa", LeaseUntil: now.Add(lease)}
	if err := h.st.CreateOperation(ctx, create); err != nil {
		t.Fatal(err)
	}
	me := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	if _, err := me.Recovery.RecoverOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, bs := h.state(t); bs != domain.BackupRestoring {
		t.Fatalf("the backup a live create-vm reads is %s", bs)
	}
	h.clk.Advance(2 * lease)
	if _, err := me.Recovery.RecoverOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, bs := h.state(t); bs != domain.BackupBackedUp {
		t.Fatalf("after the create-vm's owner died the backup is %s", bs)
	}
	if op, _ := h.st.Operation(ctx, create.ID); op.State != domain.OpFailed {
		t.Fatalf("the dead create-vm is %s", op.State)
	}
}

// The validation cleanup keeps the validation VMs of jobs whose lease is
// alive on another server, not those of expired leases or of a previous
// life of this node.
func TestValidationCleanupKeepsLiveJobs(t *testing.T) {
	h := newHAEnv(t, "hostb/nodeB/200/aaaaaaaa")
	ctx := context.Background()
	now := h.clk.Now()
	claim := func(owner string, until time.Time) string {
		b := domain.Backup{ID: domain.NewID(), VMID: h.vm.ID, VMName: h.vm.Name, AccountID: h.vm.AccountID, OfferingID: h.vm.OfferingID,
			HostID: h.vm.HostID, Type: domain.BackupFull, Status: domain.BackupBackedUp, Dir: "d", Created: now, Updated: now}
		if err := h.st.CreateBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		j := jobs.Job{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: b.ID, VMID: h.vm.ID, ZoneID: "z", State: jobs.Queued, Scheduled: now}
		if err := h.st.EnqueueJob(ctx, j); err != nil {
			t.Fatal(err)
		}
		if ok, err := h.st.ClaimJob(ctx, j.ID, owner, h.vm.HostID, now, until); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		return b.ID
	}
	live := claim("hostb/nodeB/200/aaaaaaaa", now.Add(lease))
	claim("hostc/nodeC/300/cccccccc", now.Add(-time.Second)) // lease ran out
	claim("hosta/nodeA/99/oldoldol", now.Add(lease))         // previous life of this node
	var got agentapi.CleanupValidationRequest
	fake := &agenttest.Fake{Task: func(req agentapi.Task) agentapi.TaskStatus {
		got = req.Request.(agentapi.CleanupValidationRequest)
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded}
	}}
	me := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	me.Jobs.CleanupValidations(ctx, fake)
	if len(got.Keep) != 1 || got.Keep[0] != live {
		t.Fatalf("keep %v, want only %s", got.Keep, live)
	}
}

// A job that a previous life of this node was running is reaped at once by
// the restarted server, not by another node before its lease runs out.
func TestJobOfPreviousLifeIsReapedAtOnce(t *testing.T) {
	h := newHAEnv(t, "hostb/nodeB/200/aaaaaaaa")
	ctx := context.Background()
	now := h.clk.Now()
	j := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: h.backup.ID, VMID: h.vm.ID, ZoneID: "z", State: jobs.Queued, Scheduled: now}
	if err := h.st.EnqueueJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if ok, err := h.st.ClaimJob(ctx, j.ID, "hosta/nodeA/99/oldoldol", h.vm.HostID, now, now.Add(lease)); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	state := func() jobs.Job {
		list, err := h.st.Jobs(ctx, store.JobFilter{ID: j.ID, All: true})
		if err != nil || len(list) != 1 {
			t.Fatalf("job: %v %v", list, err)
		}
		return list[0]
	}
	other := h.server("nodeB", "hostb/nodeB/200/aaaaaaaa")
	if err := other.Jobs.RunJobs(ctx, other.Kernel.Owner()); err != nil {
		t.Fatal(err)
	}
	if got := state(); got.State != jobs.Running {
		t.Fatalf("another node reaped a live lease: %+v", got)
	}
	me := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	if err := me.Jobs.RunJobs(ctx, me.Kernel.Owner()); err != nil {
		t.Fatal(err)
	}
	if got := state(); got.State != jobs.Queued || got.LeaseOwner != "" || !strings.Contains(got.LastError, "lost") {
		t.Fatalf("the previous life's job was not reaped: %+v", got)
	}
}

// The specification's lost-job rule: a job still running 2.5 times its
// family's timeout after it started is reaped, even while its runner (on
// another node) keeps the lease alive.
func TestOverdueJobIsReapedDespiteItsLease(t *testing.T) {
	h := newHAEnv(t, "hostb/nodeB/200/aaaaaaaa")
	ctx := context.Background()
	now := h.clk.Now()
	j := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: h.backup.ID, VMID: h.vm.ID, ZoneID: "z", State: jobs.Queued, Scheduled: now}
	if err := h.st.EnqueueJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if ok, err := h.st.ClaimJob(ctx, j.ID, "hostb/nodeB/200/aaaaaaaa", h.vm.HostID, now, now.Add(30*24*time.Hour)); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	state := func() jobs.Job {
		got, err := h.st.Job(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	me := h.server("nodeA", "hosta/nodeA/100/bbbbbbbb")
	timeout := 28800 * time.Second // backup.compression.timeout's default
	h.clk.Advance(time.Duration(float64(timeout)*jobs.LostFactor) - time.Second)
	if err := me.Jobs.RunJobs(ctx, me.Kernel.Owner()); err != nil {
		t.Fatal(err)
	}
	if got := state(); got.State != jobs.Running {
		t.Fatalf("reaped before 2.5 times its timeout: %+v", got)
	}
	h.clk.Advance(2 * time.Second)
	if err := me.Jobs.RunJobs(ctx, me.Kernel.Owner()); err != nil {
		t.Fatal(err)
	}
	if got := state(); got.State == jobs.Running || !strings.Contains(got.LastError, "times its timeout") {
		t.Fatalf("an overdue job was not reaped: %+v", got)
	}
}
