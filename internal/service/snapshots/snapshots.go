package snapshots

import (
	"context"
	"fmt"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// applyRepoint follows a set of merges in the snapshots and the chain's
// recorded bases.
func (s *Service) applyRepoint(ctx context.Context, vmID string, repoint map[string]string) error {
	for from, to := range repoint {
		if err := s.k.RepointSnapshots(ctx, vmID, "", from, to); err != nil {
			return err
		}
	}
	c, err := s.store.Chain(ctx, vmID)
	if err != nil || len(c.Deltas) == 0 {
		return err
	}
	changed := false
	for i, d := range c.Deltas {
		if to, ok := repoint[d.Base]; ok {
			c.Deltas[i].Base, changed = to, true
		}
		if _, gone := repoint[d.Delta]; gone {
			// The delta itself was merged: the chain cannot continue.
			return s.store.SetChain(ctx, vmID, store.Chain{})
		}
	}
	if changed {
		return s.store.SetChain(ctx, vmID, c)
	}
	return nil
}

// CreateSnapshot takes a disk-only VM snapshot (external overlays, the same
// primitive as backups).
func (s *Service) CreateSnapshot(ctx context.Context, p domain.Principal, ref, name string) (domain.Snapshot, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return domain.Snapshot{}, err
	}
	now := s.k.Clock().Now()
	if name == "" {
		name = vm.Name + "-" + now.Format("20060102-150405")
	}
	if err := domain.ValidateRef("name", name); err != nil {
		return domain.Snapshot{}, err
	}
	if err := s.k.RequireEnabled(ctx, vm.HostID); err != nil {
		return domain.Snapshot{}, err
	}
	release, err := s.k.LockVM(ctx, vm, "a snapshot")
	if err != nil {
		return domain.Snapshot{}, err
	}
	defer release()
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return domain.Snapshot{}, err
	}
	sn := domain.Snapshot{ID: domain.NewID(), VMID: vm.ID, Name: name, Status: domain.SnapshotReady, Created: now}
	res, err := kernel.Run(ctx, a, agentapi.SnapshotCreate, agentapi.SnapshotCreateRequest{DomainUUID: vm.ID, SnapshotID: sn.ID}, s.k.KnibTimeout(ctx, vm), nil, 0, 100)
	if err != nil {
		return sn, fmt.Errorf("snapshot: %w", err)
	}
	for _, f := range res.Files {
		sn.Files = append(sn.Files, domain.SnapshotFile{Disk: f.Disk, Frozen: f.Frozen})
	}
	if err := s.store.SaveSnapshot(ctx, sn); err != nil {
		return sn, err
	}
	s.k.RefreshHost(ctx, vm.HostID)
	return sn, nil
}

// Snapshots lists a VM's snapshots.
func (s *Service) Snapshots(ctx context.Context, p domain.Principal, ref string) ([]domain.Snapshot, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	return s.store.Snapshots(ctx, vm.ID)
}

func (s *Service) snapshotFor(ctx context.Context, p domain.Principal, id string) (domain.Snapshot, domain.VM, error) {
	if err := domain.ValidateRef("snapshot", id); err != nil {
		return domain.Snapshot{}, domain.VM{}, err
	}
	sn, err := s.store.Snapshot(ctx, id)
	if err != nil {
		return sn, domain.VM{}, err
	}
	vm, err := s.k.VM(ctx, p, sn.VMID)
	if err != nil {
		return sn, vm, fmt.Errorf("snapshot %q: %w", id, domain.ErrNotFound)
	}
	return sn, vm, nil
}

