package vms

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// MaxDiskSize bounds new disks (16 TiB).
const MaxDiskSize = 16 << 40

// AttachDisk creates an empty disk and attaches it to a VM. A new disk has no
// delta: the next backup copies it full.
func (s *Service) AttachDisk(ctx context.Context, p domain.Principal, ref string, size int64, target string) (domain.VM, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return vm, err
	}
	if size <= 0 || size > MaxDiskSize {
		return vm, domain.Invalid("size", "must be between 1 byte and 16 TiB, got %d", size)
	}
	if target != "" {
		if err := domain.ValidateDiskTarget("target", target); err != nil {
			return vm, err
		}
	}
	release, err := s.k.LockVM(ctx, vm, "attaching a disk")
	if err != nil {
		return vm, err
	}
	defer release()
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return vm, err
	}
	if _, err := kernel.Run(ctx, a, agentapi.AttachDisk, agentapi.AttachDiskRequest{DomainUUID: vm.ID, Size: size, Target: target}, s.k.KnibTimeout(ctx, vm), nil, 0, 100); err != nil {
		return vm, fmt.Errorf("attach disk: %w", err)
	}
	s.k.RefreshHost(ctx, vm.HostID)
	return s.store.VM(ctx, vm.ID)
}

// DetachDisk detaches a disk from a VM. Its backup delta is merged first, so
// the detached file holds all its data; the chain keeps the other disks'
// deltas (and ends when none is left).
func (s *Service) DetachDisk(ctx context.Context, p domain.Principal, ref, target string) (domain.VM, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return vm, err
	}
	found := false
	for _, d := range vm.Disks {
		found = found || d.Target == target
	}
	if !found {
		return vm, domain.Invalid("target", "vm %s has no disk %q", vm.Name, target)
	}
	release, err := s.k.LockVM(ctx, vm, "detaching a disk")
	if err != nil {
		return vm, err
	}
	defer release()
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return vm, err
	}
	timeout := s.k.KnibTimeout(ctx, vm)
	c, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return vm, err
	}
	var keep []string
	var rest []domain.Delta
	for _, d := range c.Deltas {
		if d.Disk != target {
			keep = append(keep, d.Delta)
			rest = append(rest, d)
		}
	}
	if _, err := kernel.Run(ctx, a, agentapi.Reconcile, agentapi.ReconcileRequest{DomainUUID: vm.ID, Keep: keep}, timeout, nil, 0, 50); err != nil {
		return vm, fmt.Errorf("merge the delta of %s: %w", target, err)
	}
	next := store.Chain{Head: c.Head, Deltas: rest}
	if len(rest) == 0 {
		next = store.Chain{}
	}
	if err := s.store.SetChain(ctx, vm.ID, next); err != nil {
		return vm, err
	}
	if _, err := kernel.Run(ctx, a, agentapi.DetachDisk, agentapi.DetachDiskRequest{DomainUUID: vm.ID, Target: target}, timeout, nil, 50, 100); err != nil {
		return vm, fmt.Errorf("detach disk: %w", err)
	}
	s.k.RefreshHost(ctx, vm.HostID)
	return s.store.VM(ctx, vm.ID)
}
