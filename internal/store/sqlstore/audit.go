package sqlstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/store"
)

const auditCols = `id, at, account_id, account, token_id, source, action, object, status, error, operation_id`

// AppendAudit records an audit line.
func (s *DB) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log(`+auditCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
		e.ID, fmtTime(e.Time), e.AccountID, e.Account, e.TokenID, e.Source, e.Action, e.Object, e.Status, e.Error, e.OperationID)
	return err
}

// auditQuery is ListAudit's statement, newest first: through audit_log_at,
// or the account indexes when an account is asked for.
func auditQuery(f store.AuditFilter) (string, []any) {
	var q query
	if f.Account != "" {
		a := q.arg(f.Account)
		q.where("(account_id = " + a + " OR account = " + a + ")")
	}
	if !f.Since.IsZero() {
		q.where("at >= " + q.arg(fmtTime(f.Since)))
	}
	q.eq("action", f.Action)
	if f.After != nil {
		q.after("at", fmtTime(f.After.Time), "id", f.After.ID, true)
	}
	return q.sql(auditCols, "audit_log", "at DESC, id DESC", f.Limit), q.args
}

// ListAudit lists audit lines, newest first.
func (s *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	stmt, args := auditQuery(f)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.AccountID, &e.Account, &e.TokenID, &e.Source, &e.Action, &e.Object, &e.Status, &e.Error, &e.OperationID); err != nil {
			return nil, err
		}
		e.Time = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAudit removes the audit lines older than before.
func (s *DB) PruneAudit(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM audit_log WHERE at < $1`, fmtTime(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
