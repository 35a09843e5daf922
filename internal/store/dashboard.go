package store

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
)

// VMSummary is one VM's protection as the dashboard shows it: the VM and
// aggregates over its backups, schedules and jobs, read in one query.
type VMSummary struct {
	VMID, Name         string
	AccountID, Account string // id and name
	HostID, Host       string
	State, WorkState   domain.VMState
	OfferingID         string
	Offering           string // name; "" when unassigned
	ChainHead          string // backup id; "" when no chain is open
	ChainLength        int    // the head's position in its chain; 0 without one
	LastError          string
	Backups            int // every recorded backup, Removed ones included
	LastBackupID       string
	LastBackupStatus   domain.BackupStatus
	LastBackupAt       time.Time // zero without backups
	LastGoodAt         time.Time // the newest BackedUp backup
	ProvenAt           time.Time // the newest proof: a kept backup (BackedUp or Removed) a validation found Valid, or a succeeded restore
	ProvenBackupID     string
	ProvenBy           string // "validation" (it booted and answered) or "restore" (a restore of it succeeded, its disks checked against it)
	StoredBytes        int64  // sizes of the backups whose files are kept (BackedUp, Removed)
	NotValid           int    // BackedUp backups a validation found NotValid
	UnableToValidate   int    // BackedUp backups a validation could not check
	FailedBackups      int    // backups in Error or Failed
	FailedJobs         int    // compression and validation jobs that failed for good, of BackedUp backups
	NextRun            time.Time
}

// Dashboards is the dashboard's read of the catalogue.
type Dashboards interface {
	// VMSummaries returns every VM's summary by name (only the VMs of
	// accountID when it is not empty), in one query whose cost grows with
	// the catalogue, not with a round trip per VM.
	VMSummaries(ctx context.Context, accountID string) ([]VMSummary, error)
}

// EffectiveState is the VM's state as domain.VM.EffectiveState says it:
// its work state (BackingUp, BackupError, ...) over the hypervisor's.
func (v VMSummary) EffectiveState() domain.VMState {
	return domain.VM{State: v.State, WorkState: v.WorkState}.EffectiveState()
}
