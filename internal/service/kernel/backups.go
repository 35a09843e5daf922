package kernel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/chain"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// vmSettings returns the settings view for a VM (its host, zone, account).
func (s *Kernel) VMSettings(ctx context.Context, vm domain.VM) (settings.View, error) {
	t := settings.Target{Host: vm.HostID, Account: vm.AccountID}
	if h, err := s.store.Host(ctx, vm.HostID); err == nil {
		t.Zone = h.ZoneID
	}
	return s.Settings(ctx, t)
}

// lockVM marks the VM busy for the operation or refuses with a clear message.
func (s *Kernel) LockVM(ctx context.Context, vm domain.VM, what string) (release func(), err error) {
	holder := what + " (started " + s.clock.Now().Format(time.RFC3339) + ")"
	if err := s.store.AcquireVMFor(ctx, vm.ID, holder, s.Owner(), s.LeaseEnd()); err != nil {
		return nil, fmt.Errorf("vm %s: %w", vm.Name, err)
	}
	return func() {
		// A lock that can't be released now runs out with its lease.
		if err := retryWrite(func() error { return s.store.ReleaseVM(context.WithoutCancel(ctx), vm.ID, holder) }); err != nil {
			s.log.Warn("release the VM lock; its lease runs out", "vm", vm.Name, "err", err)
		}
	}, nil
}

// refreshHost re-reads a host's inventory after its disks changed.
func (s *Kernel) RefreshHost(ctx context.Context, hostID string) {
	a, err := s.Agent(hostID)
	if err != nil {
		return
	}
	admin, err := s.EnsureAdmin(ctx)
	if err != nil {
		return
	}
	if err := s.SyncHost(ctx, hostID, a, admin.ID); err != nil {
		s.log.Warn("inventory refresh", "host", hostID, "err", err)
	}
}

// recoverVM brings a VM back to a consistent chain after an interruption:
// backups left BackingUp become Error and their partial files go, every knib
// delta on the VM's disks is merged (the chain ends), and the VM returns to
// its hypervisor state. If it cannot, the VM stays BackupError and LastError
// says what is missing.
func (s *Kernel) RecoverVM(ctx context.Context, vmID string) error {
	vm, err := s.store.VM(ctx, vmID)
	if err != nil {
		return err
	}
	a, err := s.RecoveryAgent(vm.HostID)
	if err != nil {
		return err
	}
	backups, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vm.ID})
	if err != nil {
		return err
	}
	var partial []domain.Backup
	for _, b := range backups {
		if b.Status == domain.BackupBackingUp {
			b.Status, b.Error, b.Updated = domain.BackupError, "interrupted: recovered by reconciliation", s.clock.Now()
			if err := s.store.SaveBackup(ctx, b, nil); err != nil {
				return err
			}
		}
		if b.Status == domain.BackupError || b.Status == domain.BackupFailed {
			partial = append(partial, b)
		}
	}
	if vm.State == domain.VMMissing {
		return fmt.Errorf("vm %s is not defined on its host", vm.Name)
	}
	view, err := s.VMSettings(ctx, vm)
	if err != nil {
		return err
	}
	// Partial backup directories go storage by storage: the reconciliation
	// removes those of one storage, a task per other storage the rest.
	byRoot, err := s.StorageDirs(ctx, partial)
	if err != nil {
		return s.recoveryFailed(ctx, vm, err)
	}
	root := ""
	for r := range byRoot {
		if root == "" || len(byRoot[r]) > len(byRoot[root]) || (len(byRoot[r]) == len(byRoot[root]) && r < root) {
			root = r
		}
	}
	dirs := byRoot[root]
	delete(byRoot, root)
	err = s.ReconcileVM(ctx, vm, a, root, dirs, view.Duration(settings.KeyKnibTimeout))
	if err == nil {
		err = s.DeleteDirs(ctx, a, byRoot, view.Duration(settings.KeyKnibTimeout))
	}
	if err != nil {
		return s.recoveryFailed(ctx, vm, err)
	}
	for _, b := range backups {
		if (b.Status == domain.BackupError || b.Status == domain.BackupFailed) && len(b.Files) > 0 {
			b.Files = nil
			if err := s.store.SaveBackup(ctx, b, nil); err != nil {
				return fmt.Errorf("forget the files of backup %s: %w", b.ID, err)
			}
		}
	}
	if err := s.store.SetChain(ctx, vm.ID, store.Chain{}); err != nil {
		return err
	}
	if err := s.store.SetVMError(ctx, vm.ID, ""); err != nil {
		return err
	}
	if err := s.store.SetVMWorkState(ctx, vm.ID, ""); err != nil {
		return err
	}
	s.RefreshHost(ctx, vm.HostID)
	s.log.Info("vm reconciled; chain ended", "vm", vm.Name)
	return nil
}

