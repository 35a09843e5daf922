package restores

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/revert"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// Restoring onto another host ("moving" a VM): the VM is defined on the
// target host from the backup's domain.xml (same uuid and name) with its
// disks in that host's disk directory, overlays on the backup files for a
// quick restore (which starts it and then consolidates) or full copies
// otherwise. The catalogue's host of the VM becomes the target; the old
// definition on the source host is undefined only after the VM is defined
// (quick: running) on the target. The old disk files on the source host
// are left where they are (knib's own deltas were merged into them when the
// chain ended): the operator removes them, knib never deletes disks of a
// definition it did not create.
//
// Intent first: a store.VMMove is recorded before any host is touched and
// removed at the end. Recovery (recoverMoves) rolls a move forward when the
// target host has the VM defined, and back (the VM stays on its source
// host, RestoreError) when it has not.

// targetHost resolves the --host of a restore: an enabled host of the VM's
// zone with a connected agent.
func (s *Service) targetHost(ctx context.Context, ref, zoneID string) (domain.Host, error) {
	if err := domain.ValidateRef("host", ref); err != nil {
		return domain.Host{}, err
	}
	h, err := s.store.Host(ctx, ref)
	if err != nil {
		return h, err
	}
	if !h.Enabled {
		return h, fmt.Errorf("host %s is disabled: %w", h.Name, domain.ErrConflict)
	}
	if zoneID != "" && h.ZoneID != zoneID {
		return h, fmt.Errorf("host %s is in another zone than the backup's: %w", h.Name, domain.ErrConflict)
	}
	if _, err := s.k.Agent(h.ID); err != nil {
		return h, fmt.Errorf("host %s: %w", h.Name, err)
	}
	return h, nil
}

// zoneOf returns a host's zone id, or "".
func (s *Service) zoneOf(ctx context.Context, hostID string) string {
	h, err := s.store.Host(ctx, hostID)
	if err != nil {
		return ""
	}
	return h.ZoneID
}

// runMove restores backup b of vm onto host to (see the top of this file).
func (s *Service) runMove(ctx context.Context, vm domain.VM, b domain.Backup, to domain.Host, quick, accept bool, progress kernel.Progress) (domain.OpResult, error) {
	target, err := s.k.Agent(to.ID)
	if err != nil {
		return nil, err
	}
	m := store.VMMove{VMID: vm.ID, FromHost: vm.HostID, ToHost: to.ID, BackupID: b.ID, Quick: quick, Created: s.k.Clock().Now()}
	if err := s.store.RecordVMMove(ctx, m); err != nil {
		return nil, err
	}
	r := revert.New(s.k.Log())
	defer r.Fail()
	r.Add("forget the move record", func() error { return s.store.FinishVMMove(context.WithoutCancel(ctx), vm.ID) })
	timeout := s.k.KnibTimeout(ctx, vm)
	root, release, err := s.holdBackup(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.recordIntent(ctx, vm, r); err != nil {
		return nil, err
	}
	// From here a failure may have changed disks: the VM is marked
	// RestoreError and the move record stays for recovery.
	fail := func(err error) error {
		r.Success()
		return s.restoreFailed(ctx, vm.ID, "restore of backup "+b.ID+" onto host "+to.Name+" failed: ", err)
	}
	// The chain ends. The disks on the old host get knib's deltas merged
	// when its agent answers; otherwise only the record ends.
	source, srcErr := s.k.Agent(vm.HostID)
	if srcErr == nil && vm.State != domain.VMMissing {
		progress(2, "ending the backup chain on the old host")
		if err := s.k.EndChain(ctx, vm, source, timeout); err != nil {
			return nil, fail(err)
		}
	} else if err := s.store.SetChain(ctx, vm.ID, store.Chain{}); err != nil {
		return nil, fail(err)
	}
	verify, err := s.k.Verify(ctx, b, accept)
	if err != nil {
		return nil, fail(err)
	}
	req := agentapi.RestoreHereRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: vm.ID, Dir: b.Dir, Files: kernel.RestoreFiles(b), Quick: quick,
		Verify: verify}
	res, err := kernel.Run(ctx, target, agentapi.RestoreHere, req, timeout, progress, 5, 60)
	if err != nil {
		err = s.damaged(ctx, err, "a restore onto another host")
		if kernel.IsClean(err) {
			return nil, err // nothing changed on the target: the reverter takes the intent back
		}
		// Recovery decides: forward if the target has the VM, else back.
		return nil, fail(err)
	}
	r.Success()
	accepted, err := s.accepted(ctx, res.Damaged)
	if err != nil {
		return nil, fail(err)
	}
	crashpoint.Hit("move.after-target")
	if err := s.finishMove(ctx, m, vm.Name); err != nil {
		return nil, fail(err)
	}
	out := domain.BackupRestoreResult{VM: res.Name, Backup: b.ID, Disks: restoredDisks(res.Disks), Defined: res.Defined, Quick: quick,
		Host: to.Name, Started: boolPtr(res.Started), Damaged: accepted}
	if quick {
		out.Consolidated = boolPtr(s.ConsolidateWithRetries(ctx, target, vm.ID, root, verify, timeout, progress, 60, 100))
	}
	s.k.Log().Info("restore onto another host done", "vm", res.Name, "backup", b.ID, "host", to.Name, "quick", quick)
	return out, nil
}

