package vms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// ListVMs lists one page of the VMs the principal may see, by name,
// optionally on one host; the cursor is nil on the last page.
func (s *Service) ListVMs(ctx context.Context, p domain.Principal, host string, page store.Page) ([]domain.VM, *store.Cursor, error) {
	list, err := s.listVMs(ctx, p, host, page.OneMore())
	if err != nil {
		return nil, nil, err
	}
	list, next := store.Cut(page, list, store.VMCursor)
	return list, next, nil
}

func (s *Service) listVMs(ctx context.Context, p domain.Principal, host string, page store.Page) ([]domain.VM, error) {
	f := store.VMFilter{Page: page}
	if !p.IsAdmin() {
		f.AccountID = p.AccountID
	}
	if host != "" {
		if err := p.RequireAdmin("filtering by host"); err != nil {
			return nil, err
		}
		if err := domain.ValidateRef("host", host); err != nil {
			return nil, err
		}
		h, err := s.store.Host(ctx, host)
		if err != nil {
			return nil, err
		}
		f.HostID = h.ID
	}
	return s.store.ListVMs(ctx, f)
}

// ShowVM returns one VM (by name or uuid) the principal may see. A ref
// the catalogue does not know is looked up again after the hosts'
// inventories were re-read (kernel.RereadHosts, at most once per host
// every few seconds), so a VM defined outside knib a moment ago is shown
// at once. Only admins cause re-reads: a VM new to knib belongs to the
// admin account, no user could see it, and a user's unknown name costs
// nothing (and takes no longer than another account's name would).
func (s *Service) ShowVM(ctx context.Context, p domain.Principal, ref string) (domain.VM, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if !errors.Is(err, domain.ErrNotFound) || !p.IsAdmin() {
		return vm, err
	}
	s.k.RereadHosts(ctx)
	return s.k.VM(ctx, p, ref)
}

// AssignVM assigns a VM to an offering. Only VMs whose disks are all files
// (qcow2 or raw) qualify; the error names the disk that does not.
func (s *Service) AssignVM(ctx context.Context, p domain.Principal, ref, offeringID string) (domain.VM, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return vm, err
	}
	if offeringID == "" {
		return vm, domain.Invalid("offering_id", "must not be empty")
	}
	if err := domain.ValidateRef("offering_id", offeringID); err != nil {
		return vm, err
	}
	o, err := s.store.Offering(ctx, offeringID)
	if err != nil {
		return vm, err
	}
	if o.Removed != nil {
		return vm, fmt.Errorf("offering %s was removed: %w", o.ID, domain.ErrConflict)
	}
	if vm.State == domain.VMMissing {
		return vm, fmt.Errorf("vm %s is no longer defined on its host: %w", vm.Name, domain.ErrConflict)
	}
	if vm.OfferingID != "" && vm.OfferingID != offeringID {
		return vm, fmt.Errorf("vm %s is assigned to offering %s already; unassign it first: %w", vm.Name, vm.OfferingID, domain.ErrConflict)
	}
	if err := vm.CheckAssignable(); err != nil {
		return vm, err
	}
	// Snapshots made outside knib are seen on the host, not in the
	// catalogue: ask it.
	dom, _, err := s.k.ReadVM(ctx, vm)
	if err != nil {
		return vm, fmt.Errorf("check the VM's snapshots on its host: %w", err)
	}
	if err := kernel.CheckNoForeignSnapshots(vm.Name, dom); err != nil {
		return vm, err
	}
	release, err := s.k.LockVM(ctx, vm, "assigning an offering")
	if err != nil {
		return vm, err
	}
	defer release()
	if err := s.store.SetVMOffering(ctx, vm.ID, offeringID); err != nil {
		return vm, err
	}
	s.k.Log().Info("vm assigned", "vm", vm.Name, "offering", o.Name)
	return s.store.VM(ctx, vm.ID)
}

// UnassignVM removes a VM from its offering.
func (s *Service) UnassignVM(ctx context.Context, p domain.Principal, ref string) (domain.VM, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return vm, err
	}
	if vm.OfferingID == "" {
		return vm, fmt.Errorf("vm %s is not assigned to an offering: %w", vm.Name, domain.ErrConflict)
	}
	release, err := s.k.LockVM(ctx, vm, "unassigning the offering")
	if err != nil {
		return vm, err
	}
	defer release()
	// The chain ends: the VM's deltas on primary storage are merged back.
	if vm.ChainHead != "" {
		a, err := s.k.Agent(vm.HostID)
		if err != nil {
			return vm, err
		}
		if err := s.k.EndChain(ctx, vm, a, s.k.KnibTimeout(ctx, vm)); err != nil {
			return vm, fmt.Errorf("merge the VM's backup deltas: %w", err)
		}
	}
	if err := s.store.SetVMOffering(ctx, vm.ID, ""); err != nil {
		return vm, err
	}
	s.k.Log().Info("vm unassigned", "vm", vm.Name)
	return s.store.VM(ctx, vm.ID)
}

// SetVMOwner gives a VM to an account (admin).
func (s *Service) SetVMOwner(ctx context.Context, p domain.Principal, ref, account string) (domain.VM, error) {
	if err := p.RequireAdmin("changing VM owners"); err != nil {
		return domain.VM{}, err
	}
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return vm, err
	}
	if err := domain.ValidateRef("account", account); err != nil {
		return vm, err
	}
	acc, err := s.store.Account(ctx, account)
	if err != nil {
		return vm, err
	}
	if err := s.store.SetVMOwner(ctx, vm.ID, acc.ID); err != nil {
		return vm, err
	}
	return s.store.VM(ctx, vm.ID)
}

// GuestExec runs a program in a VM's guest through the guest agent (admin).
func (s *Service) GuestExec(ctx context.Context, p domain.Principal, ref, path string, args []string, timeout time.Duration) (agentapi.GuestExecResult, error) {
	if err := p.RequireAdmin("running programs in guests"); err != nil {
		return agentapi.GuestExecResult{}, err
	}
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return agentapi.GuestExecResult{}, err
	}
	if path == "" {
		return agentapi.GuestExecResult{}, domain.Invalid("path", "must not be empty")
	}
	if timeout <= 0 || timeout > time.Hour {
		return agentapi.GuestExecResult{}, domain.Invalid("timeout_sec", "must be between 1 and 3600")
	}
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return agentapi.GuestExecResult{}, err
	}
	res, err := a.GuestExec(ctx, agentapi.GuestExecRequest{DomainUUID: vm.ID, Path: path, Args: args, Timeout: timeout})
	if errors.Is(err, agentapi.ErrUnknownDomain) {
		return res, fmt.Errorf("vm %s is not defined on its host: %w", vm.Name, domain.ErrConflict)
	}
	if err != nil {
		return res, fmt.Errorf("guest agent of %s: %v: %w", vm.Name, err, domain.ErrUnavailable)
	}
	return res, nil
}