// recoveryFailed leaves the VM in BackupError with the reason and returns
// the error; a failure to record that is joined to it.
func (s *Kernel) recoveryFailed(ctx context.Context, vm domain.VM, cause error) error {
	err := errors.New("recovery failed: " + cause.Error())
	if werr := s.store.SetVMWorkState(ctx, vm.ID, domain.VMBackupError); werr != nil {
		return errors.Join(err, fmt.Errorf("record BackupError of vm %s: %w", vm.Name, werr))
	}
	if werr := s.store.SetVMError(ctx, vm.ID, err.Error()); werr != nil {
		return errors.Join(err, fmt.Errorf("record the error of vm %s: %w", vm.Name, werr))
	}
	return err
}

// canSeeBackup: admins see every backup; users those of their account and
// those of the VMs they own now (backups follow the VM to its new owner).
func (s *Kernel) CanSeeBackup(ctx context.Context, p domain.Principal, b domain.Backup) bool {
	if p.IsAdmin() || b.AccountID == p.AccountID {
		return true
	}
	vm, err := s.store.VM(ctx, b.VMID)
	return err == nil && p.CanSeeVM(vm)
}

// Backup returns one backup the principal may see.
func (s *Kernel) Backup(ctx context.Context, p domain.Principal, id string) (domain.Backup, error) {
	if err := domain.ValidateRef("id", id); err != nil {
		return domain.Backup{}, err
	}
	b, err := s.store.Backup(ctx, id)
	if err != nil {
		return b, err
	}
	if !s.CanSeeBackup(ctx, p, b) {
		return domain.Backup{}, fmt.Errorf("backup %q: %w", id, domain.ErrNotFound)
	}
	return b, nil
}

func ToChain(all []domain.Backup) []chain.Backup {
	out := make([]chain.Backup, 0, len(all))
	for _, b := range all {
		out = append(out, chain.Backup{ID: b.ID, ParentID: b.ParentID, Type: b.Type, Isolated: b.Isolated, EndOfChain: b.EndOfChain,
			Position: b.Position, Status: b.Status, Created: b.Created})
	}
	return out
}

// endChain merges the VM's deltas on primary storage back into its disks and
// records that the chain ended (the next backup is full).
func (s *Kernel) EndChain(ctx context.Context, vm domain.VM, a agentapi.Agent, timeout time.Duration) error {
	c, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return err
	}
	if vm.State != domain.VMMissing {
		if err := s.ReconcileVM(ctx, vm, a, "", nil, timeout); err != nil {
			return err
		}
	}
	if c.Head != "" {
		if err := s.store.MarkEndOfChain(ctx, c.Head); err != nil {
			return err
		}
	}
	if err := s.store.SetChain(ctx, vm.ID, store.Chain{}); err != nil {
		return err
	}
	s.RefreshHost(ctx, vm.HostID)
	return nil
}

// ReconcileVM merges every knib delta of the VM (the chain ends), keeps its
// VM snapshots valid, and removes the given partial backup directories of
// the storage at root.
func (s *Kernel) ReconcileVM(ctx context.Context, vm domain.VM, a agentapi.Agent, root string, removeDirs []string, timeout time.Duration) error {
	others, err := s.SnapshotFiles(ctx, vm.ID, "")
	if err != nil {
		return err
	}
	req := agentapi.ReconcileRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: vm.ID, RemoveDirs: removeDirs, Others: others}
	res, err := Run(ctx, a, agentapi.Reconcile, req, timeout, nil, 0, 100)
	if err != nil {
		return err
	}
	for from, to := range res.Repoint {
		if err := s.RepointSnapshots(ctx, vm.ID, "", from, to); err != nil {
			return err
		}
	}
	return nil
}
