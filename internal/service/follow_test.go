package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store/sqlstore"
)

func newFollowService(t *testing.T, clk clock.Clock) (*service.Service, domain.Principal) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := service.New(st, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	acc, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return svc, domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: domain.RoleAdmin}
}

func fakeDomain(uuid, name, state string) agentapi.Domain {
	return agentapi.Domain{UUID: uuid, Name: name, State: state, Disks: []agentapi.Disk{}}
}

// waitVM polls the catalogue until the VM named name satisfies ok (a
// generous deadline: this is not a measure of speed).
func waitVM(t *testing.T, svc *service.Service, admin domain.Principal, name string, ok func(domain.VM, error) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		vm, err := svc.Kernel.VM(context.Background(), admin, name)
		if ok(vm, err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm %s: still %+v %v", name, vm, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCatalogueFollowsAgentChanges: with FollowInventory running (and no
// periodic pass), a change an agent reports is in the catalogue without
// anyone asking: a VM defined, stopped and undefined on a host; an agent
// registered later is followed too, and one put back into service after
// it was taken out is followed again.
func TestCatalogueFollowsAgentChanges(t *testing.T) {
	svc, admin := newFollowService(t, clock.Real{})
	ctx, cancel := context.WithCancel(context.Background())
	a := &agenttest.Fake{Report: agentapi.HostReport{Name: "h1"}}
	if _, err := svc.Hosts.RegisterHost(ctx, "default", a, true); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Hosts.FollowInventory(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()

	const u1, u2 = "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"
	a.SetDomains([]agentapi.Domain{fakeDomain(u1, "web", "running")})
	waitVM(t, svc, admin, "web", func(v domain.VM, err error) bool { return err == nil && v.State == domain.VMRunning })
	a.SetDomains([]agentapi.Domain{fakeDomain(u1, "web", "shutoff")})
	waitVM(t, svc, admin, "web", func(v domain.VM, err error) bool { return err == nil && v.State == domain.VMStopped })
	a.SetDomains(nil)
	waitVM(t, svc, admin, "web", func(v domain.VM, err error) bool { return err == nil && v.State == domain.VMMissing })

	// A host registered after the followers started.
	b := &agenttest.Fake{Report: agentapi.HostReport{Name: "h2"}}
	hb, err := svc.Hosts.RegisterHost(ctx, "default", b, false)
	if err != nil {
		t.Fatal(err)
	}
	b.SetDomains([]agentapi.Domain{fakeDomain(u2, "db", "running")})
	waitVM(t, svc, admin, "db", func(v domain.VM, err error) bool { return err == nil && v.State == domain.VMRunning })

	// Taken out of service and back (a reconnected agent): followed again.
	svc.Hosts.DropAgent(ctx, hb.ID, "", "test")
	if _, err := svc.Hosts.RegisterHost(ctx, "default", b, false); err != nil {
		t.Fatal(err)
	}
	b.SetDomains([]agentapi.Domain{fakeDomain(u2, "db", "paused")})
	waitVM(t, svc, admin, "db", func(v domain.VM, err error) bool { return err == nil && v.State == domain.VMPaused })
}

// countingAgent counts inventory reads.
type countingAgent struct {
	*agenttest.Fake
	reads atomic.Int64
}

func (c *countingAgent) Inventory(ctx context.Context) ([]agentapi.Domain, error) {
	c.reads.Add(1)
	return c.Fake.Inventory(ctx)
}

// TestShowVMRereadsHosts: `vm show` of a name the catalogue does not know
// re-reads the hosts first (a VM defined a moment ago is found at once),
// at most once per host and kernel.RereadEvery (a flood of bad names
// costs nothing more), and never for users.
func TestShowVMRereadsHosts(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	svc, admin := newFollowService(t, clk)
	ctx := context.Background()
	a := &countingAgent{Fake: &agenttest.Fake{Report: agentapi.HostReport{Name: "h1"}}}
	if _, err := svc.Hosts.RegisterHost(ctx, "default", a, true); err != nil {
		t.Fatal(err)
	}
	// Defined on the host, not read yet.
	a.SetDomains([]agentapi.Domain{fakeDomain("11111111-0000-4000-8000-000000000001", "web", "running")})
	vm, err := svc.VMs.ShowVM(ctx, admin, "web")
	if err != nil || vm.Name != "web" || vm.State != domain.VMRunning {
		t.Fatalf("show of a VM defined a moment ago: %+v %v", vm, err)
	}
	if n := a.reads.Load(); n != 1 {
		t.Fatalf("inventory reads: %d, want 1", n)
	}
	// Within the period: bad names answer from the catalogue.
	for _, name := range []string{"nope", "nope2", "11111111-0000-4000-8000-0000000000ff"} {
		if _, err := svc.VMs.ShowVM(ctx, admin, name); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("show %s: %v, want not found", name, err)
		}
	}
	if n := a.reads.Load(); n != 1 {
		t.Fatalf("inventory reads after bad names within the period: %d, want 1", n)
	}
	// A period later one more re-read, then none again.
	clk.Advance(kernel.RereadEvery)
	for _, name := range []string{"nope", "nope2"} {
		if _, err := svc.VMs.ShowVM(ctx, admin, name); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("show %s: %v, want not found", name, err)
		}
	}
	if n := a.reads.Load(); n != 2 {
		t.Fatalf("inventory reads a period later: %d, want 2", n)
	}
	// Users never re-read: nothing new could be theirs.
	clk.Advance(kernel.RereadEvery)
	acc := domain.Account{ID: domain.NewID(), Name: "acme", Created: clk.Now()}
	user := domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: domain.RoleUser}
	if _, err := svc.VMs.ShowVM(ctx, user, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("user show: %v, want not found", err)
	}
	if n := a.reads.Load(); n != 2 {
		t.Fatalf("inventory reads after a user's bad name: %d, want 2", n)
	}
	// A known VM answers from the catalogue.
	if _, err := svc.VMs.ShowVM(ctx, admin, "web"); err != nil {
		t.Fatal(err)
	}
	if n := a.reads.Load(); n != 2 {
		t.Fatalf("inventory reads after a known name: %d, want 2", n)
	}
}
