package dashboard

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that the dashboard
// reads; its methods keep store.Store's contracts.
type Store interface {
	VMSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
}
