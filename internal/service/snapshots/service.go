package snapshots

import (
	"github.com/knib/knib/internal/service/kernel"
)

// Service holds the use cases of disk-only VM snapshots.
type Service struct {
	k     *kernel.Kernel
	store Store
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store) *Service {
	return &Service{k: k, store: st}
}
