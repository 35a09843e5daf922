package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

const backupCols = `id, vm_id, vm_name, account_id, offering_id, host_id, type, isolated, parent_id, position, end_of_chain, status, size, virtual_size, dir, plan, error, created, updated, compression_status, uncompressed_size, validation_status, validation_reason, has_screenshot, schedule_id, storage_id, validation_steps`

func scanBackup(r scanner) (domain.Backup, error) {
	var b domain.Backup
	var typ, status, created, updated, comp, valid, steps string
	err := r.Scan(&b.ID, &b.VMID, &b.VMName, &b.AccountID, &b.OfferingID, &b.HostID, &typ, &b.Isolated, &b.ParentID, &b.Position,
		&b.EndOfChain, &status, &b.Size, &b.VirtualSize, &b.Dir, &b.Plan, &b.Error, &created, &updated,
		&comp, &b.UncompressedSize, &valid, &b.ValidationReason, &b.HasScreenshot, &b.ScheduleID, &b.StorageID, &steps)
	b.Type, b.Status = domain.BackupType(typ), domain.BackupStatus(status)
	b.CompressionStatus, b.ValidationStatus = domain.CompressionStatus(comp), domain.ValidationStatus(valid)
	b.Created, b.Updated = parseTime(created), parseTime(updated)
	if err == nil && steps != "" && steps != "[]" {
		if jerr := json.Unmarshal([]byte(steps), &b.ValidationSteps); jerr != nil {
			return b, fmt.Errorf("backup %s: validation steps: %w", b.ID, jerr)
		}
	}
	return b, err
}

// stepsJSON is the stored form of a backup's validation steps.
func stepsJSON(steps []domain.ValidationStepRun) (string, error) {
	if len(steps) == 0 {
		return "[]", nil
	}
	raw, err := json.Marshal(steps)
	return string(raw), err
}

// CreateBackup inserts a backup row (files are saved with SaveBackup).
func (s *DB) CreateBackup(ctx context.Context, b domain.Backup) error {
	if b.CompressionStatus == "" {
		b.CompressionStatus = domain.Uncompressed
	}
	if b.ValidationStatus == "" {
		b.ValidationStatus = domain.NotValidated
	}
	steps, err := stepsJSON(b.ValidationSteps)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO backups(`+backupCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27)`,
		b.ID, b.VMID, b.VMName, b.AccountID, b.OfferingID, b.HostID, string(b.Type), b.Isolated, b.ParentID, b.Position,
		b.EndOfChain, string(b.Status), b.Size, b.VirtualSize, b.Dir, b.Plan, b.Error, fmtTime(b.Created), fmtTime(b.Updated),
		string(b.CompressionStatus), b.UncompressedSize, string(b.ValidationStatus), b.ValidationReason, b.HasScreenshot, b.ScheduleID, b.StorageID, steps)
	return err
}

// SaveBackup updates a backup, its files and optionally the VM's chain.
func (s *DB) SaveBackup(ctx context.Context, b domain.Backup, c *store.Chain) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Compression and validation fields belong to the background jobs
		// (SetCompression): not written here, so no update is lost.
		res, err := tx.ExecContext(ctx, `UPDATE backups SET type=$2, isolated=$3, parent_id=$4, position=$5, end_of_chain=$6, status=$7,
 size=$8, virtual_size=$9, plan=$10, error=$11, updated=$12, host_id=$13 WHERE id=$1`,
			b.ID, string(b.Type), b.Isolated, b.ParentID, b.Position, b.EndOfChain, string(b.Status), b.Size, b.VirtualSize,
			b.Plan, b.Error, fmtTime(b.Updated), b.HostID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("backup", b.ID)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM backup_files WHERE backup_id = $1`, b.ID); err != nil {
			return err
		}
		for _, f := range b.Files {
			if _, err := tx.ExecContext(ctx, `INSERT INTO backup_files(backup_id, disk, path, full_copy, size, virtual_size, hash) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
				b.ID, f.Disk, f.Path, f.Full, f.Size, f.VirtualSize, f.Hash); err != nil {
				return err
			}
		}
		if c != nil {
			return setChain(ctx, tx, b.VMID, *c)
		}
		return nil
	})
}

// files reads the files of the backups, in one query per 500 backups.
func (s *DB) files(ctx context.Context, ids ...string) (map[string][]domain.BackupFile, error) {
	out := map[string][]domain.BackupFile{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		var q query
		marks := make([]string, n)
		for i, id := range ids[:n] {
			marks[i] = q.arg(id)
		}
		ids = ids[n:]
		rows, err := s.db.QueryContext(ctx, `SELECT backup_id, disk, path, full_copy, size, virtual_size, hash FROM backup_files
 WHERE backup_id IN (`+strings.Join(marks, ", ")+`) ORDER BY backup_id, disk`, q.args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var f domain.BackupFile
			if err := rows.Scan(&id, &f.Disk, &f.Path, &f.Full, &f.Size, &f.VirtualSize, &f.Hash); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = append(out[id], f)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Backup finds a backup by id.
func (s *DB) Backup(ctx context.Context, id string) (domain.Backup, error) {
	b, err := scanBackup(s.db.QueryRowContext(ctx, `SELECT `+backupCols+` FROM backups WHERE id = $1`, id))
	if noRows(err) {
		return b, notFound("backup", id)
	}
	if err != nil {
		return b, err
	}
	files, err := s.files(ctx, id)
	b.Files = files[id]
	return b, err
}

// backupsQuery is ListBackups' statement: each filter has an index that
// also gives the order (backups_vm, backups_account, backups_status,
// backups_created).
func backupsQuery(f store.BackupFilter) (string, []any) {
	var q query
	q.eq("vm_id", f.VMID)
	q.eq("account_id", f.AccountID)
	q.eq("status", string(f.Status))
	if f.After != nil {
		q.after("created", fmtTime(f.After.Time), "id", f.After.ID, false)
	}
	return q.sql(backupCols, "backups", "created, id", f.Limit), q.args
}

// ListBackups lists backups oldest first.
func (s *DB) ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error) {
	stmt, args := backupsQuery(f)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	var out []domain.Backup
	var ids []string
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, b)
		ids = append(ids, b.ID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	files, err := s.files(ctx, ids...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Files = files[out[i].ID]
	}
	return out, nil
}

// ExpungeBackup removes a backup from the catalogue.
func (s *DB) ExpungeBackup(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM backup_files WHERE backup_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM backups WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("backup", id)
		}
		return nil
	})
}

