package kernel

import (
	"context"
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
	return vm, nil
}

// AccountName returns an account's name for display.
func (s *Kernel) AccountName(ctx context.Context, id string) string {
	a, err := s.store.Account(ctx, id)
	if err != nil {
		return id
	}
	return a.Name
}

// OfferingName returns an offering's name for display ("" for none).
func (s *Kernel) OfferingName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	o, err := s.store.Offering(ctx, id)
	if err != nil {
		return id
	}
	return o.Name
}
