// The methods below forward to the wrapped store; each write first asks write() whether to fail.

package faultstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// CreateAccount is store.Store.CreateAccount (a write: it may be made to fail).
func (fs *Store) CreateAccount(ctx context.Context, a domain.Account) error {
	if err := fs.write("CreateAccount"); err != nil {
		return err
	}
	return fs.inner.CreateAccount(ctx, a)
}

// Account is store.Store.Account.
func (fs *Store) Account(ctx context.Context, idOrName string) (domain.Account, error) {
	return fs.inner.Account(ctx, idOrName)
}

// ListAccounts is store.Store.ListAccounts.
func (fs *Store) ListAccounts(ctx context.Context) ([]domain.Account, error) {
	return fs.inner.ListAccounts(ctx)
}

// SetAccountLimits is store.Store.SetAccountLimits (a write: it may be made to fail).
func (fs *Store) SetAccountLimits(ctx context.Context, id string, l domain.Limits) error {
	if err := fs.write("SetAccountLimits"); err != nil {
		return err
	}
	return fs.inner.SetAccountLimits(ctx, id, l)
}

// CreateToken is store.Store.CreateToken (a write: it may be made to fail).
func (fs *Store) CreateToken(ctx context.Context, t store.Token) error {
	if err := fs.write("CreateToken"); err != nil {
		return err
	}
	return fs.inner.CreateToken(ctx, t)
}

// TokenByHash is store.Store.TokenByHash.
func (fs *Store) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	return fs.inner.TokenByHash(ctx, hash)
}

// EnsureZone is store.Store.EnsureZone (a write: it may be made to fail).
func (fs *Store) EnsureZone(ctx context.Context, name string) (domain.Zone, error) {
	if err := fs.write("EnsureZone"); err != nil {
		return *new(domain.Zone), err
	}
	return fs.inner.EnsureZone(ctx, name)
}

// Zone is store.Store.Zone.
func (fs *Store) Zone(ctx context.Context, idOrName string) (domain.Zone, error) {
	return fs.inner.Zone(ctx, idOrName)
}

// ListZones is store.Store.ListZones.
func (fs *Store) ListZones(ctx context.Context) ([]domain.Zone, error) {
	return fs.inner.ListZones(ctx)
}

// UpsertHost is store.Store.UpsertHost (a write: it may be made to fail).
func (fs *Store) UpsertHost(ctx context.Context, h domain.Host) (domain.Host, error) {
	if err := fs.write("UpsertHost"); err != nil {
		return *new(domain.Host), err
	}
	return fs.inner.UpsertHost(ctx, h)
}

// Host is store.Store.Host.
func (fs *Store) Host(ctx context.Context, idOrName string) (domain.Host, error) {
	return fs.inner.Host(ctx, idOrName)
}

// ListHosts is store.Store.ListHosts.
func (fs *Store) ListHosts(ctx context.Context) ([]domain.Host, error) {
	return fs.inner.ListHosts(ctx)
}

// CreateOffering is store.Store.CreateOffering (a write: it may be made to fail).
func (fs *Store) CreateOffering(ctx context.Context, o domain.Offering) error {
	if err := fs.write("CreateOffering"); err != nil {
		return err
	}
	return fs.inner.CreateOffering(ctx, o)
}

// Offering is store.Store.Offering.
func (fs *Store) Offering(ctx context.Context, id string) (domain.Offering, error) {
	return fs.inner.Offering(ctx, id)
}

// ListOfferings is store.Store.ListOfferings.
func (fs *Store) ListOfferings(ctx context.Context, f store.OfferingFilter) ([]domain.Offering, error) {
	return fs.inner.ListOfferings(ctx, f)
}

// RemoveOffering is store.Store.RemoveOffering (a write: it may be made to fail).
func (fs *Store) RemoveOffering(ctx context.Context, id string, at time.Time) error {
	if err := fs.write("RemoveOffering"); err != nil {
		return err
	}
	return fs.inner.RemoveOffering(ctx, id, at)
}

// SyncHostVMs is store.Store.SyncHostVMs (a write: it may be made to fail).
func (fs *Store) SyncHostVMs(ctx context.Context, hostID string, vms []domain.VM, defaultAccountID string, at time.Time) error {
	if err := fs.write("SyncHostVMs"); err != nil {
		return err
	}
	return fs.inner.SyncHostVMs(ctx, hostID, vms, defaultAccountID, at)
}

