package faultstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/store"
)

// AppendAudit is store.Store.AppendAudit (a write: it may be made to fail).
func (fs *Store) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if err := fs.write("AppendAudit"); err != nil {
		return err
	}
	return fs.inner.AppendAudit(ctx, e)
}

// ListAudit is store.Store.ListAudit.
func (fs *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	return fs.inner.ListAudit(ctx, f)
}

// PruneAudit is store.Store.PruneAudit (a write: it may be made to fail).
func (fs *Store) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	if err := fs.write("PruneAudit"); err != nil {
		return 0, err
	}
	return fs.inner.PruneAudit(ctx, before)
}
