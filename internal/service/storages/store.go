package storages

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
	AdoptBackups(ctx context.Context, storageID string) (int, error)
	Backup(ctx context.Context, id string) (domain.Backup, error)
	Chain(ctx context.Context, vmID string) (store.Chain, error)
	CreateStorage(ctx context.Context, st domain.Storage) error
	EndStorageMove(ctx context.Context, backupID string) error
	EnsureZone(ctx context.Context, name string) (domain.Zone, error)
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	ListZones(ctx context.Context) ([]domain.Zone, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
	Operation(ctx context.Context, id string) (domain.Operation, error)
	RemoveStorage(ctx context.Context, id string) error
	SetCompression(ctx context.Context, id string, st domain.CompressionStatus, size, uncompressed int64, files []domain.BackupFile) error
	SetStorageCapacity(ctx context.Context, id string, capacity, free int64, at time.Time) error
	SetStorageEnabled(ctx context.Context, id string, enabled bool) error
	StartStorageMoves(ctx context.Context, moves []store.StorageMove) error
	Storage(ctx context.Context, idOrName string) (domain.Storage, error)
	StorageMoves(ctx context.Context) ([]store.StorageMove, error)
	StorageUsed(ctx context.Context, id string) (int64, error)
	SwitchStorageMoves(ctx context.Context, backupIDs []string) error
	VM(ctx context.Context, idOrName string) (domain.VM, error)
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
}
