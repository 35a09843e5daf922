package kernel

import (
	"context"
	"time"

	"github.com/knib/knib/internal/agentapi"
)

// The catalogue follows the hosts: the registry says when agents come and
// go (Registry, for the followers of service/hosts), a host's inventory
// syncs run one at a time (SyncHost), and a name the catalogue does not
// know re-reads the hosts, boundedly (RereadHosts).

// RereadEvery bounds RereadHosts: each host's inventory is re-read for
// unknown names at most once in this time, so a flood of bad names costs
// one inventory read per host and period.
const RereadEvery = 5 * time.Second

// rereadTimeout bounds one host's re-read.
const rereadTimeout = 15 * time.Second

// inventoryState is the kernel's part of following the hosts; s.mu
// guards it.
type inventoryState struct {
	serial  uint64
	serials map[string]uint64        // by host id: the serial of its latest SetAgent
	changed chan struct{}            // closed at the next change of the registry
	syncs   map[string]chan struct{} // by host id: held (one token) while a sync runs
	rereads map[string]*reread
}

type reread struct {
	at   time.Time
	done chan struct{} // closed when the re-read ended
}

// registered notes that a host's agent changed (put into service,
// replaced or removed); s.mu is held.
func (v *inventoryState) registered(hostID string) {
	v.serial++
	if v.serials == nil {
		v.serials = map[string]uint64{}
	}
	v.serials[hostID] = v.serial
	if v.changed != nil {
		close(v.changed)
		v.changed = nil
	}
}

// Registration is a host's agent as the registry holds it. Serial is new
// each time an agent is put into service for the host, so a follower can
// tell a replaced agent from the one it follows.
type Registration struct {
	Agent  agentapi.Agent
	Serial uint64
}

// Registry returns the agents in the registry by host id (those still
// recovering included), and a channel closed at the registry's next
// change.
func (s *Kernel) Registry() (map[string]Registration, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]Registration, len(s.agents))
	for id, a := range s.agents {
		out[id] = Registration{Agent: a, Serial: s.inv.serials[id]}
	}
	if s.inv.changed == nil {
		s.inv.changed = make(chan struct{})
	}
	return out, s.inv.changed
}

// lockSync makes a host's inventory syncs run one at a time, so that a
// sync that read the host earlier never records after one that read it
// later. It waits for the running sync or for ctx to end; unlock ends the
// caller's turn.
func (s *Kernel) lockSync(ctx context.Context, hostID string) (unlock func(), err error) {
	s.mu.Lock()
	if s.inv.syncs == nil {
		s.inv.syncs = map[string]chan struct{}{}
	}
	turn := s.inv.syncs[hostID]
	if turn == nil {
		turn = make(chan struct{}, 1)
		s.inv.syncs[hostID] = turn
	}
	s.mu.Unlock()
	select {
	case turn <- struct{}{}:
		return func() { <-turn }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// RereadHosts re-reads the inventory of every host whose agent is in
// service (not recovering), each at most once per RereadEvery: a VM the
// catalogue does not know may have been defined on a host a moment ago.
// A host whose re-read is running is not read again: the call waits for
// that re-read. It returns when the re-reads it waits for ended or ctx
// did; failures are logged (the answer is then what the catalogue holds).
func (s *Kernel) RereadHosts(ctx context.Context) {
	admin, err := s.EnsureAdmin(ctx)
	if err != nil {
		s.log.Warn("inventory re-read", "err", err)
		return
	}
	var waits []chan struct{}
	s.mu.Lock()
	now := s.clock.Now()
	if s.inv.rereads == nil {
		s.inv.rereads = map[string]*reread{}
	}
	for id, a := range s.agents {
		if s.gated[id] {
			continue
		}
		if r := s.inv.rereads[id]; r != nil {
			select {
			case <-r.done:
				if now.Sub(r.at) < RereadEvery {
					continue
				}
			default:
				waits = append(waits, r.done)
				continue
			}
		}
		r := &reread{at: now, done: make(chan struct{})}
		s.inv.rereads[id] = r
		waits = append(waits, r.done)
		s.ops.Add(1)
		// Not bound to the caller's ctx: other callers may wait for it.
		go func() {
			defer s.ops.Done()
			defer close(r.done)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rereadTimeout)
			defer cancel()
			if err := s.SyncHost(rctx, id, a, admin.ID); err != nil {
				s.log.Warn("inventory re-read", "host", s.HostName(rctx, id), "err", err)
			}
		}()
	}
	s.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return
		}
	}
}
