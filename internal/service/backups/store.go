package backups

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Backup(ctx context.Context, id string) (domain.Backup, error)
	Chain(ctx context.Context, vmID string) (store.Chain, error)
	CreateBackup(ctx context.Context, b domain.Backup) error
	ExpungeBackup(ctx context.Context, id string) error
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
	SaveBackup(ctx context.Context, b domain.Backup, chain *store.Chain) error
	SetVMWorkState(ctx context.Context, vmID string, s domain.VMState) error
	VM(ctx context.Context, idOrName string) (domain.VM, error)
}
