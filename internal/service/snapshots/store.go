package snapshots

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Chain(ctx context.Context, vmID string) (store.Chain, error)
	DeleteSnapshot(ctx context.Context, id string) error
	SaveSnapshot(ctx context.Context, sn domain.Snapshot) error // insert or update
	SetChain(ctx context.Context, vmID string, c store.Chain) error
	Snapshot(ctx context.Context, id string) (domain.Snapshot, error)
	Snapshots(ctx context.Context, vmID string) ([]domain.Snapshot, error)
	VM(ctx context.Context, idOrName string) (domain.VM, error)
}
