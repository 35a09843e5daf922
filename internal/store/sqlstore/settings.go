package sqlstore

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// SetSetting stores a value at a scope, replacing any previous one.
func (s *DB) SetSetting(ctx context.Context, st store.Setting) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO settings(scope, scope_id, key, value) VALUES ($1,$2,$3,$4)
ON CONFLICT (scope, scope_id, key) DO UPDATE SET value = excluded.value`, st.Scope, st.ScopeID, st.Key, st.Value)
	return err
}

// DeleteSetting removes a stored value; ErrNotFound when there is none.
func (s *DB) DeleteSetting(ctx context.Context, scope, scopeID, key string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM settings WHERE scope = $1 AND scope_id = $2 AND key = $3`, scope, scopeID, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("setting %s at %s scope: %w", key, scope, domain.ErrNotFound)
	}
	return nil
}

// ListSettings returns every stored value.
func (s *DB) ListSettings(ctx context.Context) ([]store.Setting, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT scope, scope_id, key, value FROM settings ORDER BY key, scope, scope_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Setting
	for rows.Next() {
		var st store.Setting
		if err := rows.Scan(&st.Scope, &st.ScopeID, &st.Key, &st.Value); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// SetVMDetail stores one VM detail.
func (s *DB) SetVMDetail(ctx context.Context, vmID, key, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vm_details(vm_id, key, value) VALUES ($1,$2,$3)
ON CONFLICT (vm_id, key) DO UPDATE SET value = excluded.value`, vmID, key, value)
	return err
}

// DeleteVMDetail removes one VM detail; ErrNotFound when absent.
func (s *DB) DeleteVMDetail(ctx context.Context, vmID, key string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM vm_details WHERE vm_id = $1 AND key = $2`, vmID, key)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("vm detail %s: %w", key, domain.ErrNotFound)
	}
	return nil
}

// VMDetails returns all details of a VM.
func (s *DB) VMDetails(ctx context.Context, vmID string) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM vm_details WHERE vm_id = $1`, vmID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}
