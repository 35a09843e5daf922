package store

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// OfferingFilter selects offerings; nil pointers and false flags do not filter.
type OfferingFilter struct {
	ID                string
	Compress          bool
	Validate          bool
	AllowQuickRestore bool
	AllowExtractFile  bool
	ShowRemoved       bool
}

// VMFilter selects VMs, by name.
type VMFilter struct {
	AccountID string // only this account's VMs
	HostID    string
	// UsingPath selects the VMs whose disks (or their backing files) read
	// a file under this directory.
	UsingPath string
	Page
}

// OperationFilter selects operations, newest first.
type OperationFilter struct {
	All bool // finished ones too
	Page
}

// Token is a stored API token (hash only).
type Token struct {
	ID        string
	AccountID string
	Role      domain.Role
	Name      string
	Hash      string
	Created   time.Time
}

// Session is a web console session (hash only). A session started with an
// API token keeps the token's id and role; one started with a password has
// no token id.
type Session struct {
	Hash      string // SHA-256 of the session secret, hex
	AccountID string
	Role      domain.Role
	TokenID   string
	Created   time.Time
	LastSeen  time.Time
	Expires   time.Time // absolute end; the idle end is LastSeen + the idle timeout
}

// Setting is a value stored at a scope. ScopeID is empty for global values and
// holds the zone, host or account id otherwise.
type Setting struct {
	Scope   string
	ScopeID string
	Key     string
	Value   string
}