// RecordVMDisks is store.Store.RecordVMDisks (a write: it may be made to fail).
func (fs *Store) RecordVMDisks(ctx context.Context, vmID string, state domain.VMState, disks []domain.Disk, at time.Time) error {
	if err := fs.write("RecordVMDisks"); err != nil {
		return err
	}
	return fs.inner.RecordVMDisks(ctx, vmID, state, disks, at)
}

// VM is store.Store.VM.
func (fs *Store) VM(ctx context.Context, idOrName string) (domain.VM, error) {
	return fs.inner.VM(ctx, idOrName)
}

// HostsOfVMs is store.Store.HostsOfVMs.
func (fs *Store) HostsOfVMs(ctx context.Context, vmIDs []string) (map[string]string, error) {
	return fs.inner.HostsOfVMs(ctx, vmIDs)
}

// ListVMs is store.Store.ListVMs.
func (fs *Store) ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error) {
	return fs.inner.ListVMs(ctx, f)
}

// SetVMOffering is store.Store.SetVMOffering (a write: it may be made to fail).
func (fs *Store) SetVMOffering(ctx context.Context, vmID string, offeringID string) error {
	if err := fs.write("SetVMOffering"); err != nil {
		return err
	}
	return fs.inner.SetVMOffering(ctx, vmID, offeringID)
}

// SetVMOwner is store.Store.SetVMOwner (a write: it may be made to fail).
func (fs *Store) SetVMOwner(ctx context.Context, vmID string, accountID string) error {
	if err := fs.write("SetVMOwner"); err != nil {
		return err
	}
	return fs.inner.SetVMOwner(ctx, vmID, accountID)
}

// SetVMWorkState is store.Store.SetVMWorkState (a write: it may be made to fail).
func (fs *Store) SetVMWorkState(ctx context.Context, vmID string, s domain.VMState) error {
	if err := fs.write("SetVMWorkState"); err != nil {
		return err
	}
	return fs.inner.SetVMWorkState(ctx, vmID, s)
}

// SetSetting is store.Store.SetSetting (a write: it may be made to fail).
func (fs *Store) SetSetting(ctx context.Context, s store.Setting) error {
	if err := fs.write("SetSetting"); err != nil {
		return err
	}
	return fs.inner.SetSetting(ctx, s)
}

// DeleteSetting is store.Store.DeleteSetting (a write: it may be made to fail).
func (fs *Store) DeleteSetting(ctx context.Context, scope string, scopeID string, key string) error {
	if err := fs.write("DeleteSetting"); err != nil {
		return err
	}
	return fs.inner.DeleteSetting(ctx, scope, scopeID, key)
}

// ListSettings is store.Store.ListSettings.
func (fs *Store) ListSettings(ctx context.Context) ([]store.Setting, error) {
	return fs.inner.ListSettings(ctx)
}

// SetVMDetail is store.Store.SetVMDetail (a write: it may be made to fail).
func (fs *Store) SetVMDetail(ctx context.Context, vmID string, key string, value string) error {
	if err := fs.write("SetVMDetail"); err != nil {
		return err
	}
	return fs.inner.SetVMDetail(ctx, vmID, key, value)
}

// DeleteVMDetail is store.Store.DeleteVMDetail (a write: it may be made to fail).
func (fs *Store) DeleteVMDetail(ctx context.Context, vmID string, key string) error {
	if err := fs.write("DeleteVMDetail"); err != nil {
		return err
	}
	return fs.inner.DeleteVMDetail(ctx, vmID, key)
}

// VMDetails is store.Store.VMDetails.
func (fs *Store) VMDetails(ctx context.Context, vmID string) (map[string]string, error) {
	return fs.inner.VMDetails(ctx, vmID)
}

// CreateOperation is store.Store.CreateOperation (a write: it may be made to fail).
func (fs *Store) CreateOperation(ctx context.Context, op domain.Operation) error {
	if err := fs.write("CreateOperation"); err != nil {
		return err
	}
	return fs.inner.CreateOperation(ctx, op)
}

// UpdateOperation is store.Store.UpdateOperation (a write: it may be made to fail).
func (fs *Store) UpdateOperation(ctx context.Context, op domain.Operation) error {
	if err := fs.write("UpdateOperation"); err != nil {
		return err
	}
	return fs.inner.UpdateOperation(ctx, op)
}

