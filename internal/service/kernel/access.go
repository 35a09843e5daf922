package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/knib/knib/internal/domain"
)

// VM returns a VM by name or uuid if the principal may see it; otherwise
// ErrNotFound, so users cannot probe for other accounts' VMs.
func (s *Kernel) VM(ctx context.Context, p domain.Principal, ref string) (domain.VM, error) {
	if err := domain.ValidateRef("vm", ref); err != nil {
		return domain.VM{}, err
	}
	vm, err := s.store.VM(ctx, ref)
	if err != nil {
		return vm, err
	}
	if !p.CanSeeVM(vm) {
		return domain.VM{}, fmt.Errorf("vm %q: %w", ref, domain.ErrNotFound)
	}
	if s.follow.running(vm.ID) != nil {
		// A request about the VM sees it after its operation's follow-up
		// (a backup's merge), never in between.
		s.AwaitFollowUp(ctx, vm.ID)
		return s.store.VM(ctx, vm.ID)
	}
	return vm, nil
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

// EnsureAdmin creates the admin account when missing and returns it.
func (s *Kernel) EnsureAdmin(ctx context.Context) (domain.Account, error) {
	a, err := s.store.Account(ctx, AdminAccount)
	if err == nil || !errors.Is(err, domain.ErrNotFound) {
		return a, err
	}
	a = domain.Account{ID: domain.NewID(), Name: AdminAccount, Created: s.clock.Now()}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return a, err
	}
	return a, nil
}