// Store is everything the server persists.
type Store interface {
	// Accounts and tokens.
	CreateAccount(ctx context.Context, a domain.Account) error
	Account(ctx context.Context, idOrName string) (domain.Account, error)
	ListAccounts(ctx context.Context) ([]domain.Account, error)
	// SetAccountLimits replaces an account's resource limits; ErrNotFound
	// when no account has that id. A new account has domain.NoLimits.
	SetAccountLimits(ctx context.Context, id string, l domain.Limits) error
	CreateToken(ctx context.Context, t Token) error
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens lists the tokens of an account (every token with
	// accountID ""), oldest first.
	ListTokens(ctx context.Context, accountID string) ([]Token, error)
	// DeleteToken removes a token and the console sessions started with
	// it, in one transaction; ErrNotFound when no token has that id.
	DeleteToken(ctx context.Context, id string) error
	// SetAccountPassword stores an account's password hash ("" removes the
	// password); ErrNotFound when no account has that id.
	SetAccountPassword(ctx context.Context, id, hash string) error
	// AccountPassword returns an account's password hash ("" when it has
	// none); ErrNotFound when no account has that id or name.
	AccountPassword(ctx context.Context, idOrName string) (string, error)

	// Console sessions. CreateSession inserts one; SessionByHash finds one
	// (ErrNotFound when there is none, expired or not: the caller checks
	// the times); TouchSession sets its last use; DeleteSession removes
	// one (no error when it is gone); DeleteSessions removes those of an
	// account, and DeleteExpiredSessions those whose absolute end is before
	// now or whose last use is before idleBefore, returning how many.
	CreateSession(ctx context.Context, s Session) error
	SessionByHash(ctx context.Context, hash string) (Session, error)
	TouchSession(ctx context.Context, hash string, at time.Time) error
	DeleteSession(ctx context.Context, hash string) error
	DeleteSessions(ctx context.Context, accountID string) error
	DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error)

	// Zones and hosts.
	EnsureZone(ctx context.Context, name string) (domain.Zone, error)
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
	ListZones(ctx context.Context) ([]domain.Zone, error)
	// UpsertHost inserts the host or updates everything but ID and Enabled
	// of the host with the same name.
	UpsertHost(ctx context.Context, h domain.Host) (domain.Host, error)
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)

	// Offerings.
	CreateOffering(ctx context.Context, o domain.Offering) error
	Offering(ctx context.Context, id string) (domain.Offering, error)
	ListOfferings(ctx context.Context, f OfferingFilter) ([]domain.Offering, error)
	// RemoveOffering marks the offering removed at the given time; ErrConflict
	// while VMs are assigned to it, ErrNotFound when absent or already removed.
	RemoveOffering(ctx context.Context, id string, at time.Time) error

	// VMs.
	// SyncHostVMs records the VMs a host reports, as read from at on: new
	// ones get accountID as owner; known ones keep owner, offering and work
	// state; VMs of the host that are no longer reported become Missing. A
	// VM recorded later than at (RecordVMDisks after a command, while this
	// report was read) keeps that newer record.
	SyncHostVMs(ctx context.Context, hostID string, vms []domain.VM, defaultAccountID string, at time.Time) error
	// RecordVMDisks records one VM's hypervisor state and disks as its host
	// reported them (after a command that changed them), leaving owner,
	// offering and work state alone; ErrNotFound when no VM has that id.
	RecordVMDisks(ctx context.Context, vmID string, state domain.VMState, disks []domain.Disk, at time.Time) error
	VM(ctx context.Context, idOrName string) (domain.VM, error)
	ListVMs(ctx context.Context, f VMFilter) ([]domain.VM, error)
	// HostsOfVMs maps VM ids to their hosts' ids (unknown ids are left
	// out), in one query.
	HostsOfVMs(ctx context.Context, vmIDs []string) (map[string]string, error)
	// SetVMOffering assigns (offeringID non-empty) or unassigns the VM. The
	// offering must exist and not be removed.
	SetVMOffering(ctx context.Context, vmID, offeringID string) error
	SetVMOwner(ctx context.Context, vmID, accountID string) error
	SetVMWorkState(ctx context.Context, vmID string, s domain.VMState) error

	// Settings and VM details.
	SetSetting(ctx context.Context, s Setting) error
	DeleteSetting(ctx context.Context, scope, scopeID, key string) error
	ListSettings(ctx context.Context) ([]Setting, error)
	SetVMDetail(ctx context.Context, vmID, key, value string) error
	DeleteVMDetail(ctx context.Context, vmID, key string) error
	VMDetails(ctx context.Context, vmID string) (map[string]string, error)

	// Operations.
	CreateOperation(ctx context.Context, op domain.Operation) error
	UpdateOperation(ctx context.Context, op domain.Operation) error
	Operation(ctx context.Context, id string) (domain.Operation, error)
	// ListOperations returns operations not done, or all with f.All,
	// newest first.
	ListOperations(ctx context.Context, f OperationFilter) ([]domain.Operation, error)

	// Backups.
	CreateBackup(ctx context.Context, b domain.Backup) error
	// SaveBackup updates a backup's row and replaces its files; when chain is
	// not nil it also replaces the VM's chain head and deltas, in the same
	// transaction.
	SaveBackup(ctx context.Context, b domain.Backup, chain *Chain) error
	Backup(ctx context.Context, id string) (domain.Backup, error)
	// SetValidation changes only the validation fields; steps replace the
	// recorded validation steps (nil: none); hashes, when not nil, replace
	// the per-disk file hashes (recorded after a valid boot).
	SetValidation(ctx context.Context, id string, st domain.ValidationStatus, reason string, steps []domain.ValidationStepRun, hasScreenshot bool, hashes map[string]string) error
	// MarkEndOfChain flags a backup as the end of its chain (only that field).
	MarkEndOfChain(ctx context.Context, id string) error
	// SetBackupStatus changes only a backup's status (and updated time).
	SetBackupStatus(ctx context.Context, id string, st domain.BackupStatus, at time.Time) error
	// SetCompression changes only the compression fields; files, when not
	// nil, replace the per-disk sizes and hashes.
	SetCompression(ctx context.Context, id string, st domain.CompressionStatus, size, uncompressed int64, files []domain.BackupFile) error
	// ListBackups returns backups (with files) oldest first.
	ListBackups(ctx context.Context, f BackupFilter) ([]domain.Backup, error)
	// ExpungeBackup removes a backup and its files from the catalogue.
	ExpungeBackup(ctx context.Context, id string) error

	// Chain state of a VM: the chain head and its deltas on primary storage.
	Chain(ctx context.Context, vmID string) (Chain, error)
	SetChain(ctx context.Context, vmID string, c Chain) error

	// AcquireVM marks the VM busy with holder (an operation description);
	// ErrConflict naming the current holder when it is busy already.
	AcquireVM(ctx context.Context, vmID, holder string) error
	// ReleaseVM clears the busy mark if holder still holds it.
	ReleaseVM(ctx context.Context, vmID, holder string) error
	// SetVMError records why a VM needs attention ("" clears it).
	SetVMError(ctx context.Context, vmID, msg string) error

	// Snapshots.
	SaveSnapshot(ctx context.Context, sn domain.Snapshot) error // insert or update
	Snapshot(ctx context.Context, id string) (domain.Snapshot, error)
	// Snapshots lists a VM's snapshots (not deleted), oldest first.
	Snapshots(ctx context.Context, vmID string) ([]domain.Snapshot, error)
	DeleteSnapshot(ctx context.Context, id string) error

	// Schedules.
	SaveSchedule(ctx context.Context, sc domain.Schedule) error // insert or update
	Schedule(ctx context.Context, id string) (domain.Schedule, error)
	// Schedules lists the schedules of a VM, or all with vmID "".
	Schedules(ctx context.Context, vmID string) ([]domain.Schedule, error)
	// DueSchedules lists at most limit schedules due at now (next run not
	// after it), the most overdue first.
	DueSchedules(ctx context.Context, now time.Time, limit int) ([]domain.Schedule, error)
	DeleteSchedule(ctx context.Context, id string) error
	// AdvanceSchedule moves next_run from prev to next if nobody did: the
	// caller that gets true runs the due backup, exactly once.
	AdvanceSchedule(ctx context.Context, id string, prev, next time.Time) (bool, error)

	// Service jobs.
	EnqueueJob(ctx context.Context, j jobs.Job) error
	Job(ctx context.Context, id string) (jobs.Job, error)
	// Jobs lists jobs matching f, oldest scheduled first.
	Jobs(ctx context.Context, f JobFilter) ([]jobs.Job, error)
	// ClaimJob starts a queued, due job on a host for owner until
	// leaseUntil. It reports false (and changes nothing) when the job is not
	// queued or not due any more, for example because another server
	// claimed it first.
	ClaimJob(ctx context.Context, id, owner, hostID string, now, leaseUntil time.Time) (bool, error)
	// ClaimJobs is ClaimJob for several jobs in one transaction (one
	// commit for a scheduler pass): it returns the claims that won, in
	// order.
	ClaimJobs(ctx context.Context, claims []JobClaim, owner string, now, leaseUntil time.Time) ([]JobClaim, error)
	// ReapJob records the outcome of a running job whose lease ran out
	// before now (its runner died); false when it is not such a job.
	ReapJob(ctx context.Context, id string, now time.Time, o jobs.Outcome, lastError string) (bool, error)
	// RenewLease extends owner's lease; false when owner lost the job.
	RenewLease(ctx context.Context, id, owner string, until time.Time) (bool, error)
	// FinishJob records an attempt's outcome if owner still holds the job;
	// a Queued state schedules a retry.
	FinishJob(ctx context.Context, id, owner string, o jobs.Outcome, lastError string, ended time.Time) (bool, error)

	// Backup storages and moves between them (storages.go).
	Storages

	Close() error

	// VM moves between hosts (see moves.go).
	VMMoveStore

	// Owners and leases of operations and VM locks (see leases.go).
	LeaseStore

	// The CA, join tokens and remote agents' identities (see agents.go).
	AgentStore

	// The dashboard's aggregates (see dashboard.go).
	Dashboards

	// The audit log of API calls (see audit.go).
	AuditStore
	// Notification targets, rules, conditions and outbox (see notify.go).
	NotifyStore
	// Remotes, copy policies and backup copies (see remotes.go).
	RemoteStore
}

// JobFilter selects jobs (seed: listBackupServiceJobs).
type JobFilter struct {
	ID, BackupID, HostID, ZoneID string
	Type                         jobs.Type
	Executing                    bool // only running jobs
	Scheduled                    bool // only jobs queued for later than Now
	Due                          bool // only jobs queued for Now or earlier
	All                          bool // finished jobs too
	Now                          time.Time
	Page
}

// JobClaim is a job to start on a host.
type JobClaim struct {
	JobID, HostID string
}

// BackupFilter selects backups.
type BackupFilter struct {
	VMID      string
	AccountID string
	Status    domain.BackupStatus
	Page
}

// Chain is a VM's chain state: the head backup ("" when the chain ended) and
// the deltas it keeps on primary storage, one per disk.
type Chain struct {
	Head   string
	Deltas []domain.Delta
}
