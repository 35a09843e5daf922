package files

import (
	"context"

	"github.com/knib/knib/internal/domain"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	Offering(ctx context.Context, id string) (domain.Offering, error)
}