// finishMove completes a move whose VM is defined (quick: running) on its
// target host: the catalogue's host becomes the target, the definition on
// the source host goes (when its agent answers; otherwise the move stays
// recorded and recovery finishes it later), and the record is removed.
func (s *Service) finishMove(ctx context.Context, m store.VMMove, name string) error {
	if err := s.store.SetVMHost(ctx, m.VMID, m.ToHost); err != nil {
		return err
	}
	s.k.RefreshHost(ctx, m.ToHost)
	if m.FromHost != m.ToHost {
		source, err := s.k.Agent(m.FromHost)
		if err != nil {
			if err := s.store.SetVMWorkState(ctx, m.VMID, ""); err != nil {
				return err
			}
			if err := s.store.SetVMError(ctx, m.VMID, "runs on host "+s.k.HostName(ctx, m.ToHost)+"; its old definition on host "+
				s.k.HostName(ctx, m.FromHost)+" is removed when that host's agent is back"); err != nil {
				return err
			}
			s.k.Log().Warn("old host unreachable; its definition of the moved VM stays until it is back", "vm", name, "host", m.FromHost)
			return nil
		}
		u, err := kernel.Run(ctx, source, agentapi.Undefine, agentapi.UndefineRequest{DomainUUID: m.VMID}, s.k.KnibTimeoutHost(ctx, m.FromHost), nil, 0, 100)
		if err != nil {
			return fmt.Errorf("undefine the VM on its old host %s: %w", s.k.HostName(ctx, m.FromHost), err)
		}
		if u.Undefined {
			s.k.Log().Info("old definition removed; its disk files stay", "vm", name, "host", s.k.HostName(ctx, m.FromHost), "files", u.Files)
		}
		s.k.RefreshHost(ctx, m.FromHost)
	}
	if err := s.store.FinishVMMove(ctx, m.VMID); err != nil {
		return err
	}
	if err := s.store.SetVMWorkState(ctx, m.VMID, ""); err != nil {
		return err
	}
	return s.store.SetVMError(ctx, m.VMID, "")
}

