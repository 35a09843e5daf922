package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
)

// errClosed is returned by WaitInventoryChange after Close.
var errClosed = errors.New("agent closed")

// changes counts the host's domain events for WaitInventoryChange. The
// watch of the hypervisor starts with the first call (an agent that only
// prints its report never subscribes) and runs until Close.
type changes struct {
	epoch string
	wait  time.Duration // agentapi.MaxChangeWait, shorter in tests

	mu         sync.Mutex
	seq        uint64
	wake       chan struct{} // closed and replaced at each change
	watching   bool
	subscribed chan struct{} // closed at the watch's first resync
	stop       context.CancelFunc
	closed     chan struct{}
}

func newChanges() *changes {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return &changes{epoch: hex.EncodeToString(b), wait: agentapi.MaxChangeWait, wake: make(chan struct{}), closed: make(chan struct{})}
}

func (c *changes) markLocked() agentapi.ChangeMark {
	return agentapi.ChangeMark{Epoch: c.epoch, Seq: c.seq}
}

// bump records one change and wakes the waiters.
func (c *changes) bump() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	close(c.wake)
	c.wake = make(chan struct{})
}

// close ends the watch and the waits.
func (c *changes) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return
	default:
	}
	close(c.closed)
	if c.stop != nil {
		c.stop()
	}
}

// watch starts the hypervisor watch unless it runs, and returns a channel
// closed once it is subscribed.
func (a *Local) watch() (<-chan struct{}, error) {
	c := a.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return nil, errClosed
	default:
	}
	if c.watching {
		return c.subscribed, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	events, err := a.hv.WatchDomains(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch domain events: %w", err)
	}
	c.watching, c.stop, c.subscribed = true, cancel, make(chan struct{})
	subscribed := c.subscribed
	go func() {
		first := true
		for ev := range events {
			if ev.Kind == hypervisor.EventResync {
				a.log.Debug("domain events subscribed")
			} else {
				a.log.Debug("domain event", "kind", ev.Kind, "domain", ev.Name, "uuid", ev.UUID)
			}
			c.bump()
			if first && ev.Kind == hypervisor.EventResync {
				close(subscribed)
				first = false
			}
		}
		// The hypervisor was closed: the next call subscribes again (and
		// fails if it is really gone); changes meanwhile are unknown.
		c.mu.Lock()
		c.watching = false
		c.mu.Unlock()
		cancel()
		c.bump()
	}()
	return subscribed, nil
}

// WaitInventoryChange implements agentapi.Agent with the hypervisor's
// domain events: every event (a resync included) moves the mark on. The
// first call subscribes and answers once the subscription holds (or after
// the wait bound), so that every change after the mark it returns is seen.
func (a *Local) WaitInventoryChange(ctx context.Context, since agentapi.ChangeMark) (agentapi.ChangeMark, error) {
	c := a.changes
	subscribed, err := a.watch()
	if err != nil {
		return since, err
	}
	timer := time.NewTimer(c.wait)
	defer timer.Stop()
	if since.Epoch != c.epoch {
		select {
		case <-subscribed:
		case <-timer.C:
		case <-c.closed:
			return since, errClosed
		case <-ctx.Done():
			return since, ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.markLocked(), nil
	}
	c.mu.Lock()
	mark, wake := c.markLocked(), c.wake
	c.mu.Unlock()
	if mark != since {
		return mark, nil
	}
	select {
	case <-wake:
	case <-timer.C:
	case <-c.closed:
		return since, errClosed
	case <-ctx.Done():
		return since, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markLocked(), nil
}
