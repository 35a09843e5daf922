package store

import (
	"context"
	"time"
)

// AuditEntry is one line of the audit log: a state-changing API call (a
// request of any method but GET, HEAD and OPTIONS), refused ones included.
// It never holds a secret: no request body, password, token or cookie.
type AuditEntry struct {
	ID          string
	Time        time.Time
	AccountID   string // "" when the caller was not authenticated
	Account     string // the account's name; on a failed log-in, the name tried
	TokenID     string // the API token the call (or its console session) used; "" for a password session
	Source      string // the caller's IP address
	Action      string // the route: method and path pattern, "POST /backups/{id}/restore"
	Object      string // the path's ids, "id=…" (several joined by a space)
	Status      int    // the HTTP status of the answer
	Error       string // the refusal's message (status 400 and above)
	OperationID string // the operation the call started, if any
}

// AuditFilter selects audit lines, newest first.
type AuditFilter struct {
	Account string    // an account's id or name ("" = all)
	Since   time.Time // lines at or after this time (zero = all)
	Action  string    // lines of this action ("" = all)
	Page
}

// AuditCursor points after an audit line.
func AuditCursor(e AuditEntry) *Cursor { return &Cursor{Time: e.Time, ID: e.ID} }

// AuditStore is the audit log.
type AuditStore interface {
	// AppendAudit records a line.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit lists the lines matching f, newest first (ties by id,
	// descending).
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// PruneAudit removes the lines older than before and returns how many.
	PruneAudit(ctx context.Context, before time.Time) (int, error)
}
