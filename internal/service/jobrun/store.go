package jobrun

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Backup(ctx context.Context, id string) (domain.Backup, error)
	ClaimJobs(ctx context.Context, claims []store.JobClaim, owner string, now, leaseUntil time.Time) ([]store.JobClaim, error)
	EnqueueJob(ctx context.Context, j jobs.Job) error
	FinishJob(ctx context.Context, id, owner string, o jobs.Outcome, lastError string, ended time.Time) (bool, error)
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	HostsOfVMs(ctx context.Context, vmIDs []string) (map[string]string, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	ListSettings(ctx context.Context) ([]store.Setting, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
	ReapJob(ctx context.Context, id string, now time.Time, o jobs.Outcome, lastError string) (bool, error)
	ReapJobOf(ctx context.Context, id, owner string, now time.Time, o jobs.Outcome, lastError string) (bool, error)
	RenewLease(ctx context.Context, id, owner string, until time.Time) (bool, error)
	SetCompression(ctx context.Context, id string, st domain.CompressionStatus, size, uncompressed int64, files []domain.BackupFile) error
	SetValidation(ctx context.Context, id string, st domain.ValidationStatus, reason string, steps []domain.ValidationStepRun, hasScreenshot bool, hashes map[string]string) error
	VM(ctx context.Context, idOrName string) (domain.VM, error)
	VMDetails(ctx context.Context, vmID string) (map[string]string, error)
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
}
