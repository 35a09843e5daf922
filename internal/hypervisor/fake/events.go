package fake

import (
	"context"
	"sync"

	"github.com/knib/knib/internal/hypervisor"
)

var _ hypervisor.Watcher = (*Hypervisor)(nil)

// watch is one WatchDomains channel with its unbounded queue: the fake
// never blocks a change on a slow reader.
type watch struct {
	mu     sync.Mutex
	queue  []hypervisor.DomainEvent
	signal chan struct{} // capacity 1: something was queued
	cancel context.CancelFunc
}

func (w *watch) push(ev hypervisor.DomainEvent) {
	w.mu.Lock()
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

func (w *watch) pop() (hypervisor.DomainEvent, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) == 0 {
		return hypervisor.DomainEvent{}, false
	}
	ev := w.queue[0]
	w.queue = w.queue[1:]
	return ev, true
}

// WatchDomains implements hypervisor.Watcher.
func (h *Hypervisor) WatchDomains(ctx context.Context) (<-chan hypervisor.DomainEvent, error) {
	if err := h.begin(context.Background()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &watch{signal: make(chan struct{}, 1), cancel: cancel}
	w.push(hypervisor.DomainEvent{Kind: hypervisor.EventResync})
	if h.watches == nil {
		h.watches = map[*watch]bool{}
	}
	h.watches[w] = true
	h.mu.Unlock()
	out := make(chan hypervisor.DomainEvent)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.watches, w)
			h.mu.Unlock()
		}()
		for {
			ev, ok := w.pop()
			if !ok {
				select {
				case <-ctx.Done():
					return
				case <-w.signal:
				}
				continue
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// DropWatches stands for a lost and re-made subscription: every watch
// gets a resync.
func (h *Hypervisor) DropWatches() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notify(hypervisor.DomainEvent{Kind: hypervisor.EventResync})
}

// notify delivers ev to every watch; h.mu is held.
func (h *Hypervisor) notify(ev hypervisor.DomainEvent) {
	for w := range h.watches {
		w.push(ev)
	}
}

// notifyState reports a domain's change of state, if any; h.mu is held.
func (h *Hypervisor) notifyState(d hypervisor.Domain, from hypervisor.DomainState) {
	if from == d.State {
		return
	}
	kind := hypervisor.EventOther
	switch d.State {
	case hypervisor.StateRunning:
		kind = hypervisor.EventStarted
		if from == hypervisor.StatePaused || from == hypervisor.StatePMSuspended {
			kind = hypervisor.EventResumed
		}
	case hypervisor.StatePaused, hypervisor.StatePMSuspended:
		kind = hypervisor.EventSuspended
	case hypervisor.StateShutoff, hypervisor.StateCrashed:
		kind = hypervisor.EventStopped
	}
	h.notify(hypervisor.DomainEvent{Kind: kind, UUID: d.UUID, Name: d.Name})
}

// closeWatches ends every watch; h.mu is held.
func (h *Hypervisor) closeWatches() {
	for w := range h.watches {
		w.cancel()
	}
}
