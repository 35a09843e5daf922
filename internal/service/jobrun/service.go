package jobrun

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/accounts"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/remotes"
)

// Service holds the use cases of the background job runner: compression,
// validation, re-hash and offsite copy jobs.
type Service struct {
	k        *kernel.Kernel
	store    Store
	accounts *accounts.Service
	copier   Copier
	jobs     runningJobs
}

// Copier runs offsite copy jobs (remotes.Service).
type Copier interface {
	// RunCopyJob is one attempt; remotes.ErrNotNow defers it.
	RunCopyJob(ctx context.Context, t remotes.CopyTask, b domain.Backup) error
	// CopyJobFailed records that the job gave up.
	CopyJobFailed(ctx context.Context, backupID, why string)
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store, accounts *accounts.Service, copier Copier) *Service {
	return &Service{k: k, store: st, accounts: accounts, copier: copier}
}
