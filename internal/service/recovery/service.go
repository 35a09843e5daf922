package recovery

import (
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/restores"
	"github.com/knib/knib/internal/service/storages"
)

// Service holds the use cases of recovery after interruptions: reconciliation of VMs, orphaned work of dead servers, leases.
type Service struct {
	k        *kernel.Kernel
	store    Store
	restores *restores.Service
	storages *storages.Service
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, restores *restores.Service, storages *storages.Service) *Service {
	return &Service{k: k, store: st, restores: restores, storages: storages}
}
