package recovery

import (
	"context"
	"fmt"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// RenewLeases extends the leases of this process's operations and VM
// locks. The server calls it every third of the lease.
func (s *Service) RenewLeases(ctx context.Context) error {
	return s.store.RenewOwner(ctx, s.k.Owner(), s.k.LeaseEnd())
}

// RecoverOrphans fails the operations and releases the VM locks of dead
// owners, and puts backups left Restoring by dead work back to BackedUp;
// the per-VM reconciliation (Reconcile) then repairs the disks. It returns
// how many locks it released. Run at start and periodically.
func (s *Service) RecoverOrphans(ctx context.Context) (int, error) {
	now := s.k.Clock().Now()
	// Read before the take-overs: a status set after this read has another
	// updated time, and the compare-and-swap below leaves it alone.
	restoring, err := s.store.ListBackups(ctx, store.BackupFilter{Status: domain.BackupRestoring})
	if err != nil {
		return 0, err
	}
	ops, err := s.store.ListOperations(ctx, store.OperationFilter{})
	if err != nil {
		return 0, err
	}
	for _, op := range ops {
		if !s.k.Orphaned(op.Owner, op.LeaseUntil, now) {
			continue
		}
		const msg = "interrupted: the server stopped while this operation ran"
		ok, err := s.store.FailOperationIf(ctx, op.ID, op.Owner, op.LeaseUntil, msg, now)
		if err != nil {
			return 0, err
		}
		if ok {
			s.k.Log().Warn("operation of a stopped server failed", "id", op.ID, "kind", op.Kind, "owner", op.Owner)
		}
	}
	locks, err := s.store.VMLocks(ctx)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, l := range locks {
		if !s.k.Orphaned(l.Owner, l.Until, now) {
			continue
		}
		ok, err := s.store.TakeVMLock(ctx, l)
		if err != nil {
			return released, err
		}
		if !ok {
			continue // its owner renewed it, or another server took it
		}
		released++
		s.k.Log().Info("releasing the lock of an interrupted operation", "vm", l.VMID, "holder", l.Holder, "owner", l.Owner)
	}
	return released, s.releaseRestoring(ctx, restoring, now)
}

// releaseRestoring puts back to BackedUp the backups read Restoring that
// no live work reads: their VM is not locked and no live operation that
// restores without that VM's lock (a new VM, a volume onto another VM)
// runs on any server.
func (s *Service) releaseRestoring(ctx context.Context, restoring []domain.Backup, now time.Time) error {
	if len(restoring) == 0 {
		return nil
	}
	ops, err := s.store.ListOperations(ctx, store.OperationFilter{})
	if err != nil {
		return err
	}
	for _, op := range ops {
		if (op.Kind == "backup.create-vm" || op.Kind == "backup.restore-volume") && !s.k.Orphaned(op.Owner, op.LeaseUntil, now) {
			return nil // it may read any of them; decide in a later round
		}
	}
	locks, err := s.store.VMLocks(ctx)
	if err != nil {
		return err
	}
	busy := map[string]bool{}
	for _, l := range locks {
		busy[l.VMID] = true
	}
	for _, b := range restoring {
		if busy[b.VMID] {
			continue
		}
		ok, err := s.store.SetBackupStatusIf(ctx, b.ID, domain.BackupRestoring, domain.BackupBackedUp, b.Updated, now)
		if err != nil {
			return fmt.Errorf("release backup %s from Restoring: %w", b.ID, err)
		}
		if ok {
			s.k.Log().Info("backup no longer restoring: its restore was interrupted", "backup", b.ID)
		}
	}
	return nil
}