// Operation is store.Store.Operation.
func (fs *Store) Operation(ctx context.Context, id string) (domain.Operation, error) {
	return fs.inner.Operation(ctx, id)
}

// ListOperations is store.Store.ListOperations.
func (fs *Store) ListOperations(ctx context.Context, f store.OperationFilter) ([]domain.Operation, error) {
	return fs.inner.ListOperations(ctx, f)
}

// CreateBackup is store.Store.CreateBackup (a write: it may be made to fail).
func (fs *Store) CreateBackup(ctx context.Context, b domain.Backup) error {
	if err := fs.write("CreateBackup"); err != nil {
		return err
	}
	return fs.inner.CreateBackup(ctx, b)
}

// SaveBackup is store.Store.SaveBackup (a write: it may be made to fail).
func (fs *Store) SaveBackup(ctx context.Context, b domain.Backup, chain *store.Chain) error {
	if err := fs.write("SaveBackup"); err != nil {
		return err
	}
	return fs.inner.SaveBackup(ctx, b, chain)
}

// Backup is store.Store.Backup.
func (fs *Store) Backup(ctx context.Context, id string) (domain.Backup, error) {
	return fs.inner.Backup(ctx, id)
}

// SetValidation is store.Store.SetValidation (a write: it may be made to fail).
func (fs *Store) SetValidation(ctx context.Context, id string, st domain.ValidationStatus, reason string, steps []domain.ValidationStepRun, hasScreenshot bool, hashes map[string]string) error {
	if err := fs.write("SetValidation"); err != nil {
		return err
	}
	return fs.inner.SetValidation(ctx, id, st, reason, steps, hasScreenshot, hashes)
}

// MarkEndOfChain is store.Store.MarkEndOfChain (a write: it may be made to fail).
func (fs *Store) MarkEndOfChain(ctx context.Context, id string) error {
	if err := fs.write("MarkEndOfChain"); err != nil {
		return err
	}
	return fs.inner.MarkEndOfChain(ctx, id)
}

// SetBackupStatus is store.Store.SetBackupStatus (a write: it may be made to fail).
func (fs *Store) SetBackupStatus(ctx context.Context, id string, st domain.BackupStatus, at time.Time) error {
	if err := fs.write("SetBackupStatus"); err != nil {
		return err
	}
	return fs.inner.SetBackupStatus(ctx, id, st, at)
}

// SetCompression is store.Store.SetCompression (a write: it may be made to fail).
func (fs *Store) SetCompression(ctx context.Context, id string, st domain.CompressionStatus, size int64, uncompressed int64, files []domain.BackupFile) error {
	if err := fs.write("SetCompression"); err != nil {
		return err
	}
	return fs.inner.SetCompression(ctx, id, st, size, uncompressed, files)
}

// ListBackups is store.Store.ListBackups.
func (fs *Store) ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error) {
	return fs.inner.ListBackups(ctx, f)
}

// ExpungeBackup is store.Store.ExpungeBackup (a write: it may be made to fail).
func (fs *Store) ExpungeBackup(ctx context.Context, id string) error {
	if err := fs.write("ExpungeBackup"); err != nil {
		return err
	}
	return fs.inner.ExpungeBackup(ctx, id)
}

// Chain is store.Store.Chain.
func (fs *Store) Chain(ctx context.Context, vmID string) (store.Chain, error) {
	return fs.inner.Chain(ctx, vmID)
}

// SetChain is store.Store.SetChain (a write: it may be made to fail).
func (fs *Store) SetChain(ctx context.Context, vmID string, c store.Chain) error {
	if err := fs.write("SetChain"); err != nil {
		return err
	}
	return fs.inner.SetChain(ctx, vmID, c)
}

// AcquireVM is store.Store.AcquireVM (a write: it may be made to fail).
func (fs *Store) AcquireVM(ctx context.Context, vmID string, holder string) error {
	if err := fs.write("AcquireVM"); err != nil {
		return err
	}
	return fs.inner.AcquireVM(ctx, vmID, holder)
}

// ReleaseVM is store.Store.ReleaseVM (a write: it may be made to fail).
func (fs *Store) ReleaseVM(ctx context.Context, vmID string, holder string) error {
	if err := fs.write("ReleaseVM"); err != nil {
		return err
	}
	return fs.inner.ReleaseVM(ctx, vmID, holder)
}

