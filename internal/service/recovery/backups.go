package recovery

import (
	"context"
	"slices"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Reconcile recovers every VM that an interruption left inconsistent: a
// backup still BackingUp, or the VM in BackupError. VMs busy with an
// operation of this process are skipped. It runs at start and periodically.
func (s *Service) Reconcile(ctx context.Context) {
	s.restores.RecoverMoves(ctx)
	s.storages.RecoverStorageMoves(ctx)
	// One query finds the VMs with a backup still BackingUp; the VMs are
	// then read a page at a time, never the whole table at once.
	backingUp := map[string]bool{}
	list, err := s.store.ListBackups(ctx, store.BackupFilter{Status: domain.BackupBackingUp})
	if err != nil {
		s.k.Log().Warn("reconcile: list backups in progress", "err", err)
		return
	}
	for _, b := range list {
		backingUp[b.VMID] = true
	}
	dirs, err := s.k.StorageRoots(ctx)
	if err != nil {
		s.k.Log().Warn("reconcile: list storages", "err", err)
		return
	}
	page := store.Page{Limit: reconcilePage}
	for {
		vms, err := s.store.ListVMs(ctx, store.VMFilter{Page: page})
		if err != nil {
			s.k.Log().Warn("reconcile: list vms", "err", err)
			return
		}
		for _, vm := range vms {
			s.reconcileVM(ctx, vm, backingUp[vm.ID], slices.ContainsFunc(dirs, vm.DependsOn))
		}
		if len(vms) < reconcilePage {
			return
		}
		page.After = store.VMCursor(vms[len(vms)-1])
	}
}

// reconcilePage is how many VMs the reconcile pass reads at a time.
const reconcilePage = 500

// reconcileVM recovers one VM if it needs it; backingUp says that one of
// its backups is still BackingUp, onStorage that it reads backup files.
func (s *Service) reconcileVM(ctx context.Context, vm domain.VM, backingUp, onStorage bool) {
	if vm.Busy != "" {
		return
	}
	if _, err := s.k.RecoveryAgent(vm.HostID); err != nil {
		return
	}
	// A quick restore interrupted before its consolidation ended: resume it.
	if vm.State == domain.VMRunning && onStorage {
		if release, err := s.k.LockVMForRecovery(ctx, vm, "consolidation"); err == nil {
			a, err := s.k.RecoveryAgent(vm.HostID)
			if err != nil {
				release()
				return
			}
			s.k.Log().Info("resuming the consolidation of a quick-restored VM", "vm", vm.Name)
			s.restores.ConsolidateWithRetries(ctx, a, vm.ID, "", agentapi.Verify{}, s.k.KnibTimeout(ctx, vm), func(float64, string) {}, 0, 100)
			release()
		}
		return
	}
	if vm.WorkState == domain.VMRestoring {
		// A restore was interrupted: some disks may be restored, others
		// not. Say so; running the restore again finishes it.
		if err := s.store.SetVMError(ctx, vm.ID, "a restore was interrupted; run `knib backup restore` again"); err != nil {
			s.k.Log().Warn("reconcile: record an interrupted restore; the next pass retries", "vm", vm.Name, "err", err)
			return
		}
		if err := s.store.SetVMWorkState(ctx, vm.ID, domain.VMRestoreError); err != nil {
			s.k.Log().Warn("reconcile: record an interrupted restore; the next pass retries", "vm", vm.Name, "err", err)
		}
		return
	}
	stale := vm.WorkState == domain.VMBackupError || vm.WorkState == domain.VMBackingUp || backingUp
	if !stale {
		return
	}
	release, err := s.k.LockVMForRecovery(ctx, vm, "recovery")
	if err != nil {
		return
	}
	if err := s.k.RecoverVM(ctx, vm.ID); err != nil {
		s.k.Log().Warn("reconcile", "vm", vm.Name, "err", err)
	}
	release()
}
