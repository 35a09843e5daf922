package lv

import (
	"context"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/hypervisor/hvtest"
	"github.com/knib/knib/internal/testbed"
)

// The events conformance suite on qemu:///system: real life-cycle events
// of a firmware-only domain.
func TestEventsConformance(t *testing.T) {
	testbed.Require(t)
	hvtest.RunEvents(t, func(t *testing.T) hvtest.EventsHV { return openT(t, "qemu:///system") }, hvtest.ChainEnv{Prefix: "knib-t-ev-hv-"})
}

// TestEventsResubscribe: when the watch's connection drops (as when
// libvirtd restarts), the watch dials again, says so with a resync, and
// reports the changes made after it.
func TestEventsResubscribe(t *testing.T) {
	testbed.Require(t)
	h := openT(t, "qemu:///system")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	events, err := h.WatchDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Kind != hypervisor.EventResync {
		t.Fatalf("first event %+v, want a resync", ev)
	}
	h.watches.drop()
	for ev := nextEvent(t, events); ev.Kind != hypervisor.EventResync; ev = nextEvent(t, events) {
	}

	// The command connection was not touched; a domain defined now is
	// reported on the new subscription.
	name := "knib-t-ev-hv-resub"
	if old, err := h.DomainsNamed(ctx, name); err == nil {
		for _, u := range old {
			_ = h.UndefineDomain(ctx, u)
		}
	}
	x := libvirtxml.Domain{Type: "qemu", Name: name, Memory: &libvirtxml.DomainMemory{Value: 64, Unit: "MiB"},
		OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"}}}
	doc, err := x.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	u, err := h.DefineDomain(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.UndefineDomain(context.Background(), u); err != nil {
			t.Errorf("undefine %s: %v", name, err)
		}
	})
	for ev := nextEvent(t, events); ev.UUID != u || ev.Kind != hypervisor.EventDefined; ev = nextEvent(t, events) {
	}
}

func nextEvent(t *testing.T, events <-chan hypervisor.DomainEvent) hypervisor.DomainEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the event channel closed")
		}
		return ev
	case <-time.After(2 * time.Minute):
		t.Fatal("no event after 2 minutes")
	}
	return hypervisor.DomainEvent{}
}
