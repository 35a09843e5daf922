package backups

import (
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/storages"
)

// Service holds the use cases of backups: create (plan, record intent, execute on the agent, commit), list, delete with the chain rules, finish a chain.
type Service struct {
	k        *kernel.Kernel
	store    Store
	storages *storages.Service
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, storages *storages.Service) *Service {
	return &Service{k: k, store: st, storages: storages}
}
