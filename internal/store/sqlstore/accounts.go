package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// CreateAccount inserts an account; ErrConflict when the name is taken.
func (s *DB) CreateAccount(ctx context.Context, a domain.Account) error {
	l := a.Limits
	if l == (domain.Limits{}) {
		l = domain.NoLimits
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO accounts(id, name, created, max_vms, max_vcpus, max_memory_bytes) VALUES ($1, $2, $3, $4, $5, $6)`,
		a.ID, a.Name, fmtTime(a.Created), l.VMs, l.VCPUs, l.MemoryBytes)
	if isUnique(err) {
		return fmt.Errorf("account name %q is taken: %w", a.Name, domain.ErrConflict)
	}
	return err
}

// Account finds an account by id or name.
func (s *DB) Account(ctx context.Context, ref string) (domain.Account, error) {
	var a domain.Account
	var created string
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created, max_vms, max_vcpus, max_memory_bytes FROM accounts WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref).
		Scan(&a.ID, &a.Name, &created, &a.Limits.VMs, &a.Limits.VCPUs, &a.Limits.MemoryBytes)
	if noRows(err) {
		return a, notFound("account", ref)
	}
	a.Created = parseTime(created)
	return a, err
}

// ListAccounts returns all accounts by name.
func (s *DB) ListAccounts(ctx context.Context) ([]domain.Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created, max_vms, max_vcpus, max_memory_bytes FROM accounts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Account
	for rows.Next() {
		var a domain.Account
		var created string
		if err := rows.Scan(&a.ID, &a.Name, &created, &a.Limits.VMs, &a.Limits.VCPUs, &a.Limits.MemoryBytes); err != nil {
			return nil, err
		}
		a.Created = parseTime(created)
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetAccountLimits replaces an account's resource limits.
func (s *DB) SetAccountLimits(ctx context.Context, id string, l domain.Limits) error {
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET max_vms = $2, max_vcpus = $3, max_memory_bytes = $4 WHERE id = $1`,
		id, l.VMs, l.VCPUs, l.MemoryBytes)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("account", id)
	}
	return nil
}

// CreateToken stores a token hash.
func (s *DB) CreateToken(ctx context.Context, t store.Token) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO tokens(id, account_id, role, name, hash, created) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, t.AccountID, string(t.Role), t.Name, t.Hash, fmtTime(t.Created))
	return err
}

const tokenCols = `id, account_id, role, name, hash, created`

func scanToken(r scanner) (store.Token, error) {
	var t store.Token
	var role, created string
	err := r.Scan(&t.ID, &t.AccountID, &role, &t.Name, &t.Hash, &created)
	t.Role, t.Created = domain.Role(role), parseTime(created)
	return t, err
}

// ListTokens lists tokens, oldest first (see store.Store).
func (s *DB) ListTokens(ctx context.Context, accountID string) ([]store.Token, error) {
	var q query
	q.eq("account_id", accountID)
	rows, err := s.db.QueryContext(ctx, q.sql(tokenCols, "tokens", "created, id", 0), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken removes a token and its sessions (see store.Store).
func (s *DB) DeleteToken(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("token", id)
		}
		return nil
	})
}

// TokenByHash finds a token by the hash of its secret.
func (s *DB) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = $1`, hash))
	if noRows(err) {
		return t, fmt.Errorf("token: %w", domain.ErrNotFound)
	}
	return t, err
}
