package kernel

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/chain"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// isSnapshotOverlay reports whether a file is a VM snapshot overlay of vmID.
func IsSnapshotOverlay(vmID string) func(string) bool {
	prefix := agentapi.SnapshotPrefix + vmID + "."
	return func(p string) bool { return strings.HasPrefix(filepath.Base(p), prefix) }
}

// snapshotFiles returns the frozen files of a VM's snapshots but one.
func (s *Kernel) SnapshotFiles(ctx context.Context, vmID, except string) ([]string, error) {
	snaps, err := s.store.Snapshots(ctx, vmID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sn := range snaps {
		if sn.ID == except {
			continue
		}
		for _, f := range sn.Files {
			out = append(out, f.Frozen)
		}
	}
	return out, nil
}

// repointSnapshots: after a merge of from into to on a disk, snapshots frozen
// on from find their state in to.
func (s *Kernel) RepointSnapshots(ctx context.Context, vmID, disk, from, to string) error {
	snaps, err := s.store.Snapshots(ctx, vmID)
	if err != nil {
		return fmt.Errorf("snapshots of vm %s: %w", vmID, err)
	}
	for _, sn := range snaps {
		changed := false
		for i, f := range sn.Files {
			if f.Frozen == from && (disk == "" || f.Disk == disk) {
				sn.Files[i].Frozen, changed = to, true
			}
		}
		if changed {
			if err := s.store.SaveSnapshot(ctx, sn); err != nil {
				return fmt.Errorf("re-point snapshot %s: %w", sn.ID, err)
			}
		}
	}
	return nil
}

// recoverVM brings a VM back to a consistent chain after an interruption:
// backups left BackingUp become Error and their partial files go, every knib
// delta on the VM's disks is merged (the chain ends: its head is marked the
// end of its chain), and the VM returns to its hypervisor state. If it
// cannot, the VM stays BackupError and LastError says what is missing.
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
	// The chain ended: its head is the last backup of it, as EndChain
	// records.
	c, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return err
	}
	if c.Head != "" {
		if err := s.store.MarkEndOfChain(ctx, c.Head); err != nil {
			return err
		}
	}
	if err := s.store.SetChain(ctx, vm.ID, store.Chain{}); err != nil {
		return err
	}
	// The VM's disks as they are now reach the catalogue before its state
	// says that the recovery is over: nobody sees a recovered VM with the
	// chain it had (a reader between the two saw the old delta).
	if _, _, err := s.ReadVM(ctx, vm); err != nil {
		s.log.Warn("read the recovered vm's disks", "vm", vm.Name, "err", err)
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

func ToChain(all []domain.Backup) []chain.Backup {
	out := make([]chain.Backup, 0, len(all))
	for _, b := range all {
		out = append(out, chain.Backup{ID: b.ID, ParentID: b.ParentID, Type: b.Type, Isolated: b.Isolated, EndOfChain: b.EndOfChain,
			Position: b.Position, Status: b.Status, Created: b.Created, HasFiles: len(b.Files) > 0})
	}
	return out
}

// EndChain merges the VM's deltas on primary storage back into its disks and
// records that the chain ended (the next backup is full), then refreshes
// the host's inventory.
func (s *Kernel) EndChain(ctx context.Context, vm domain.VM, a agentapi.Agent, timeout time.Duration) error {
	if err := s.EndChainUnrefreshed(ctx, vm, a, timeout); err != nil {
		return err
	}
	s.RefreshHost(ctx, vm.HostID)
	return nil
}

// EndChainUnrefreshed is EndChain without the inventory refresh, for a
// caller that changes the VM's disks next and refreshes the inventory
// after that (a restore).
func (s *Kernel) EndChainUnrefreshed(ctx context.Context, vm domain.VM, a agentapi.Agent, timeout time.Duration) error {
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
	return s.store.SetChain(ctx, vm.ID, store.Chain{})
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

// chainAncestors returns id and its ancestors' ids.
func ChainAncestors(all []domain.Backup, id string) []string {
	byID := map[string]domain.Backup{}
	for _, b := range all {
		byID[b.ID] = b
	}
	var out []string
	for b, ok := byID[id]; ok && len(out) <= len(all); b, ok = byID[b.ParentID] {
		out = append(out, b.ID)
	}
	return out
}