// SetVMError is store.Store.SetVMError (a write: it may be made to fail).
func (fs *Store) SetVMError(ctx context.Context, vmID string, msg string) error {
	if err := fs.write("SetVMError"); err != nil {
		return err
	}
	return fs.inner.SetVMError(ctx, vmID, msg)
}

// SaveSnapshot is store.Store.SaveSnapshot (a write: it may be made to fail).
func (fs *Store) SaveSnapshot(ctx context.Context, sn domain.Snapshot) error {
	if err := fs.write("SaveSnapshot"); err != nil {
		return err
	}
	return fs.inner.SaveSnapshot(ctx, sn)
}

// Snapshot is store.Store.Snapshot.
func (fs *Store) Snapshot(ctx context.Context, id string) (domain.Snapshot, error) {
	return fs.inner.Snapshot(ctx, id)
}

// Snapshots is store.Store.Snapshots.
func (fs *Store) Snapshots(ctx context.Context, vmID string) ([]domain.Snapshot, error) {
	return fs.inner.Snapshots(ctx, vmID)
}

// DeleteSnapshot is store.Store.DeleteSnapshot (a write: it may be made to fail).
func (fs *Store) DeleteSnapshot(ctx context.Context, id string) error {
	if err := fs.write("DeleteSnapshot"); err != nil {
		return err
	}
	return fs.inner.DeleteSnapshot(ctx, id)
}

// SaveSchedule is store.Store.SaveSchedule (a write: it may be made to fail).
func (fs *Store) SaveSchedule(ctx context.Context, sc domain.Schedule) error {
	if err := fs.write("SaveSchedule"); err != nil {
		return err
	}
	return fs.inner.SaveSchedule(ctx, sc)
}

// Schedule is store.Store.Schedule.
func (fs *Store) Schedule(ctx context.Context, id string) (domain.Schedule, error) {
	return fs.inner.Schedule(ctx, id)
}

// DueSchedules is store.Store.DueSchedules.
func (fs *Store) DueSchedules(ctx context.Context, now time.Time, limit int) ([]domain.Schedule, error) {
	return fs.inner.DueSchedules(ctx, now, limit)
}

// Schedules is store.Store.Schedules.
func (fs *Store) Schedules(ctx context.Context, vmID string) ([]domain.Schedule, error) {
	return fs.inner.Schedules(ctx, vmID)
}

// DeleteSchedule is store.Store.DeleteSchedule (a write: it may be made to fail).
func (fs *Store) DeleteSchedule(ctx context.Context, id string) error {
	if err := fs.write("DeleteSchedule"); err != nil {
		return err
	}
	return fs.inner.DeleteSchedule(ctx, id)
}

// AdvanceSchedule is store.Store.AdvanceSchedule (a write: it may be made to fail).
func (fs *Store) AdvanceSchedule(ctx context.Context, id string, prev time.Time, next time.Time) (bool, error) {
	if err := fs.write("AdvanceSchedule"); err != nil {
		return *new(bool), err
	}
	return fs.inner.AdvanceSchedule(ctx, id, prev, next)
}

// EnqueueJob is store.Store.EnqueueJob (a write: it may be made to fail).
func (fs *Store) EnqueueJob(ctx context.Context, j jobs.Job) error {
	if err := fs.write("EnqueueJob"); err != nil {
		return err
	}
	return fs.inner.EnqueueJob(ctx, j)
}

// Job is store.Store.Job.
func (fs *Store) Job(ctx context.Context, id string) (jobs.Job, error) {
	return fs.inner.Job(ctx, id)
}

// Jobs is store.Store.Jobs.
func (fs *Store) Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error) {
	return fs.inner.Jobs(ctx, f)
}

// ClaimJobs is store.Store.ClaimJobs (a write: it may be made to fail).
func (fs *Store) ClaimJobs(ctx context.Context, claims []store.JobClaim, owner string, now time.Time, leaseUntil time.Time) ([]store.JobClaim, error) {
	if err := fs.write("ClaimJobs"); err != nil {
		return nil, err
	}
	return fs.inner.ClaimJobs(ctx, claims, owner, now, leaseUntil)
}

