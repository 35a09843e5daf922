package offerings

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	CreateOffering(ctx context.Context, o domain.Offering) error
	ListOfferings(ctx context.Context, f store.OfferingFilter) ([]domain.Offering, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
	RemoveOffering(ctx context.Context, id string, at time.Time) error
}
