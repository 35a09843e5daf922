package audit

import (
	"context"
	"time"

	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) the audit log uses; its
// methods keep store.Store's contracts.
type Store interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error)
	PruneAudit(ctx context.Context, before time.Time) (int, error)
}