// ClaimJob is store.Store.ClaimJob (a write: it may be made to fail).
func (fs *Store) ClaimJob(ctx context.Context, id string, owner string, hostID string, now time.Time, leaseUntil time.Time) (bool, error) {
	if err := fs.write("ClaimJob"); err != nil {
		return *new(bool), err
	}
	return fs.inner.ClaimJob(ctx, id, owner, hostID, now, leaseUntil)
}

// ReapJob is store.Store.ReapJob (a write: it may be made to fail).
func (fs *Store) ReapJob(ctx context.Context, id string, now time.Time, o jobs.Outcome, lastError string) (bool, error) {
	if err := fs.write("ReapJob"); err != nil {
		return *new(bool), err
	}
	return fs.inner.ReapJob(ctx, id, now, o, lastError)
}

// RenewLease is store.Store.RenewLease (a write: it may be made to fail).
func (fs *Store) RenewLease(ctx context.Context, id string, owner string, until time.Time) (bool, error) {
	if err := fs.write("RenewLease"); err != nil {
		return *new(bool), err
	}
	return fs.inner.RenewLease(ctx, id, owner, until)
}

// FinishJob is store.Store.FinishJob (a write: it may be made to fail).
func (fs *Store) FinishJob(ctx context.Context, id string, owner string, o jobs.Outcome, lastError string, ended time.Time) (bool, error) {
	if err := fs.write("FinishJob"); err != nil {
		return *new(bool), err
	}
	return fs.inner.FinishJob(ctx, id, owner, o, lastError, ended)
}

// Close is store.Store.Close.
func (fs *Store) Close() error {
	return fs.inner.Close()
}

// InitCA is store.Store.InitCA (a write: it may be made to fail).
func (fs *Store) InitCA(ctx context.Context, certPEM string, keyPEM string, at time.Time) (cert, key string, err error) {
	if err := fs.write("InitCA"); err != nil {
		return "", "", err
	}
	return fs.inner.InitCA(ctx, certPEM, keyPEM, at)
}

// CreateJoinToken is store.Store.CreateJoinToken (a write: it may be made to fail).
func (fs *Store) CreateJoinToken(ctx context.Context, t store.JoinToken) error {
	if err := fs.write("CreateJoinToken"); err != nil {
		return err
	}
	return fs.inner.CreateJoinToken(ctx, t)
}

// JoinToken is store.Store.JoinToken.
func (fs *Store) JoinToken(ctx context.Context, id string) (store.JoinToken, error) {
	return fs.inner.JoinToken(ctx, id)
}

// ListJoinTokens is store.Store.ListJoinTokens.
func (fs *Store) ListJoinTokens(ctx context.Context) ([]store.JoinToken, error) {
	return fs.inner.ListJoinTokens(ctx)
}

// UseJoinToken is store.Store.UseJoinToken (a write: it may be made to fail).
func (fs *Store) UseJoinToken(ctx context.Context, id string, hash string, host string, now time.Time) (bool, error) {
	if err := fs.write("UseJoinToken"); err != nil {
		return *new(bool), err
	}
	return fs.inner.UseJoinToken(ctx, id, hash, host, now)
}

// RevokeJoinToken is store.Store.RevokeJoinToken (a write: it may be made to fail).
func (fs *Store) RevokeJoinToken(ctx context.Context, id string) error {
	if err := fs.write("RevokeJoinToken"); err != nil {
		return err
	}
	return fs.inner.RevokeJoinToken(ctx, id)
}

// SetHostIdentity is store.Store.SetHostIdentity (a write: it may be made to fail).
func (fs *Store) SetHostIdentity(ctx context.Context, hostID string, serial string, url string, at time.Time) error {
	if err := fs.write("SetHostIdentity"); err != nil {
		return err
	}
	return fs.inner.SetHostIdentity(ctx, hostID, serial, url, at)
}

// SetHostAgentURL is store.Store.SetHostAgentURL (a write: it may be made to fail).
func (fs *Store) SetHostAgentURL(ctx context.Context, hostID string, url string) error {
	if err := fs.write("SetHostAgentURL"); err != nil {
		return err
	}
	return fs.inner.SetHostAgentURL(ctx, hostID, url)
}

// HostAgent is store.Store.HostAgent.
func (fs *Store) HostAgent(ctx context.Context, hostID string) (store.HostAgent, error) {
	return fs.inner.HostAgent(ctx, hostID)
}

