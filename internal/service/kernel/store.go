package kernel

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
	Account(ctx context.Context, idOrName string) (domain.Account, error)
	AcquireVMFor(ctx context.Context, vmID, holder, owner string, until time.Time) error
	Backup(ctx context.Context, id string) (domain.Backup, error)
	Chain(ctx context.Context, vmID string) (store.Chain, error)
	CreateAccount(ctx context.Context, a domain.Account) error
	CreateOperation(ctx context.Context, op domain.Operation) error
	EnqueueJob(ctx context.Context, j jobs.Job) error
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	HostAgent(ctx context.Context, hostID string) (store.HostAgent, error)
	HostsOfVMs(ctx context.Context, vmIDs []string) (map[string]string, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	ListOperations(ctx context.Context, f store.OperationFilter) ([]domain.Operation, error)
	ListSettings(ctx context.Context) ([]store.Setting, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error)
	MarkEndOfChain(ctx context.Context, id string) error
	Offering(ctx context.Context, id string) (domain.Offering, error)
	Operation(ctx context.Context, id string) (domain.Operation, error)
	RecordVMDisks(ctx context.Context, vmID string, state domain.VMState, disks []domain.Disk, at time.Time) error
	ReleaseVM(ctx context.Context, vmID, holder string) error
	SaveBackup(ctx context.Context, b domain.Backup, chain *store.Chain) error
	SaveSnapshot(ctx context.Context, sn domain.Snapshot) error // insert or update
	SetBackupStatus(ctx context.Context, id string, st domain.BackupStatus, at time.Time) error
	SetChain(ctx context.Context, vmID string, c store.Chain) error
	SetVMError(ctx context.Context, vmID, msg string) error
	SetVMHost(ctx context.Context, vmID, hostID string) error
	SetVMWorkState(ctx context.Context, vmID string, s domain.VMState) error
	SetValidation(ctx context.Context, id string, st domain.ValidationStatus, reason string, steps []domain.ValidationStepRun, hasScreenshot bool, hashes map[string]string) error
	Snapshots(ctx context.Context, vmID string) ([]domain.Snapshot, error)
	Storage(ctx context.Context, idOrName string) (domain.Storage, error)
	SyncHostVMs(ctx context.Context, hostID string, vms []domain.VM, defaultAccountID string, at time.Time) error
	UpdateOwnedOperation(ctx context.Context, op domain.Operation, owner string) (bool, error)
	UpsertHost(ctx context.Context, h domain.Host) (domain.Host, error)
	VM(ctx context.Context, idOrName string) (domain.VM, error)
	VMMoves(ctx context.Context) ([]store.VMMove, error)
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
}
