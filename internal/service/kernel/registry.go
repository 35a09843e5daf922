package kernel

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// HasAgent reports whether a host's agent is in service now.
func (s *Kernel) HasAgent(hostID string) bool {
	_, err := s.Agent(hostID)
	return err == nil
}

// gatedErr refuses a host whose agent is still recovering. The caller
// holds s.mu.
func (s *Kernel) gatedErr(hostID string) error {
	if s.gated[hostID] {
		return fmt.Errorf("host %s: its agent reconnected and recovery is running: %w", hostID, domain.ErrUnavailable)
	}
	return nil
}

// requireEnabled refuses new work on a disabled host, or on one whose agent
// is not in service now.
func (s *Kernel) RequireEnabled(ctx context.Context, hostID string) error {
	h, err := s.store.Host(ctx, hostID)
	if err != nil {
		return err
	}
	if !h.Enabled {
		return fmt.Errorf("host %s is disabled for maintenance; enable it with `knib host enable %s`: %w", h.Name, h.Name, domain.ErrConflict)
	}
	if _, err := s.Agent(hostID); err != nil {
		state, _ := s.HostAgentState(ctx, h)
		if state == "" || state == "local" {
			state = "not connected"
		}
		return fmt.Errorf("host %s has no connected agent (%s): %w", h.Name, state, domain.ErrUnavailable)
	}
	return nil
}

// HostAgentState is the connection state of a host's agent ("local" for
// the in-process agent) and its URL.
func (s *Kernel) HostAgentState(ctx context.Context, h domain.Host) (state, agentURL string) {
	if h.Local {
		return "local", ""
	}
	a, err := s.store.HostAgent(ctx, h.ID)
	if err != nil {
		return "", ""
	}
	if a.Revoked {
		return "Revoked", a.URL
	}
	return a.Connection, a.URL
}

// agent returns the agent of a host.
func (s *Kernel) Agent(hostID string) (agentapi.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[hostID]
	if !ok {
		return nil, fmt.Errorf("host %s has no connected agent: %w", hostID, domain.ErrUnavailable)
	}
	if err := s.gatedErr(hostID); err != nil {
		return nil, err
	}
	return a, nil
}

// recoveryAgent is agent for recovery: it also returns the agent of a host
// that is still recovering after its agent reconnected.
func (s *Kernel) RecoveryAgent(hostID string) (agentapi.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[hostID]
	if !ok {
		return nil, fmt.Errorf("host %s has no connected agent: %w", hostID, domain.ErrUnavailable)
	}
	return a, nil
}