// Chain returns a VM's chain head and deltas.
func (s *DB) Chain(ctx context.Context, vmID string) (store.Chain, error) {
	var c store.Chain
	err := s.db.QueryRowContext(ctx, `SELECT chain_head FROM vms WHERE id = $1`, vmID).Scan(&c.Head)
	if noRows(err) {
		return c, notFound("vm", vmID)
	}
	if err != nil {
		return c, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT disk, backup_id, delta, base FROM vm_deltas WHERE vm_id = $1 ORDER BY disk`, vmID)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		d := domain.Delta{VMID: vmID}
		if err := rows.Scan(&d.Disk, &d.BackupID, &d.Delta, &d.Base); err != nil {
			return c, err
		}
		c.Deltas = append(c.Deltas, d)
	}
	return c, rows.Err()
}

// SetChain replaces a VM's chain head and deltas.
func (s *DB) SetChain(ctx context.Context, vmID string, c store.Chain) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return setChain(ctx, tx, vmID, c) })
}

func setChain(ctx context.Context, tx *sql.Tx, vmID string, c store.Chain) error {
	res, err := tx.ExecContext(ctx, `UPDATE vms SET chain_head = $2 WHERE id = $1`, vmID, c.Head)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("vm", vmID)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM vm_deltas WHERE vm_id = $1`, vmID); err != nil {
		return err
	}
	for _, d := range c.Deltas {
		if _, err := tx.ExecContext(ctx, `INSERT INTO vm_deltas(vm_id, disk, backup_id, delta, base) VALUES ($1,$2,$3,$4,$5)`,
			vmID, d.Disk, d.BackupID, d.Delta, d.Base); err != nil {
			return err
		}
	}
	return nil
}

// AcquireVM marks a VM busy, without an owner, unless it is busy already.
func (s *DB) AcquireVM(ctx context.Context, vmID, holder string) error {
	return s.AcquireVMFor(ctx, vmID, holder, "", time.Time{})
}

// ReleaseVM clears the busy mark held by holder.
func (s *DB) ReleaseVM(ctx context.Context, vmID, holder string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE vms SET busy = '', busy_owner = '', busy_until = '' WHERE id = $1 AND busy = $2`, vmID, holder)
	return err
}

// SetVMError records a VM's problem.
func (s *DB) SetVMError(ctx context.Context, vmID, msg string) error {
	return s.updateVM(ctx, vmID, "last_error", msg)
}

// SetBackupStatus changes a backup's status only.
func (s *DB) SetBackupStatus(ctx context.Context, id string, st domain.BackupStatus, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE backups SET status = $2, updated = $3 WHERE id = $1`, id, string(st), fmtTime(at))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("backup", id)
	}
	return nil
}

// SetCompression changes a backup's compression fields only.
func (s *DB) SetCompression(ctx context.Context, id string, st domain.CompressionStatus, size, uncompressed int64, files []domain.BackupFile) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE backups SET compression_status = $2 WHERE id = $1`
		args := []any{id, string(st)}
		if files != nil {
			q = `UPDATE backups SET compression_status = $2, size = $3, uncompressed_size = $4 WHERE id = $1`
			args = append(args, size, uncompressed)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("backup", id)
		}
		for _, f := range files {
			if _, err := tx.ExecContext(ctx, `UPDATE backup_files SET size = $3, hash = $4 WHERE backup_id = $1 AND disk = $2`, id, f.Disk, f.Size, f.Hash); err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkEndOfChain flags a backup as the end of its chain.
func (s *DB) MarkEndOfChain(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE backups SET end_of_chain = TRUE WHERE id = $1`, id)
	return err
}

// SetValidation changes a backup's validation fields only.
func (s *DB) SetValidation(ctx context.Context, id string, st domain.ValidationStatus, reason string, steps []domain.ValidationStepRun, hasScreenshot bool, hashes map[string]string) error {
	raw, err := stepsJSON(steps)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE backups SET validation_status = $2, validation_reason = $3, has_screenshot = (has_screenshot OR $4), validation_steps = $5 WHERE id = $1`,
			id, string(st), reason, hasScreenshot, raw)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("backup", id)
		}
		for disk, h := range hashes {
			if _, err := tx.ExecContext(ctx, `UPDATE backup_files SET hash = $3 WHERE backup_id = $1 AND disk = $2`, id, disk, h); err != nil {
				return err
			}
		}
		return nil
	})
}
