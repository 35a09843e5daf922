package vms

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Account(ctx context.Context, idOrName string) (domain.Account, error)
	Chain(ctx context.Context, vmID string) (store.Chain, error)
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
	SetChain(ctx context.Context, vmID string, c store.Chain) error
	SetVMOffering(ctx context.Context, vmID, offeringID string) error
	SetVMOwner(ctx context.Context, vmID, accountID string) error
	VM(ctx context.Context, idOrName string) (domain.VM, error)
}
