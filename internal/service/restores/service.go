package restores

import (
	"github.com/knib/knib/internal/service/kernel"
)

// Service holds the use cases of restores of a VM, of a volume, into a new VM, quick restore and its consolidation, restores onto another host.
type Service struct {
	k     *kernel.Kernel
	store Store
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store) *Service {
	return &Service{k: k, store: st}
}