// RevertSnapshot points a stopped VM's disks back at a snapshot; the newer
// overlays of the current branch are discarded (other snapshots stay). If
// the chain head's deltas are discarded, the backup chain ends.
func (s *Service) RevertSnapshot(ctx context.Context, p domain.Principal, id string) (domain.VM, error) {
	sn, vm, err := s.snapshotFor(ctx, p, id)
	if err != nil {
		return vm, err
	}
	if sn.Status != domain.SnapshotReady {
		return vm, fmt.Errorf("snapshot %s was deleted: %w", sn.Name, domain.ErrConflict)
	}
	s.k.RefreshHost(ctx, vm.HostID)
	if vm, err = s.store.VM(ctx, vm.ID); err != nil {
		return vm, err
	}
	if vm.EffectiveState() != domain.VMStopped {
		return vm, fmt.Errorf("vm %s is %s; stop it before reverting: %w", vm.Name, vm.EffectiveState(), domain.ErrConflict)
	}
	release, err := s.k.LockVM(ctx, vm, "a snapshot revert")
	if err != nil {
		return vm, err
	}
	defer release()
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return vm, err
	}
	keep, err := s.k.SnapshotFiles(ctx, vm.ID, sn.ID)
	if err != nil {
		return vm, err
	}
	c, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return vm, err
	}
	for _, d := range c.Deltas {
		keep = append(keep, d.Delta) // decided below whether the chain survives
	}
	var files []agentapi.SnapshotFile
	for _, f := range sn.Files {
		files = append(files, agentapi.SnapshotFile{Disk: f.Disk, Frozen: f.Frozen})
	}
	req := agentapi.SnapshotRevertRequest{DomainUUID: vm.ID, SnapshotID: sn.ID, Suffix: strings.ReplaceAll(domain.NewID()[:8], "-", ""), Files: files, Keep: keep}
	if _, err := kernel.Run(ctx, a, agentapi.SnapshotRevert, req, s.k.KnibTimeout(ctx, vm), nil, 0, 100); err != nil {
		return vm, fmt.Errorf("revert: %w", err)
	}
	// The backup chain continues only if every recorded delta is still in its
	// disk's new chain (the snapshot is newer than the chain head); a revert
	// to an older snapshot ends it (the next backup is full).
	s.k.RefreshHost(ctx, vm.HostID)
	if vm, err = s.store.VM(ctx, vm.ID); err != nil {
		return vm, err
	}
	for _, d := range c.Deltas {
		if !diskUses(vm, d.Disk, d.Delta) {
			if err := s.k.EndChain(ctx, vm, a, s.k.KnibTimeout(ctx, vm)); err != nil {
				return vm, fmt.Errorf("end the backup chain: %w", err)
			}
			break
		}
	}
	return s.store.VM(ctx, vm.ID)
}

// diskUses reports whether a VM disk's chain holds file.
func diskUses(vm domain.VM, disk, file string) bool {
	for _, d := range vm.Disks {
		if d.Target != disk {
			continue
		}
		if d.Source == file {
			return true
		}
		for _, l := range d.BackingChain {
			if l.Path == file {
				return true
			}
		}
	}
	return false
}

// DeleteSnapshot deletes a snapshot: the newest is merged into the current
// disk; one in the middle whose files others still need is only marked
// Removed and merged once it can be.
// It reports whether the snapshot left the catalogue (merged) or stays
// Removed.
func (s *Service) DeleteSnapshot(ctx context.Context, p domain.Principal, id string) (domain.Snapshot, bool, error) {
	sn, vm, err := s.snapshotFor(ctx, p, id)
	if err != nil {
		return sn, false, err
	}
	release, err := s.k.LockVM(ctx, vm, "a snapshot deletion")
	if err != nil {
		return sn, false, err
	}
	defer release()
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return sn, false, err
	}
	sn.Status = domain.SnapshotRemoved
	if err := s.store.SaveSnapshot(ctx, sn); err != nil {
		return sn, false, err
	}
	gone := false
	// Merge every removed snapshot that nothing needs any more, until none is left.
	for progress := true; progress; {
		progress = false
		snaps, err := s.store.Snapshots(ctx, vm.ID)
		if err != nil {
			return sn, gone, err
		}
		for _, cand := range snaps {
			if cand.Status != domain.SnapshotRemoved {
				continue
			}
			merged, err := s.mergeSnapshot(ctx, a, vm, cand)
			if err != nil {
				return sn, gone, err
			}
			if merged {
				progress = true
				gone = gone || cand.ID == sn.ID
				break // the files changed: look again
			}
		}
	}
	s.k.RefreshHost(ctx, vm.HostID)
	return sn, gone, nil
}

func (s *Service) mergeSnapshot(ctx context.Context, a agentapi.Agent, vm domain.VM, sn domain.Snapshot) (bool, error) {
	others, err := s.k.SnapshotFiles(ctx, vm.ID, sn.ID)
	if err != nil {
		return false, err
	}
	c, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return false, err
	}
	var keep []string
	for _, d := range c.Deltas {
		keep = append(keep, d.Delta)
	}
	var files []agentapi.SnapshotFile
	for _, f := range sn.Files {
		files = append(files, agentapi.SnapshotFile{Disk: f.Disk, Frozen: f.Frozen})
	}
	res, err := kernel.Run(ctx, a, agentapi.SnapshotDelete, agentapi.SnapshotDeleteRequest{DomainUUID: vm.ID, Files: files, Others: others, Keep: keep},
		s.k.KnibTimeout(ctx, vm), nil, 0, 100)
	if err != nil {
		return false, fmt.Errorf("merge snapshot %s: %w", sn.Name, err)
	}
	if !res.Merged {
		return false, nil
	}
	if err := s.store.DeleteSnapshot(ctx, sn.ID); err != nil {
		return false, err
	}
	if err := s.applyRepoint(ctx, vm.ID, res.Repoint); err != nil {
		return true, err
	}
	if res.EndChain {
		return true, s.store.SetChain(ctx, vm.ID, store.Chain{})
	}
	return true, nil
}
