package schedules

import (
	"github.com/knib/knib/internal/service/backups"
	"github.com/knib/knib/internal/service/kernel"
)

// Service holds the use cases of backup schedules and their retention.
type Service struct {
	k       *kernel.Kernel
	store   Store
	backups *backups.Service
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, backups *backups.Service) *Service {
	return &Service{k: k, store: st, backups: backups}
}
