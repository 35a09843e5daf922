package sqlstore

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// RecordVMMove stores a move (see store.VMMoveStore).
func (s *DB) RecordVMMove(ctx context.Context, m store.VMMove) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO vm_moves(vm_id, from_host, to_host, backup_id, quick, created) VALUES ($1,$2,$3,$4,$5,$6)`,
		m.VMID, m.FromHost, m.ToHost, m.BackupID, m.Quick, fmtTime(m.Created))
	if isUnique(err) {
		return fmt.Errorf("vm %s is moving to another host already: %w", m.VMID, domain.ErrConflict)
	}
	return err
}

// VMMoves returns the moves not finished, oldest first.
func (s *DB) VMMoves(ctx context.Context) ([]store.VMMove, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT vm_id, from_host, to_host, backup_id, quick, created FROM vm_moves ORDER BY created, vm_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.VMMove
	for rows.Next() {
		var m store.VMMove
		var created string
		if err := rows.Scan(&m.VMID, &m.FromHost, &m.ToHost, &m.BackupID, &m.Quick, &created); err != nil {
			return nil, err
		}
		m.Created = parseTime(created)
		out = append(out, m)
	}
	return out, rows.Err()
}

// FinishVMMove removes a VM's move; absent is fine.
func (s *DB) FinishVMMove(ctx context.Context, vmID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM vm_moves WHERE vm_id = $1`, vmID)
	return err
}

// SetVMHost records the host a VM lives on.
func (s *DB) SetVMHost(ctx context.Context, vmID, hostID string) error {
	return s.updateVM(ctx, vmID, "host_id", hostID)
}
