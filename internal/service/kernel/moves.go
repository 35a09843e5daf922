package kernel

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
)

// knibTimeoutHost is knib.timeout as seen from a host.
func (s *Kernel) KnibTimeoutHost(ctx context.Context, hostID string) time.Duration {
	return s.KnibTimeout(ctx, domain.VM{HostID: hostID})
}

// movedAway returns the VMs a host still defines that are being moved to
// another host: its inventory must not pull them back.
func (s *Kernel) MovedAway(ctx context.Context, hostID string) map[string]bool {
	moves, err := s.store.VMMoves(ctx)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range moves {
		if m.FromHost == hostID && m.ToHost != hostID {
			out[m.VMID] = true
		}
	}
	return out
}