// ListHostAgents is store.Store.ListHostAgents.
func (fs *Store) ListHostAgents(ctx context.Context) ([]store.HostAgent, error) {
	return fs.inner.ListHostAgents(ctx)
}

// RevokeHostIdentity is store.Store.RevokeHostIdentity (a write: it may be made to fail).
func (fs *Store) RevokeHostIdentity(ctx context.Context, hostID string) error {
	if err := fs.write("RevokeHostIdentity"); err != nil {
		return err
	}
	return fs.inner.RevokeHostIdentity(ctx, hostID)
}

// SetHostConnection is store.Store.SetHostConnection (a write: it may be made to fail).
func (fs *Store) SetHostConnection(ctx context.Context, hostID string, state string, at time.Time) error {
	if err := fs.write("SetHostConnection"); err != nil {
		return err
	}
	return fs.inner.SetHostConnection(ctx, hostID, state, at)
}

// SetHostEnabled is store.Store.SetHostEnabled (a write: it may be made to fail).
func (fs *Store) SetHostEnabled(ctx context.Context, hostID string, enabled bool) error {
	if err := fs.write("SetHostEnabled"); err != nil {
		return err
	}
	return fs.inner.SetHostEnabled(ctx, hostID, enabled)
}

// AcquireVMFor is store.Store.AcquireVMFor (a write: it may be made to fail).
func (fs *Store) AcquireVMFor(ctx context.Context, vmID string, holder string, owner string, until time.Time) error {
	if err := fs.write("AcquireVMFor"); err != nil {
		return err
	}
	return fs.inner.AcquireVMFor(ctx, vmID, holder, owner, until)
}

// VMLocks is store.Store.VMLocks.
func (fs *Store) VMLocks(ctx context.Context) ([]store.VMLock, error) {
	return fs.inner.VMLocks(ctx)
}

// TakeVMLock is store.Store.TakeVMLock (a write: it may be made to fail).
func (fs *Store) TakeVMLock(ctx context.Context, l store.VMLock) (bool, error) {
	if err := fs.write("TakeVMLock"); err != nil {
		return *new(bool), err
	}
	return fs.inner.TakeVMLock(ctx, l)
}

// RenewOwner is store.Store.RenewOwner (a write: it may be made to fail).
func (fs *Store) RenewOwner(ctx context.Context, owner string, until time.Time) error {
	if err := fs.write("RenewOwner"); err != nil {
		return err
	}
	return fs.inner.RenewOwner(ctx, owner, until)
}

// FailOperationIf is store.Store.FailOperationIf (a write: it may be made to fail).
func (fs *Store) FailOperationIf(ctx context.Context, id string, owner string, until time.Time, msg string, now time.Time) (bool, error) {
	if err := fs.write("FailOperationIf"); err != nil {
		return *new(bool), err
	}
	return fs.inner.FailOperationIf(ctx, id, owner, until, msg, now)
}

// ReapJobOf is store.Store.ReapJobOf (a write: it may be made to fail).
func (fs *Store) ReapJobOf(ctx context.Context, id string, owner string, now time.Time, o jobs.Outcome, lastError string) (bool, error) {
	if err := fs.write("ReapJobOf"); err != nil {
		return *new(bool), err
	}
	return fs.inner.ReapJobOf(ctx, id, owner, now, o, lastError)
}

// UpdateOwnedOperation is store.Store.UpdateOwnedOperation (a write: it may be made to fail).
func (fs *Store) UpdateOwnedOperation(ctx context.Context, op domain.Operation, owner string) (bool, error) {
	if err := fs.write("UpdateOwnedOperation"); err != nil {
		return *new(bool), err
	}
	return fs.inner.UpdateOwnedOperation(ctx, op, owner)
}

// SetBackupStatusIf is store.Store.SetBackupStatusIf (a write: it may be made to fail).
func (fs *Store) SetBackupStatusIf(ctx context.Context, id string, from domain.BackupStatus, to domain.BackupStatus, seen time.Time, at time.Time) (bool, error) {
	if err := fs.write("SetBackupStatusIf"); err != nil {
		return *new(bool), err
	}
	return fs.inner.SetBackupStatusIf(ctx, id, from, to, seen, at)
}

// RecordVMMove is store.Store.RecordVMMove (a write: it may be made to fail).
func (fs *Store) RecordVMMove(ctx context.Context, m store.VMMove) error {
	if err := fs.write("RecordVMMove"); err != nil {
		return err
	}
	return fs.inner.RecordVMMove(ctx, m)
}

