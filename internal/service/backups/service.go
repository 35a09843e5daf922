package backups

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/storages"
)

// Service holds the use cases of backups: create (plan, record intent, execute on the agent, commit), list, delete with the chain rules, finish a chain.
type Service struct {
	k        *kernel.Kernel
	store    Store
	storages *storages.Service
	// afterCommit is told of every backup committed (offsite copy
	// policies); it logs its own failures.
	afterCommit func(ctx context.Context, b domain.Backup)
}

// SetAfterCommit sets what is told of every committed backup.
func (s *Service) SetAfterCommit(fn func(ctx context.Context, b domain.Backup)) { s.afterCommit = fn }

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, storages *storages.Service) *Service {
	return &Service{k: k, store: st, storages: storages}
}
