package sqlstore

import (
	"context"
	"encoding/json"

	"github.com/knib/knib/internal/domain"
)

const snapCols = `id, vm_id, name, status, files, created`

func scanSnapshot(r scanner) (domain.Snapshot, error) {
	var sn domain.Snapshot
	var status, files, created string
	if err := r.Scan(&sn.ID, &sn.VMID, &sn.Name, &status, &files, &created); err != nil {
		return sn, err
	}
	sn.Status, sn.Created = domain.SnapshotStatus(status), parseTime(created)
	return sn, json.Unmarshal([]byte(files), &sn.Files)
}

// SaveSnapshot inserts or updates a snapshot.
func (s *DB) SaveSnapshot(ctx context.Context, sn domain.Snapshot) error {
	files, err := json.Marshal(sn.Files)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO snapshots(`+snapCols+`) VALUES ($1,$2,$3,$4,$5,$6)
ON CONFLICT (id) DO UPDATE SET name=excluded.name, status=excluded.status, files=excluded.files`,
		sn.ID, sn.VMID, sn.Name, string(sn.Status), string(files), fmtTime(sn.Created))
	return err
}

// Snapshot finds a snapshot by id.
func (s *DB) Snapshot(ctx context.Context, id string) (domain.Snapshot, error) {
	sn, err := scanSnapshot(s.db.QueryRowContext(ctx, `SELECT `+snapCols+` FROM snapshots WHERE id = $1`, id))
	if noRows(err) {
		return sn, notFound("snapshot", id)
	}
	return sn, err
}

// Snapshots lists a VM's snapshots oldest first.
func (s *DB) Snapshots(ctx context.Context, vmID string) ([]domain.Snapshot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+snapCols+` FROM snapshots WHERE vm_id = $1 ORDER BY created, id`, vmID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// DeleteSnapshot removes a snapshot from the catalogue.
func (s *DB) DeleteSnapshot(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM snapshots WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("snapshot", id)
	}
	return nil
}
