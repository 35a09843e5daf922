package kernel

import (
	"log/slog"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
)

// Kernel is what every use case shares: the catalogue, the clock, the
// log, the agents of the hosts, the operations running in this process and
// this process's identity in leases.
type Kernel struct {
	store Store
	clock clock.Clock
	log   *slog.Logger

	mu       sync.Mutex
	agents   map[string]agentapi.Agent // by host id
	gated    map[string]bool           // hosts whose agent is recovering
	inv      inventoryState            // registry changes, syncs and re-reads (follow.go)
	ops      sync.WaitGroup
	follow   followUps // operations' follow-ups running (followup.go)
	opw      opWatch   // operation writes, for the event stream (opwatch.go)
	jobLease time.Duration
	node     string   // this installation on this machine (leases.go)
	owner    string   // this process in leases (leases.go)
	names    names    // display names by id (names.go)
	obs      Observer // metrics (observe.go); nil = none
}

// New returns a kernel over st.
func New(st Store, clk clock.Clock, log *slog.Logger) *Kernel {
	return &Kernel{store: st, clock: clk, log: log, agents: map[string]agentapi.Agent{}, gated: map[string]bool{}}
}

// Clock is the kernel's clock.
func (s *Kernel) Clock() clock.Clock { return s.clock }

// Log is the kernel's logger.
func (s *Kernel) Log() *slog.Logger { return s.log }

// SetAgent puts a host's agent into service (replacing any previous one).
func (s *Kernel) SetAgent(hostID string, a agentapi.Agent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents[hostID] = a
	s.inv.registered(hostID)
}

// RemoveAgent takes a host's agent out of service; had says whether it was.
func (s *Kernel) RemoveAgent(hostID string) (had bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, had = s.agents[hostID]
	delete(s.agents, hostID)
	if had {
		s.inv.registered(hostID)
	}
	return had
}

// Agents returns the agents in the registry, by host id.
func (s *Kernel) Agents() map[string]agentapi.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]agentapi.Agent, len(s.agents))
	for id, a := range s.agents {
		out[id] = a
	}
	return out
}

// Gate closes a host to new work while its agent recovers; Ungate opens it.
func (s *Kernel) Gate(hostID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gated[hostID] = true
}

// Ungate opens a gated host to new work again.
func (s *Kernel) Ungate(hostID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.gated, hostID)
}
