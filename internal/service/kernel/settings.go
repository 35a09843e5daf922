package kernel

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

func StoredSettings(list []store.Setting) []settings.Stored {
	out := make([]settings.Stored, 0, len(list))
	for _, st := range list {
		out = append(out, settings.Stored{Scope: settings.Scope(st.Scope), ScopeID: st.ScopeID, Key: st.Key, Value: st.Value})
	}
	return out
}

// agentSettings returns the host's agent-file values (nil for non-host targets).
func (s *Kernel) AgentSettings(ctx context.Context, t settings.Target) map[string]string {
	if t.Host == "" {
		return nil
	}
	h, err := s.store.Host(ctx, t.Host)
	if err != nil {
		return nil
	}
	return h.AgentSettings
}

// Settings returns the settings view for a target, as the use cases read it.
func (s *Kernel) Settings(ctx context.Context, t settings.Target) (settings.View, error) {
	stored, err := s.store.ListSettings(ctx)
	if err != nil {
		return settings.View{}, err
	}
	return settings.NewView(t, StoredSettings(stored), s.AgentSettings(ctx, t))
}

// knibTimeout is the setting knib.timeout for a VM (its default when the
// settings cannot be read).
func (s *Kernel) KnibTimeout(ctx context.Context, vm domain.VM) time.Duration {
	view, err := s.VMSettings(ctx, vm)
	if err != nil {
		return settings.View{}.Duration(settings.KeyKnibTimeout)
	}
	return view.Duration(settings.KeyKnibTimeout)
}

// knibTimeoutHost is knib.timeout as seen from a host.
func (s *Kernel) KnibTimeoutHost(ctx context.Context, hostID string) time.Duration {
	return s.KnibTimeout(ctx, domain.VM{HostID: hostID})
}

// vmSettings returns the settings view for a VM (its host, zone, account).
func (s *Kernel) VMSettings(ctx context.Context, vm domain.VM) (settings.View, error) {
	t := settings.Target{Host: vm.HostID, Account: vm.AccountID}
	if h, err := s.store.Host(ctx, vm.HostID); err == nil {
		t.Zone = h.ZoneID
	}
	return s.Settings(ctx, t)
}

// globalTimeout is the global knib.timeout.
func (s *Kernel) GlobalTimeout(ctx context.Context) time.Duration {
	view, err := s.Settings(ctx, settings.Target{})
	if err != nil {
		return time.Hour
	}
	return view.Duration(settings.KeyKnibTimeout)
}