// recoverMoves finishes or rolls back the moves an interruption left (see
// the top of this file). VMs busy with an operation are left alone.
func (s *Service) RecoverMoves(ctx context.Context) {
	moves, err := s.store.VMMoves(ctx)
	if err != nil {
		s.k.Log().Warn("recover moves", "err", err)
		return
	}
	for _, m := range moves {
		vm, err := s.store.VM(ctx, m.VMID)
		if errors.Is(err, domain.ErrNotFound) {
			if err := s.store.FinishVMMove(ctx, m.VMID); err != nil {
				s.k.Log().Warn("recover moves: forget the move of a deleted VM", "vm", m.VMID, "err", err)
			}
			continue
		}
		if err != nil || vm.Busy != "" {
			continue
		}
		target, err := s.k.Agent(m.ToHost)
		if err != nil {
			continue // decide when the target host is back
		}
		doms, err := target.Inventory(ctx)
		if err != nil {
			continue
		}
		release, err := s.k.LockVMForRecovery(ctx, vm, "recovery of a restore onto another host")
		if err != nil {
			continue
		}
		i := slices.IndexFunc(doms, func(d agentapi.Domain) bool { return d.UUID == m.VMID })
		if i < 0 {
			// Not defined on the target: the VM stays where it was.
			s.k.Log().Warn("restore onto another host was interrupted before the VM was defined there; it stays on its host", "vm", vm.Name)
			err := s.restoreFailed(ctx, m.VMID, "", errors.New("a restore onto host "+s.k.HostName(ctx, m.ToHost)+" was interrupted before the VM was defined there; run `knib backup restore` again"))
			if werr := s.store.FinishVMMove(ctx, m.VMID); werr != nil || !errors.Is(err, errRecorded) {
				s.k.Log().Warn("recover moves: the move stays recorded", "vm", vm.Name, "err", errors.Join(err, werr))
			}
			release()
			continue
		}
		s.k.Log().Info("finishing an interrupted restore onto another host", "vm", vm.Name, "host", s.k.HostName(ctx, m.ToHost))
		// The target defines the VM only once every disk is written; a
		// quick restore is complete once it runs there.
		started := doms[i].State == "running" || doms[i].State == "paused"
		if b, err := s.store.Backup(ctx, m.BackupID); err == nil && m.Quick && !started {
			// The same command again: idempotent, it writes the overlays
			// again and starts the VM.
			root, err := s.k.StorageRoot(ctx, b)
			if err != nil {
				s.k.Log().Warn("recover a restore onto another host", "vm", vm.Name, "err", err)
				release()
				continue
			}
			req := agentapi.RestoreHereRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: m.VMID, Dir: b.Dir, Files: kernel.RestoreFiles(b), Quick: m.Quick}
			if _, err := kernel.Run(ctx, target, agentapi.RestoreHere, req, s.k.KnibTimeoutHost(ctx, m.ToHost), nil, 0, 100); err != nil {
				s.k.Log().Warn("recover a restore onto another host", "vm", vm.Name, "err", err)
				release()
				continue
			}
		}
		if err := s.finishMove(ctx, m, vm.Name); err != nil {
			s.k.Log().Warn("recover a restore onto another host", "vm", vm.Name, "err", err)
		}
		release()
	}
}

// errRecorded marks a failure whose RestoreError state was recorded.
var errRecorded = errors.New("recorded")

// restoreFailed records that a restore of a VM failed after it may have
// changed disks: the VM becomes RestoreError with the reason. It returns
// cause (wrapping errRecorded), joined with any error recording it.
func (s *Service) restoreFailed(ctx context.Context, vmID, prefix string, cause error) error {
	ctx = context.WithoutCancel(ctx)
	if err := s.store.SetVMWorkState(ctx, vmID, domain.VMRestoreError); err != nil {
		return errors.Join(cause, fmt.Errorf("record RestoreError of vm %s: %w", vmID, err))
	}
	if err := s.store.SetVMError(ctx, vmID, prefix+cause.Error()); err != nil {
		return errors.Join(cause, fmt.Errorf("record the error of vm %s: %w", vmID, err))
	}
	return recorded{cause}
}

// recorded is a cause whose RestoreError was recorded.
type recorded struct{ error }

func (r recorded) Unwrap() []error { return []error{r.error, errRecorded} }

// holdBackup resolves the root of a backup's storage and marks the backup
// Restoring while a restore reads it (its compression is not swapped in
// meanwhile); release ends that.
func (s *Service) holdBackup(ctx context.Context, b domain.Backup) (root string, release func(), err error) {
	if root, err = s.k.StorageRoot(ctx, b); err != nil {
		return "", nil, err
	}
	if err := s.k.SetBackupStatus(ctx, b.ID, domain.BackupRestoring); err != nil {
		return "", nil, err
	}
	return root, func() { s.releaseBackup(ctx, b.ID) }, nil
}

// recordIntent marks the VM Restoring before its disks are touched: a
// restore interrupted from here on is found by recovery, which makes it
// RestoreError with the reason. r takes the mark back when the restore
// fails without having changed anything.
func (s *Service) recordIntent(ctx context.Context, vm domain.VM, r *revert.Reverter) error {
	if err := s.store.SetVMWorkState(ctx, vm.ID, domain.VMRestoring); err != nil {
		return fmt.Errorf("record the restore intent of vm %s: %w", vm.Name, err)
	}
	r.Add("clear the Restoring state", func() error { return s.store.SetVMWorkState(context.WithoutCancel(ctx), vm.ID, "") })
	return nil
}

// releaseBackup ends a backup's Restoring status. A failure is logged:
// recovery releases backups left Restoring by dead work.
func (s *Service) releaseBackup(ctx context.Context, id string) {
	if err := s.k.SetBackupStatus(context.WithoutCancel(ctx), id, domain.BackupBackedUp); err != nil {
		s.k.Log().Warn("release a restored backup; recovery retries", "backup", id, "err", err)
	}
}
