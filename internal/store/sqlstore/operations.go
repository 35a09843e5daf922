package sqlstore

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

const opCols = `id, kind, vm_id, account_id, state, progress, message, result, error, created, updated, owner, lease_until`

func scanOp(r scanner) (domain.Operation, error) {
	var op domain.Operation
	var state, created, updated, until string
	err := r.Scan(&op.ID, &op.Kind, &op.VMID, &op.AccountID, &state, &op.Progress, &op.Message, &op.Result, &op.Error, &created, &updated, &op.Owner, &until)
	op.State, op.Created, op.Updated = domain.OperationState(state), parseTime(created), parseTime(updated)
	op.LeaseUntil = parseTime(until)
	return op, err
}

// CreateOperation records a new operation.
func (s *DB) CreateOperation(ctx context.Context, op domain.Operation) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO operations(`+opCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
		op.ID, op.Kind, op.VMID, op.AccountID, string(op.State), op.Progress, op.Message, op.Result, op.Error, fmtTime(op.Created), fmtTime(op.Updated),
		op.Owner, leaseTime(op.LeaseUntil))
	return err
}

// UpdateOperation stores state, progress, message, result, error and updated.
func (s *DB) UpdateOperation(ctx context.Context, op domain.Operation) error {
	res, err := s.db.ExecContext(ctx, `UPDATE operations SET state=$2, progress=$3, message=$4, result=$5, error=$6, updated=$7 WHERE id=$1`,
		op.ID, string(op.State), op.Progress, op.Message, op.Result, op.Error, fmtTime(op.Updated))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("operation", op.ID)
	}
	return nil
}

// Operation finds an operation by id.
func (s *DB) Operation(ctx context.Context, id string) (domain.Operation, error) {
	op, err := scanOp(s.db.QueryRowContext(ctx, `SELECT `+opCols+` FROM operations WHERE id = $1`, id))
	if noRows(err) {
		return op, notFound("operation", id)
	}
	return op, err
}

// operationsQuery is ListOperations' statement, newest first: unfinished
// ones through operations_open, all through operations_created.
func operationsQuery(f store.OperationFilter) (string, []any) {
	var q query
	if !f.All {
		q.where(openOperations)
	}
	if f.After != nil {
		q.after("created", fmtTime(f.After.Time), "id", f.After.ID, true)
	}
	return q.sql(opCols, "operations", "created DESC, id DESC", f.Limit), q.args
}

// openOperations is the condition of the operations_open partial index.
const openOperations = "state IN ('Pending', 'Running')"

// ListOperations returns unfinished (or all) operations, newest first.
func (s *DB) ListOperations(ctx context.Context, f store.OperationFilter) ([]domain.Operation, error) {
	stmt, args := operationsQuery(f)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Operation
	for rows.Next() {
		op, err := scanOp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, op)
	}
	return out, rows.Err()
}
