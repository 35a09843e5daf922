package kernel

import (
	"context"

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
