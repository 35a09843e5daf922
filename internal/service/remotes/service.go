package remotes

import (
	"context"
	"errors"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// Service holds the use cases of offsite copies.
type Service struct {
	k     *kernel.Kernel
	store Store
	open  offsite.Opener
}

// Store is the part of the catalogue these use cases use; its methods keep
// store.Store's contracts.
type Store interface {
	store.RemoteStore
	Account(ctx context.Context, idOrName string) (domain.Account, error)
	Backup(ctx context.Context, id string) (domain.Backup, error)
	CreateBackup(ctx context.Context, b domain.Backup) error
	SaveBackup(ctx context.Context, b domain.Backup, chain *store.Chain) error
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	CreateOffering(ctx context.Context, o domain.Offering) error
	Offering(ctx context.Context, id string) (domain.Offering, error)
	ListOfferings(ctx context.Context, f store.OfferingFilter) ([]domain.Offering, error)
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	VM(ctx context.Context, idOrName string) (domain.VM, error)
	ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	ImportVM(ctx context.Context, vm domain.VM) (bool, error)
}

// New returns the use cases over the kernel and the catalogue. Until
// SetOpener is called no bucket can be reached.
func New(k *kernel.Kernel, st Store) *Service {
	return &Service{k: k, store: st, open: func(offsite.Config) (offsite.Bucket, error) {
		return nil, errors.New("no object storage client is configured")
	}}
}

// SetOpener sets how buckets are opened (the server picks the adapter).
func (s *Service) SetOpener(open offsite.Opener) { s.open = open }

// ErrNotNow asks the job runner to run a copy job again soon without
// counting an attempt (the backup's compression has not ended).
var ErrNotNow = errors.New("not now: the backup's compression has not ended")

// canaryHold is how long a lock check's canary stays locked.
const canaryHold = time.Minute
