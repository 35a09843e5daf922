package hosts

import (
	"sync"

	"github.com/knib/knib/internal/pki"
	"github.com/knib/knib/internal/service/jobrun"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/recovery"
)

// Service holds the use cases of hosts and their agents: registration, inventory, remote agents joining, connection states, maintenance.
type Service struct {
	k        *kernel.Kernel
	store    Store
	jobs     *jobrun.Service
	recovery *recovery.Service
	caMu     sync.Mutex
	caVal    *pki.CA
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, jobs *jobrun.Service, recovery *recovery.Service) *Service {
	return &Service{k: k, store: st, jobs: jobs, recovery: recovery}
}
