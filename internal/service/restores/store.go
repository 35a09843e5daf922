package restores

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Backup(ctx context.Context, id string) (domain.Backup, error)
	FinishVMMove(ctx context.Context, vmID string) error
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
	RecordVMMove(ctx context.Context, m store.VMMove) error
	SetChain(ctx context.Context, vmID string, c store.Chain) error
	SetVMError(ctx context.Context, vmID, msg string) error
	SetVMHost(ctx context.Context, vmID, hostID string) error
	SetVMOwner(ctx context.Context, vmID, accountID string) error
	SetVMWorkState(ctx context.Context, vmID string, s domain.VMState) error
	Snapshots(ctx context.Context, vmID string) ([]domain.Snapshot, error)
	VM(ctx context.Context, idOrName string) (domain.VM, error)
	VMMoves(ctx context.Context) ([]store.VMMove, error)
}
