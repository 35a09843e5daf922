package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// leaseTime stores a lease end; the zero time is stored as "".
func leaseTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

// AcquireVMFor marks a VM busy for owner unless it is busy already.
func (s *DB) AcquireVMFor(ctx context.Context, vmID, holder, owner string, until time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET busy = $2, busy_owner = $3, busy_until = $4 WHERE id = $1 AND busy = ''`,
		vmID, holder, owner, leaseTime(until))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var cur string
	err = s.db.QueryRowContext(ctx, `SELECT busy FROM vms WHERE id = $1`, vmID).Scan(&cur)
	if noRows(err) {
		return notFound("vm", vmID)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("the VM is busy with %s; try again when it ends: %w", cur, domain.ErrConflict)
}

// The statements of the lease loop, which runs every few seconds: each
// reads only busy VMs (vms_busy) and unfinished operations
// (operations_open), not the tables.
const (
	vmLocks         = `SELECT id, busy, busy_owner, busy_until FROM vms WHERE busy <> '' ORDER BY id`
	renewOperations = `UPDATE operations SET lease_until = $2 WHERE owner = $1 AND ` + openOperations
	renewVMLocks    = `UPDATE vms SET busy_until = $2 WHERE busy_owner = $1 AND busy <> ''`
)

// VMLocks lists the busy VMs with their owners and leases.
func (s *DB) VMLocks(ctx context.Context) ([]store.VMLock, error) {
	rows, err := s.db.QueryContext(ctx, vmLocks)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.VMLock
	for rows.Next() {
		var l store.VMLock
		var until string
		if err := rows.Scan(&l.VMID, &l.Holder, &l.Owner, &until); err != nil {
			return nil, err
		}
		l.Until = parseTime(until)
		out = append(out, l)
	}
	return out, rows.Err()
}

// TakeVMLock clears a lock that is still exactly l.
func (s *DB) TakeVMLock(ctx context.Context, l store.VMLock) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE vms SET busy = '', busy_owner = '', busy_until = ''
		WHERE id = $1 AND busy = $2 AND busy_owner = $3 AND busy_until = $4`, l.VMID, l.Holder, l.Owner, leaseTime(l.Until))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// RenewOwner extends owner's leases.
func (s *DB) RenewOwner(ctx context.Context, owner string, until time.Time) error {
	if owner == "" {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, renewOperations, owner, fmtTime(until)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, renewVMLocks, owner, fmtTime(until))
		return err
	})
}

// FailOperationIf fails an unfinished operation still owned as given.
func (s *DB) FailOperationIf(ctx context.Context, id, owner string, until time.Time, msg string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE operations SET state = 'Failed', message = 'failed', error = $4, updated = $5
		WHERE id = $1 AND state IN ('Pending','Running') AND owner = $2 AND lease_until = $3`,
		id, owner, leaseTime(until), msg, fmtTime(now))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SetBackupStatusIf swaps a backup's status from one value to another.
func (s *DB) SetBackupStatusIf(ctx context.Context, id string, from, to domain.BackupStatus, seen, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE backups SET status = $3, updated = $4 WHERE id = $1 AND status = $2 AND updated = $5`,
		id, string(from), string(to), fmtTime(at), fmtTime(seen))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// UpdateOwnedOperation updates an operation its owner still runs.
func (s *DB) UpdateOwnedOperation(ctx context.Context, op domain.Operation, owner string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE operations SET state=$2, progress=$3, message=$4, result=$5, error=$6, updated=$7
		WHERE id=$1 AND owner=$8 AND state IN ('Pending','Running')`,
		op.ID, string(op.State), op.Progress, op.Message, op.Result, op.Error, fmtTime(op.Updated), owner)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ReapJobOf reaps a running job of a dead lease owner.
func (s *DB) ReapJobOf(ctx context.Context, id, owner string, now time.Time, o jobs.Outcome, lastError string) (bool, error) {
	sched := ""
	if o.State == jobs.Queued {
		sched = fmtTime(o.Scheduled)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = $3, last_error = $4, ended = $2, lease_owner = '', lease_until = '',
 scheduled = CASE WHEN $5 = '' THEN scheduled ELSE $5 END, host_id = CASE WHEN $3 = 'Queued' THEN '' ELSE host_id END
 WHERE id = $1 AND state = 'Running' AND lease_owner = $6 AND $6 <> ''`, id, fmtTime(now), string(o.State), lastError, sched, owner)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
