package jobrun

import (
	"github.com/knib/knib/internal/service/accounts"
	"github.com/knib/knib/internal/service/kernel"
)

// Service holds the use cases of the background job runner: compression, validation and re-hash jobs.
type Service struct {
	k        *kernel.Kernel
	store    Store
	accounts *accounts.Service
	jobs     runningJobs
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, accounts *accounts.Service) *Service {
	return &Service{k: k, store: st, accounts: accounts}
}
