package lv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/knib/knib/internal/hypervisor"
)

var _ hypervisor.Watcher = (*Hypervisor)(nil)

// Resubscription delays after a lost or failed subscription: the first,
// doubled after each failure up to the last.
const (
	resubscribeFirst = time.Second
	resubscribeMax   = 30 * time.Second
)

// watches are the running event watches of a Hypervisor: each has its own
// libvirt connection, so that a watch outlives a dropped connection by
// dialling a new one.
type watches struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	cancel map[*int]context.CancelFunc
	conns  map[*libvirt.Libvirt]bool // the watches' connections now
}

// add registers a watch; its goroutine must call done when it ends.
func (w *watches) add(cancel context.CancelFunc) (done func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancel == nil {
		w.cancel = map[*int]context.CancelFunc{}
	}
	key := new(int)
	w.cancel[key] = cancel
	w.wg.Add(1)
	return func() {
		w.mu.Lock()
		delete(w.cancel, key)
		w.mu.Unlock()
		cancel()
		w.wg.Done()
	}
}

// stop ends every watch and waits for them.
func (w *watches) stop() {
	w.mu.Lock()
	for _, c := range w.cancel {
		c()
	}
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *watches) track(l *libvirt.Libvirt, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conns == nil {
		w.conns = map[*libvirt.Libvirt]bool{}
	}
	if on {
		w.conns[l] = true
	} else {
		delete(w.conns, l)
	}
}

// drop disconnects the watches' connections as a daemon restart would
// (tests of the resubscription); the watches dial again.
func (w *watches) drop() {
	w.mu.Lock()
	conns := make([]*libvirt.Libvirt, 0, len(w.conns))
	for l := range w.conns {
		conns = append(conns, l)
	}
	w.mu.Unlock()
	for _, l := range conns {
		_ = l.Disconnect() // an error means it is down already, which is the point
	}
}

// WatchDomains implements hypervisor.Watcher with libvirt's domain
// life-cycle events (virConnectDomainEventRegisterAny with
// VIR_DOMAIN_EVENT_ID_LIFECYCLE), on a connection of its own that is
// dialled again whenever it drops.
func (h *Hypervisor) WatchDomains(ctx context.Context) (<-chan hypervisor.DomainEvent, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, hypervisor.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	done := h.watches.add(cancel)
	out := make(chan hypervisor.DomainEvent)
	go func() {
		defer done()
		defer close(out)
		h.watch(ctx, out)
	}()
	return out, nil
}

// watch subscribes, forwards events until the subscription is lost, and
// subscribes again, until ctx ends.
func (h *Hypervisor) watch(ctx context.Context, out chan<- hypervisor.DomainEvent) {
	delay := resubscribeFirst
	for {
		subscribed, err := h.subscribeOnce(ctx, out)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			delay = resubscribeFirst
		}
		h.log.Warn("libvirt domain events: subscription lost; subscribing again", "uri", h.uri, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, resubscribeMax)
	}
}

// subscribeOnce dials a connection, subscribes to life-cycle events,
// sends EventResync and forwards events until the connection drops or ctx
// ends. subscribed reports whether the subscription was made.
func (h *Hypervisor) subscribeOnce(ctx context.Context, out chan<- hypervisor.DomainEvent) (subscribed bool, err error) {
	dialCtx, cancelDial := context.WithTimeout(ctx, 15*time.Second)
	l, err := h.dial(dialCtx)
	cancelDial()
	if err != nil {
		return false, err
	}
	h.watches.track(l, true)
	defer func() {
		h.watches.track(l, false)
		if derr := l.Disconnect(); derr != nil && l.IsConnected() {
			h.log.Debug("libvirt domain events: disconnect", "uri", h.uri, "err", derr)
		}
	}()
	subCtx, cancelSub := context.WithCancel(ctx)
	events, err := l.LifecycleEvents(subCtx)
	if err != nil {
		cancelSub()
		return false, fmt.Errorf("subscribe to domain life-cycle events: %w", err)
	}
	defer func() {
		// go-libvirt's relay blocks on its unbuffered channel: take what it
		// still holds until it closes the channel.
		cancelSub()
		for range events {
		}
	}()
	if !send(ctx, out, hypervisor.DomainEvent{Kind: hypervisor.EventResync}) {
		return true, ctx.Err()
	}
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case <-l.Disconnected():
			return true, errors.New("connection lost")
		case msg, ok := <-events:
			if !ok {
				return true, errors.New("event stream closed (connection lost)")
			}
			if !send(ctx, out, domainEvent(msg)) {
				return true, ctx.Err()
			}
		}
	}
}

func send(ctx context.Context, out chan<- hypervisor.DomainEvent, ev hypervisor.DomainEvent) bool {
	select {
	case out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// domainEvent translates one libvirt life-cycle event.
func domainEvent(msg libvirt.DomainEventLifecycleMsg) hypervisor.DomainEvent {
	ev := hypervisor.DomainEvent{UUID: hypervisor.FormatUUID(msg.Dom.UUID), Name: msg.Dom.Name}
	switch libvirt.DomainEventType(msg.Event) {
	case libvirt.DomainEventDefined:
		ev.Kind = hypervisor.EventDefined
	case libvirt.DomainEventUndefined:
		ev.Kind = hypervisor.EventUndefined
	case libvirt.DomainEventStarted:
		ev.Kind = hypervisor.EventStarted
	case libvirt.DomainEventSuspended, libvirt.DomainEventPmsuspended:
		ev.Kind = hypervisor.EventSuspended
	case libvirt.DomainEventResumed:
		ev.Kind = hypervisor.EventResumed
	case libvirt.DomainEventStopped, libvirt.DomainEventCrashed:
		ev.Kind = hypervisor.EventStopped
	default:
		ev.Kind = hypervisor.EventOther
	}
	return ev
}
