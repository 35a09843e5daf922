package store

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// VMLock is a VM's busy mark: what holds it (Holder), the server process
// that took it (Owner) and until when its lease runs (Until).
type VMLock struct {
	VMID   string
	Holder string
	Owner  string
	Until  time.Time
}

// LeaseStore records who owns running work, so that several servers on one
// database recover only the work of a dead server.
type LeaseStore interface {
	// AcquireVMFor marks the VM busy with holder, owned by owner with a
	// lease until until; ErrConflict naming the holder when busy already.
	AcquireVMFor(ctx context.Context, vmID, holder, owner string, until time.Time) error
	// VMLocks lists the busy VMs.
	VMLocks(ctx context.Context) ([]VMLock, error)
	// TakeVMLock clears a lock only if it is still exactly l (same holder,
	// owner and lease): of two recoverers, one wins.
	TakeVMLock(ctx context.Context, l VMLock) (bool, error)
	// RenewOwner extends the leases of owner's unfinished operations and VM
	// locks to until.
	RenewOwner(ctx context.Context, owner string, until time.Time) error
	// FailOperationIf marks an unfinished operation Failed with msg only if
	// its owner and lease are still those given: of two recoverers, one wins.
	FailOperationIf(ctx context.Context, id, owner string, until time.Time, msg string, now time.Time) (bool, error)
	// ReapJobOf reaps a running job whose lease owner is still owner (a
	// dead process), whatever its lease says, recording outcome o like
	// ReapJob; false when the job changed since.
	ReapJobOf(ctx context.Context, id, owner string, now time.Time, o jobs.Outcome, lastError string) (bool, error)
	// UpdateOwnedOperation is UpdateOperation for the operation's owner:
	// it changes nothing (false) once the operation is no longer unfinished
	// and owned by owner (another server failed it as interrupted).
	UpdateOwnedOperation(ctx context.Context, op domain.Operation, owner string) (bool, error)
	// SetBackupStatusIf changes a backup's status from one value to another
	// only if its status and updated time are still from and seen (a
	// compare-and-swap: a status set again since then is not clobbered).
	SetBackupStatusIf(ctx context.Context, id string, from, to domain.BackupStatus, seen, at time.Time) (bool, error)
}
