package kernel

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/settings"
)

// knibTimeout is the setting knib.timeout for a VM (its default when the
// settings cannot be read).
func (s *Kernel) KnibTimeout(ctx context.Context, vm domain.VM) time.Duration {
	view, err := s.VMSettings(ctx, vm)
	if err != nil {
		return settings.View{}.Duration(settings.KeyKnibTimeout)
	}
	return view.Duration(settings.KeyKnibTimeout)
}
