package store

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
)

// CopyFilter selects backup copies; empty fields do not filter.
type CopyFilter struct {
	BackupID string
	RemoteID string
	// BackupIDs selects the copies of these backups (nil: any).
	BackupIDs []string
	State     domain.CopyState
}

// RemoteStore keeps the remotes of offsite copies, the copy policies of
// offerings and every backup's copies.
type RemoteStore interface {
	// CreateRemote stores a remote; ErrConflict when its name is taken.
	CreateRemote(ctx context.Context, r domain.Remote) error
	// Remote finds a remote by id or name; ErrNotFound.
	Remote(ctx context.Context, idOrName string) (domain.Remote, error)
	// ListRemotes lists the remotes by name.
	ListRemotes(ctx context.Context) ([]domain.Remote, error)
	// SetRemoteCheck records a lock check's verdict.
	SetRemoteCheck(ctx context.Context, id, verdict string, at time.Time) error
	// DeleteRemote removes a remote; ErrConflict while a copy or a copy
	// policy names it, ErrNotFound when absent.
	DeleteRemote(ctx context.Context, id string) error

	// SetCopyPolicy sets (p.RemoteID non-empty) or removes an offering's
	// copy policy.
	SetCopyPolicy(ctx context.Context, p domain.CopyPolicy) error
	// CopyPolicy returns an offering's policy; ErrNotFound when it has none.
	CopyPolicy(ctx context.Context, offeringID string) (domain.CopyPolicy, error)
	// CopyPolicies lists every policy.
	CopyPolicies(ctx context.Context) ([]domain.CopyPolicy, error)
	// AdvanceCopyPolicy moves a policy's SweptUntil from prev to next if
	// nobody did: the caller that gets true picks that period's backups.
	AdvanceCopyPolicy(ctx context.Context, offeringID string, prev, next time.Time) (bool, error)

	// CreateCopy records a copy (Queued, with its salt) before anything is
	// uploaded; ErrConflict when the backup has a copy on that remote that
	// is not Failed.
	CreateCopy(ctx context.Context, c domain.BackupCopy) error
	// Copy finds a copy by id; ErrNotFound.
	Copy(ctx context.Context, id string) (domain.BackupCopy, error)
	// Copies lists the copies matching f, oldest first.
	Copies(ctx context.Context, f CopyFilter) ([]domain.BackupCopy, error)
	// SaveCopy updates a copy's state, objects, manifest, lock, keep,
	// size, error and copied time; ErrNotFound when it is gone.
	SaveCopy(ctx context.Context, c domain.BackupCopy) error
	// DeleteCopy forgets a copy (its objects are gone or were never
	// written); no error when it is gone already.
	DeleteCopy(ctx context.Context, id string) error
	// ImportVM records a VM read from a remote's manifest when the
	// catalogue does not know its uuid (created true); a known VM is left
	// as it is.
	ImportVM(ctx context.Context, vm domain.VM) (created bool, err error)
}
