package kernel

import (
	"context"
	"time"

	"github.com/knib/knib/internal/settings"
)

// globalTimeout is the global knib.timeout.
func (s *Kernel) GlobalTimeout(ctx context.Context) time.Duration {
	view, err := s.Settings(ctx, settings.Target{})
	if err != nil {
		return time.Hour
	}
	return view.Duration(settings.KeyKnibTimeout)
}