// VMMoves is store.Store.VMMoves.
func (fs *Store) VMMoves(ctx context.Context) ([]store.VMMove, error) {
	return fs.inner.VMMoves(ctx)
}

// FinishVMMove is store.Store.FinishVMMove (a write: it may be made to fail).
func (fs *Store) FinishVMMove(ctx context.Context, vmID string) error {
	if err := fs.write("FinishVMMove"); err != nil {
		return err
	}
	return fs.inner.FinishVMMove(ctx, vmID)
}

// SetVMHost is store.Store.SetVMHost (a write: it may be made to fail).
func (fs *Store) SetVMHost(ctx context.Context, vmID string, hostID string) error {
	if err := fs.write("SetVMHost"); err != nil {
		return err
	}
	return fs.inner.SetVMHost(ctx, vmID, hostID)
}

// CreateStorage is store.Store.CreateStorage (a write: it may be made to fail).
func (fs *Store) CreateStorage(ctx context.Context, st domain.Storage) error {
	if err := fs.write("CreateStorage"); err != nil {
		return err
	}
	return fs.inner.CreateStorage(ctx, st)
}

// Storage is store.Store.Storage.
func (fs *Store) Storage(ctx context.Context, idOrName string) (domain.Storage, error) {
	return fs.inner.Storage(ctx, idOrName)
}

// StorageUsed is store.Store.StorageUsed.
func (fs *Store) StorageUsed(ctx context.Context, id string) (int64, error) {
	return fs.inner.StorageUsed(ctx, id)
}

// ListStorages is store.Store.ListStorages.
func (fs *Store) ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error) {
	return fs.inner.ListStorages(ctx, zoneID)
}

// SetStorageEnabled is store.Store.SetStorageEnabled (a write: it may be made to fail).
func (fs *Store) SetStorageEnabled(ctx context.Context, id string, enabled bool) error {
	if err := fs.write("SetStorageEnabled"); err != nil {
		return err
	}
	return fs.inner.SetStorageEnabled(ctx, id, enabled)
}

// SetStorageCapacity is store.Store.SetStorageCapacity (a write: it may be made to fail).
func (fs *Store) SetStorageCapacity(ctx context.Context, id string, capacity int64, free int64, at time.Time) error {
	if err := fs.write("SetStorageCapacity"); err != nil {
		return err
	}
	return fs.inner.SetStorageCapacity(ctx, id, capacity, free, at)
}

// RemoveStorage is store.Store.RemoveStorage (a write: it may be made to fail).
func (fs *Store) RemoveStorage(ctx context.Context, id string) error {
	if err := fs.write("RemoveStorage"); err != nil {
		return err
	}
	return fs.inner.RemoveStorage(ctx, id)
}

// AdoptBackups is store.Store.AdoptBackups (a write: it may be made to fail).
func (fs *Store) AdoptBackups(ctx context.Context, storageID string) (int, error) {
	if err := fs.write("AdoptBackups"); err != nil {
		return *new(int), err
	}
	return fs.inner.AdoptBackups(ctx, storageID)
}

// StartStorageMoves is store.Store.StartStorageMoves (a write: it may be made to fail).
func (fs *Store) StartStorageMoves(ctx context.Context, moves []store.StorageMove) error {
	if err := fs.write("StartStorageMoves"); err != nil {
		return err
	}
	return fs.inner.StartStorageMoves(ctx, moves)
}

// SwitchStorageMoves is store.Store.SwitchStorageMoves (a write: it may be made to fail).
func (fs *Store) SwitchStorageMoves(ctx context.Context, backupIDs []string) error {
	if err := fs.write("SwitchStorageMoves"); err != nil {
		return err
	}
	return fs.inner.SwitchStorageMoves(ctx, backupIDs)
}

// StorageMoves is store.Store.StorageMoves.
func (fs *Store) StorageMoves(ctx context.Context) ([]store.StorageMove, error) {
	return fs.inner.StorageMoves(ctx)
}

// EndStorageMove is store.Store.EndStorageMove (a write: it may be made to fail).
func (fs *Store) EndStorageMove(ctx context.Context, backupID string) error {
	if err := fs.write("EndStorageMove"); err != nil {
		return err
	}
	return fs.inner.EndStorageMove(ctx, backupID)
}
