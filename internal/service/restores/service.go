package restores

import (
	"context"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/remotes"
)

// Service holds the use cases of restores of a VM, of a volume, into a new VM, quick restore and its consolidation, restores onto another host.
type Service struct {
	k     *kernel.Kernel
	store Store
	// remotes plans fetches of backups from remotes (restore --from).
	remotes Remotes
}

// Remotes is what restores need of offsite copies (remotes.Service).
type Remotes interface {
	PlanFetch(ctx context.Context, b domain.Backup, remote string) (remotes.Fetch, error)
}

// SetRemotes sets where restores --from plan their fetches.
func (s *Service) SetRemotes(r Remotes) { s.remotes = r }

// fetch brings b's chain back from the remote o.From names, if any, into
// the storage at root, before a restore reads it.
func (s *Service) fetch(ctx context.Context, a agentapi.Agent, root string, b domain.Backup, o RestoreOptions, timeout time.Duration, progress kernel.Progress) error {
	if o.From == "" {
		return nil
	}
	f, err := s.remotes.PlanFetch(ctx, b, o.From)
	if err != nil {
		return err
	}
	progress(3, "fetching the backup from remote "+o.From)
	return f.Run(ctx, a, root, timeout, progress, 3, 30)
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store) *Service {
	return &Service{k: k, store: st}
}
