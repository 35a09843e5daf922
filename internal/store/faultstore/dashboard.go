package faultstore

import (
	"context"

	"github.com/knib/knib/internal/store"
)

// VMSummaries is store.Store.VMSummaries.
func (fs *Store) VMSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error) {
	return fs.inner.VMSummaries(ctx, accountID)
}
