package hosts

import (
	"context"
	"time"

	"github.com/knib/knib/internal/agentapi"
)

// FollowDebounce is how long a follower lets a burst of changes settle (a
// VM shutting down is several events) before it re-reads the host.
const FollowDebounce = 200 * time.Millisecond

// Backoff of a follower whose agent does not answer the long poll: the
// first delay, doubled after each failure up to the last.
const (
	followRetryFirst = time.Second
	followRetryMax   = 30 * time.Second
)

// FollowInventory keeps the catalogue in step with the hosts as they
// change: every agent in the registry (in-process or remote) gets a
// follower that long-polls it for inventory changes
// (agentapi.Agent.WaitInventoryChange) and re-reads that host's
// inventory after each, debounced. Agents put into service, replaced or
// taken out are followed, re-followed or dropped at once. It returns when
// ctx ends, after its followers stopped. The periodic SyncInventory stays
// the safety net.
func (s *Service) FollowInventory(ctx context.Context) {
	type follower struct {
		serial uint64
		stop   context.CancelFunc
		done   chan struct{}
	}
	running := map[string]*follower{}
	defer func() {
		for _, f := range running {
			f.stop()
		}
		for _, f := range running {
			<-f.done
		}
	}()
	for {
		agents, changed := s.k.Registry()
		for id, f := range running {
			if r, ok := agents[id]; !ok || r.Serial != f.serial {
				f.stop()
				<-f.done
				delete(running, id)
			}
		}
		for id, r := range agents {
			if running[id] != nil {
				continue
			}
			fctx, stop := context.WithCancel(ctx)
			f := &follower{serial: r.Serial, stop: stop, done: make(chan struct{})}
			running[id] = f
			go func() {
				defer close(f.done)
				s.follow(fctx, id, r.Agent)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// follow re-reads one host's inventory whenever its agent reports a
// change, until ctx ends. The first answer comes at once (a new mark), so
// a host is read when its follower starts.
func (s *Service) follow(ctx context.Context, hostID string, a agentapi.Agent) {
	clk := s.k.Clock()
	var mark agentapi.ChangeMark
	delay := followRetryFirst
	failing := false
	for {
		next, err := a.WaitInventoryChange(ctx, mark)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if !failing {
				s.k.Log().Warn("inventory changes: the agent does not answer; the periodic pass still reads it", "host", s.k.HostName(ctx, hostID), "err", err)
			}
			failing = true
			select {
			case <-ctx.Done():
				return
			case <-clk.After(delay):
			}
			delay = min(2*delay, followRetryMax)
			continue
		}
		if failing {
			s.k.Log().Info("inventory changes: the agent answers again", "host", s.k.HostName(ctx, hostID))
		}
		failing, delay = false, followRetryFirst
		if next == mark {
			continue // no change within the agent's wait
		}
		// Let the burst settle, then take the mark the re-read will cover:
		// a change after it wakes the next wait.
		select {
		case <-ctx.Done():
			return
		case <-clk.After(FollowDebounce):
		}
		if now, err := a.WaitInventoryChange(ctx, agentapi.ChangeMark{}); err == nil && now.Epoch == next.Epoch {
			next = now
		}
		mark = next
		if err := s.refresh(ctx, hostID, a); err != nil && ctx.Err() == nil {
			s.k.Log().Warn("inventory changes: re-read", "host", s.k.HostName(ctx, hostID), "err", err)
		}
	}
}

// refresh re-reads one host's inventory into the catalogue.
func (s *Service) refresh(ctx context.Context, hostID string, a agentapi.Agent) error {
	admin, err := s.k.EnsureAdmin(ctx)
	if err != nil {
		return err
	}
	return s.k.SyncHost(ctx, hostID, a, admin.ID)
}
