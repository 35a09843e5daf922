package recovery

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Reconcile recovers every VM that an interruption left inconsistent: a
// backup still BackingUp, or the VM in BackupError. VMs busy with an
// operation of this process are skipped. It runs at start and periodically.
func (s *Service) Reconcile(ctx context.Context) {
	s.restores.RecoverMoves(ctx)
	s.storages.RecoverStorageMoves(ctx)
	vms, err := s.store.ListVMs(ctx, store.VMFilter{})
	if err != nil {
		s.k.Log().Warn("reconcile: list vms", "err", err)
		return
	}
	for _, vm := range vms {
		if vm.Busy != "" {
			continue
		}
		if _, err := s.k.RecoveryAgent(vm.HostID); err != nil {
			continue
		}
		// A quick restore interrupted before its consolidation ended: resume it.
		if vm.State == domain.VMRunning && s.k.DependsOnStorage(ctx, vm) {
			if release, err := s.k.LockVM(ctx, vm, "consolidation"); err == nil {
				a, err := s.k.RecoveryAgent(vm.HostID)
				if err != nil {
					release()
					continue
				}
				s.k.Log().Info("resuming the consolidation of a quick-restored VM", "vm", vm.Name)
				s.restores.ConsolidateWithRetries(ctx, a, vm.ID, "", s.k.KnibTimeout(ctx, vm), func(float64, string) {}, 0, 100)
				release()
			}
			continue
		}
		if vm.WorkState == domain.VMRestoring {
			// A restore was interrupted: some disks may be restored, others
			// not. Say so; running the restore again finishes it.
			if err := s.store.SetVMError(ctx, vm.ID, "a restore was interrupted; run `knib backup restore` again"); err != nil {
				s.k.Log().Warn("reconcile: record an interrupted restore; the next pass retries", "vm", vm.Name, "err", err)
				continue
			}
			if err := s.store.SetVMWorkState(ctx, vm.ID, domain.VMRestoreError); err != nil {
				s.k.Log().Warn("reconcile: record an interrupted restore; the next pass retries", "vm", vm.Name, "err", err)
			}
			continue
		}
		stale := vm.WorkState == domain.VMBackupError || vm.WorkState == domain.VMBackingUp
		if !stale {
			list, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vm.ID, Status: domain.BackupBackingUp})
			stale = err == nil && len(list) > 0
		}
		if !stale {
			continue
		}
		release, err := s.k.LockVM(ctx, vm, "recovery")
		if err != nil {
			continue
		}
		if err := s.k.RecoverVM(ctx, vm.ID); err != nil {
			s.k.Log().Warn("reconcile", "vm", vm.Name, "err", err)
		}
		release()
	}
}
