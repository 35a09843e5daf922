package recovery

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	FailOperationIf(ctx context.Context, id, owner string, until time.Time, msg string, now time.Time) (bool, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	ListOperations(ctx context.Context, f store.OperationFilter) ([]domain.Operation, error)
	ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error)
	RenewOwner(ctx context.Context, owner string, until time.Time) error
	SetBackupStatusIf(ctx context.Context, id string, from, to domain.BackupStatus, seen, at time.Time) (bool, error)
	SetVMError(ctx context.Context, vmID, msg string) error
	SetVMWorkState(ctx context.Context, vmID string, s domain.VMState) error
	TakeVMLock(ctx context.Context, l store.VMLock) (bool, error)
	VMLocks(ctx context.Context) ([]store.VMLock, error)
}
