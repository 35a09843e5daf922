package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// liveOnStorage selects the backups of a storage whose files exist.
const liveOnStorage = `storage_id = $1 AND status NOT IN ('Failed', 'Error', 'Expunged')`

const storageCols = `id, name, zone_id, path, tag, enabled, capacity, free, measured, created`

// storageUsed sums a storage's live backups: an index-only scan of
// backups_storage, as long as the storage holds backups. Only the storage
// list and StorageUsed pay it, not every lookup of a backup's storage.
const storageUsed = `(SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM backups
 WHERE backups.storage_id = storages.id AND backups.status NOT IN ('Failed', 'Error', 'Expunged'))`

// StorageUsed returns the bytes of a storage's live backups.
func (s *DB) StorageUsed(ctx context.Context, id string) (int64, error) {
	var used int64
	err := s.db.QueryRowContext(ctx, `SELECT `+storageUsed+` FROM storages WHERE id = $1`, id).Scan(&used)
	if noRows(err) {
		return 0, notFound("storage", id)
	}
	return used, err
}

func scanStorage(r scanner) (domain.Storage, error) {
	var st domain.Storage
	var measured, created string
	err := r.Scan(&st.ID, &st.Name, &st.ZoneID, &st.Path, &st.Tag, &st.Enabled, &st.Capacity, &st.Free, &measured, &created)
	if measured != "" {
		st.Measured = parseTime(measured)
	}
	st.Created = parseTime(created)
	return st, err
}

// CreateStorage inserts a storage.
func (s *DB) CreateStorage(ctx context.Context, st domain.Storage) error {
	measured := ""
	if !st.Measured.IsZero() {
		measured = fmtTime(st.Measured)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO storages(id, name, zone_id, path, tag, enabled, capacity, free, measured, created)
 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)`,
		st.ID, st.Name, st.ZoneID, st.Path, st.Tag, st.Enabled, st.Capacity, st.Free, measured, fmtTime(st.Created))
	if isUnique(err) {
		return fmt.Errorf("a storage named %q or with path %s in its zone exists already: %w", st.Name, st.Path, domain.ErrConflict)
	}
	return err
}

// Storage finds a storage by id or name.
func (s *DB) Storage(ctx context.Context, ref string) (domain.Storage, error) {
	st, err := scanStorage(s.db.QueryRowContext(ctx, `SELECT `+storageCols+` FROM storages WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref))
	if noRows(err) {
		return st, notFound("storage", ref)
	}
	return st, err
}

// ListStorages lists storages by name.
func (s *DB) ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+storageCols+`, `+storageUsed+` FROM storages WHERE ($1 = '' OR zone_id = $1) ORDER BY name`, zoneID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Storage
	for rows.Next() {
		var st domain.Storage
		var measured, created string
		if err := rows.Scan(&st.ID, &st.Name, &st.ZoneID, &st.Path, &st.Tag, &st.Enabled, &st.Capacity, &st.Free, &measured, &created, &st.Used); err != nil {
			return nil, err
		}
		if measured != "" {
			st.Measured = parseTime(measured)
		}
		st.Created = parseTime(created)
		out = append(out, st)
	}
	return out, rows.Err()
}

// SetStorageEnabled enables or disables a storage.
func (s *DB) SetStorageEnabled(ctx context.Context, id string, enabled bool) error {
	return s.updateStorage(ctx, id, `UPDATE storages SET enabled = $2 WHERE id = $1`, enabled)
}

// SetStorageCapacity records a measurement.
func (s *DB) SetStorageCapacity(ctx context.Context, id string, capacity, free int64, at time.Time) error {
	return s.updateStorage(ctx, id, `UPDATE storages SET capacity = $2, free = $3, measured = $4 WHERE id = $1`, capacity, free, fmtTime(at))
}

func (s *DB) updateStorage(ctx context.Context, id, q string, args ...any) error {
	res, err := s.db.ExecContext(ctx, q, append([]any{id}, args...)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("storage", id)
	}
	return nil
}

// RemoveStorage deletes a storage that holds no live backup.
func (s *DB) RemoveStorage(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var name string
		err := tx.QueryRowContext(ctx, `SELECT name FROM storages WHERE id = $1`, id).Scan(&name)
		if noRows(err) {
			return notFound("storage", id)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM backups WHERE `+liveOnStorage, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("storage %s holds %d live backup(s); delete them or move them with `knib storage migrate --from %s --to S2` first: %w", name, n, name, domain.ErrConflict)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM storage_moves WHERE from_storage = $1 OR to_storage = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("storage %s is part of %d unfinished backup move(s): %w", name, n, domain.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE backups SET storage_id = '' WHERE storage_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM storages WHERE id = $1`, id)
		return err
	})
}

// AdoptBackups gives backups without a storage to storageID.
func (s *DB) AdoptBackups(ctx context.Context, storageID string) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE backups SET storage_id = $1 WHERE storage_id = ''`, storageID)
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// StartStorageMoves records moves, all or none.
func (s *DB) StartStorageMoves(ctx context.Context, moves []store.StorageMove) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range moves {
			_, err := tx.ExecContext(ctx, `INSERT INTO storage_moves(backup_id, vm_id, from_storage, to_storage, state, operation_id, created)
 VALUES ($1,$2,$3,$4,$5,$6,$7)`, m.BackupID, m.VMID, m.From, m.To, string(store.MoveCopying), m.OperationID, fmtTime(m.Created))
			if isUnique(err) {
				return fmt.Errorf("backup %s is being moved already: %w", m.BackupID, domain.ErrConflict)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// SwitchStorageMoves points the backups at their target storage.
func (s *DB) SwitchStorageMoves(ctx context.Context, ids []string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			var to string
			err := tx.QueryRowContext(ctx, `SELECT to_storage FROM storage_moves WHERE backup_id = $1`, id).Scan(&to)
			if noRows(err) {
				return notFound("storage move of backup", id)
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE backups SET storage_id = $2 WHERE id = $1`, id, to); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE storage_moves SET state = $2 WHERE backup_id = $1`, id, string(store.MoveSwitched)); err != nil {
				return err
			}
		}
		return nil
	})
}

// StorageMoves lists unfinished moves.
func (s *DB) StorageMoves(ctx context.Context) ([]store.StorageMove, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT backup_id, vm_id, from_storage, to_storage, state, operation_id, created FROM storage_moves ORDER BY created, backup_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.StorageMove
	for rows.Next() {
		var m store.StorageMove
		var state, created string
		if err := rows.Scan(&m.BackupID, &m.VMID, &m.From, &m.To, &state, &m.OperationID, &created); err != nil {
			return nil, err
		}
		m.State, m.Created = store.MoveState(state), parseTime(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// EndStorageMove forgets a move.
func (s *DB) EndStorageMove(ctx context.Context, backupID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM storage_moves WHERE backup_id = $1`, backupID)
	return err
}
