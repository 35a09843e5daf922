package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/hypervisor/fake"
)

// TestWaitInventoryChange: the change mark follows the hypervisor's domain
// events: a new life answers at once, a change wakes a waiter, a lost
// subscription (resync) moves the mark too, no change answers the same
// mark after the wait bound, and Close ends the waits.
func TestWaitInventoryChange(t *testing.T) {
	hv := fake.New()
	a := NewLocal(Config{Name: "h"}, hv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	a.changes.wait = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m0, err := a.WaitInventoryChange(ctx, agentapi.ChangeMark{})
	if err != nil || m0.Epoch == "" {
		t.Fatalf("first call: %+v %v", m0, err)
	}
	// A mark of another life (the agent restarted) answers at once.
	if m, err := a.WaitInventoryChange(ctx, agentapi.ChangeMark{Epoch: "old", Seq: m0.Seq}); err != nil || m != m0 {
		t.Fatalf("mark of another life: %+v %v, want %+v", m, err, m0)
	}
	// Nothing happened: the same mark comes back after the wait bound.
	if m, err := a.WaitInventoryChange(ctx, m0); err != nil || m != m0 {
		t.Fatalf("without a change: %+v %v, want %+v", m, err, m0)
	}

	// A domain defined outside the agent wakes a waiter.
	a.changes.wait = time.Minute
	got := make(chan agentapi.ChangeMark, 1)
	go func() {
		m, err := a.WaitInventoryChange(ctx, m0)
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		got <- m
	}()
	hv.PutDomain(hypervisor.Domain{UUID: "6695eb01-f6a4-8304-79aa-97f2502e193f", Name: "web"})
	m1 := <-got
	if m1.Epoch != m0.Epoch || m1 == m0 {
		t.Fatalf("after a define: %+v, before %+v", m1, m0)
	}

	// A lost subscription moves the mark on as well.
	hv.DropWatches()
	m2, err := a.WaitInventoryChange(ctx, m1)
	if err != nil || m2 == m1 {
		t.Fatalf("after a resync: %+v %v, before %+v", m2, err, m1)
	}

	// Close ends a waiting call.
	go func() {
		_, err := a.WaitInventoryChange(ctx, m2)
		if !errors.Is(err, errClosed) {
			t.Errorf("wait across Close: %v, want errClosed", err)
		}
		close(got)
	}()
	a.Close()
	<-got
	if _, err := a.WaitInventoryChange(ctx, m2); !errors.Is(err, errClosed) {
		t.Fatalf("after Close: %v, want errClosed", err)
	}
}

// TestDomainIsItsInventoryEntry: Domain answers what Inventory reports of
// the same domain, and ErrUnknownDomain for one the host does not define.
func TestDomainIsItsInventoryEntry(t *testing.T) {
	hv := fake.New()
	a := NewLocal(Config{Name: "h"}, hv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	hv.PutDomain(hypervisor.Domain{UUID: "6695eb01-f6a4-8304-79aa-97f2502e193f", Name: "web", State: hypervisor.StateRunning,
		Disks: []hypervisor.Disk{{Target: "vda", Source: "/d/web.qcow2", Format: "qcow2", BackingChain: []hypervisor.Layer{{Path: "/d/base.qcow2", Format: "qcow2"}}}}})
	hv.PutDomain(hypervisor.Domain{UUID: "7795eb01-f6a4-8304-79aa-97f2502e193f", Name: "db"})
	inv, err := a.Inventory(ctx)
	if err != nil || len(inv) != 2 {
		t.Fatalf("inventory %+v %v", inv, err)
	}
	for _, want := range inv {
		got, err := a.Domain(ctx, want.UUID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Domain(%s) = %+v %v, inventory has %+v", want.UUID, got, err, want)
		}
	}
	if _, err := a.Domain(ctx, "8895eb01-f6a4-8304-79aa-97f2502e193f"); !errors.Is(err, agentapi.ErrUnknownDomain) {
		t.Fatalf("an unknown domain: %v", err)
	}
}
