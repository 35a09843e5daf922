package hvtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/knib/knib/internal/hypervisor"
)

// EventsHV is what the events conformance suite drives: it changes domains
// with ChainOps and Transient and watches them with Watcher.
type EventsHV interface {
	ChainHV
	hypervisor.Watcher
}

// eventWait bounds the wait for one expected event (generous: it is not a
// measure of speed, only a guard against a test hanging).
const eventWait = 2 * time.Minute

// RunEvents checks the Watcher contract (internal/hypervisor/events.go):
// the first event is a resync; defining, starting, stopping and undefining
// a domain are each reported with its uuid and name; a watch ends with its
// context and at Close, and Close refuses new watches. Domains are named
// env.Prefix+"..."; env.Dir is not used. The same suite runs on the fake
// and on the libvirt adapter. Events of other domains (a shared daemon)
// are skipped.
func RunEvents(t *testing.T, open func(t *testing.T) EventsHV, env ChainEnv) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		t.Cleanup(cancel)
		return c
	}
	opened := func(t *testing.T) EventsHV {
		hv := open(t)
		t.Cleanup(func() {
			if err := hv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return hv
	}

	t.Run("LifecycleOfADomain", func(t *testing.T) {
		hv := opened(t)
		name := env.Prefix + "life"
		if old, err := hv.DomainsNamed(ctx(t), name); err == nil {
			for _, u := range old {
				remove(t, hv, u)
			}
		}
		wctx, stop := context.WithCancel(ctx(t))
		defer stop()
		events, err := hv.WatchDomains(wctx)
		if err != nil {
			t.Fatalf("WatchDomains: %v", err)
		}
		first := next(t, events)
		if first.Kind != hypervisor.EventResync || first.UUID != "" {
			t.Fatalf("first event %+v, want a resync", first)
		}
		doc, err := domainXML(name, nil, "", "")
		if err != nil {
			t.Fatal(err)
		}
		u, err := hv.DefineDomain(ctx(t), doc)
		if err != nil {
			t.Fatalf("DefineDomain: %v", err)
		}
		t.Cleanup(func() { remove(t, hv, u) })
		await(t, events, u, name, hypervisor.EventDefined)
		if err := hv.StartDomain(ctx(t), u); err != nil {
			t.Fatalf("StartDomain: %v", err)
		}
		await(t, events, u, name, hypervisor.EventStarted)
		if err := hv.DestroyDomain(ctx(t), u); err != nil {
			t.Fatalf("DestroyDomain: %v", err)
		}
		await(t, events, u, name, hypervisor.EventStopped)
		if err := hv.UndefineDomain(ctx(t), u); err != nil {
			t.Fatalf("UndefineDomain: %v", err)
		}
		await(t, events, u, name, hypervisor.EventUndefined)
	})

	t.Run("EndsWithItsContext", func(t *testing.T) {
		hv := opened(t)
		wctx, stop := context.WithCancel(ctx(t))
		events, err := hv.WatchDomains(wctx)
		if err != nil {
			t.Fatalf("WatchDomains: %v", err)
		}
		stop()
		drained(t, events)
	})

	t.Run("EndsAtClose", func(t *testing.T) {
		hv := open(t)
		events, err := hv.WatchDomains(ctx(t))
		if err != nil {
			t.Fatalf("WatchDomains: %v", err)
		}
		if ev := next(t, events); ev.Kind != hypervisor.EventResync {
			t.Fatalf("first event %+v, want a resync", ev)
		}
		if err := hv.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		drained(t, events)
		if _, err := hv.WatchDomains(ctx(t)); !errors.Is(err, hypervisor.ErrClosed) {
			t.Fatalf("WatchDomains after Close: %v, want ErrClosed", err)
		}
	})
}

// next returns the next event; the channel closing fails the test.
func next(t *testing.T, events <-chan hypervisor.DomainEvent) hypervisor.DomainEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the event channel closed")
		}
		return ev
	case <-time.After(eventWait):
		t.Fatalf("no event after %s", eventWait)
	}
	return hypervisor.DomainEvent{}
}

// await skips events until one of kind for the domain uuid arrives, and
// checks its name.
func await(t *testing.T, events <-chan hypervisor.DomainEvent, uuid, name string, kind hypervisor.EventKind) {
	t.Helper()
	deadline := time.After(eventWait)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the event channel closed while waiting for %s of %s", kind, name)
			}
			if ev.UUID != uuid || ev.Kind != kind {
				continue
			}
			if ev.Name != name {
				t.Fatalf("%s event of %s names %q", kind, uuid, ev.Name)
			}
			return
		case <-deadline:
			t.Fatalf("no %s event of %s after %s", kind, name, eventWait)
		}
	}
}

// drained reads until the channel is closed.
func drained(t *testing.T, events <-chan hypervisor.DomainEvent) {
	t.Helper()
	deadline := time.After(eventWait)
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the event channel is still open after %s", eventWait)
		}
	}
}
