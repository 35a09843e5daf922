package sqlstore

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// summariesQuery is the VMs' part of VMSummaries: each VM joined to its
// names, chain head, failed jobs and next scheduled run, by name; its
// newest backup and its newest Valid one are one backwards step each in
// the index backups_vm.
func summariesQuery(accountID string) (string, []any) {
	where, args := "", []any(nil)
	if accountID != "" {
		where, args = "WHERE v.account_id = $1", []any{accountID}
	}
	return `SELECT v.id, v.name, v.account_id, COALESCE(a.name, ''), v.host_id, COALESCE(h.name, ''), v.state, v.work_state,
  COALESCE(v.offering_id, ''), COALESCE(o.name, ''), v.chain_head, COALESCE(hb.position, 0), v.last_error,
  COALESCE(j.failed, 0), COALESCE(s.next_run, ''),
  COALESCE((SELECT x.created || '|' || x.status || '|' || x.id FROM backups x WHERE x.vm_id = v.id
    ORDER BY x.created DESC, x.id DESC LIMIT 1), ''),
  COALESCE((SELECT x.created || '|' || x.id FROM backups x WHERE x.vm_id = v.id AND x.status IN ('BackedUp', 'Removed')
    AND x.validation_status = 'Valid' ORDER BY x.created DESC, x.id DESC LIMIT 1), '')
FROM vms v
LEFT JOIN accounts a ON a.id = v.account_id
LEFT JOIN hosts h ON h.id = v.host_id
LEFT JOIN offerings o ON o.id = v.offering_id
LEFT JOIN backups hb ON hb.id = v.chain_head
LEFT JOIN (SELECT jb.vm_id, count(*) AS failed FROM jobs jb JOIN backups bb ON bb.id = jb.backup_id AND bb.status = 'BackedUp'
  WHERE jb.state = 'Failed' GROUP BY jb.vm_id) j ON j.vm_id = v.id
LEFT JOIN (SELECT vm_id, min(next_run) AS next_run FROM schedules GROUP BY vm_id) s ON s.vm_id = v.id
` + where + `
ORDER BY v.name, v.id`, args
}

// backupGroupsQuery is the backups' part of VMSummaries: one pass over the
// covering index backups_summary, grouped the way it is ordered (VM,
// status, validation status), so that no expression runs per backup.
func backupGroupsQuery(accountID string) (string, []any) {
	where, args := "", []any(nil)
	if accountID != "" {
		where, args = "WHERE vm_id IN (SELECT id FROM vms WHERE account_id = $1)", []any{accountID}
	}
	return `SELECT vm_id, status, validation_status, count(*), max(created), CAST(sum(size) AS BIGINT) FROM backups ` + where + `
GROUP BY vm_id, status, validation_status`, args
}

// VMSummaries aggregates each VM's protection (see store.Dashboards).
func (s *DB) VMSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error) {
	out, err := s.vmSummaries(ctx, accountID)
	if err != nil {
		return nil, err
	}
	byVM := make(map[string]*store.VMSummary, len(out))
	for i := range out {
		byVM[out[i].VMID] = &out[i]
	}
	stmt, args := backupGroupsQuery(accountID)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var vmID, status, validation, newest string
		var n int
		var size int64
		if err := rows.Scan(&vmID, &status, &validation, &n, &newest, &size); err != nil {
			return nil, err
		}
		v := byVM[vmID]
		if v == nil {
			continue // a VM the catalogue no longer lists
		}
		v.Backups += n
		switch domain.BackupStatus(status) {
		case domain.BackupBackedUp:
			v.StoredBytes += size
			if t := parseTime(newest); t.After(v.LastGoodAt) {
				v.LastGoodAt = t
			}
			switch domain.ValidationStatus(validation) {
			case domain.NotValid:
				v.NotValid += n
			case domain.UnableToValidate:
				v.UnableToValidate += n
			}
		case domain.BackupRemoved:
			v.StoredBytes += size
		case domain.BackupError, domain.BackupFailed:
			v.FailedBackups += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, s.provenByRestores(ctx, accountID, byVM)
}

// provenByRestores counts a succeeded restore as a proof of its backup:
// every disk a restore writes is checked against the backup (hashes, or an
// overlay on the backup file) before the operation succeeds.
func (s *DB) provenByRestores(ctx context.Context, accountID string, byVM map[string]*store.VMSummary) error {
	stmt := `SELECT vm_id, updated, result FROM operations WHERE kind = 'backup.restore' AND state = 'Succeeded'`
	var args []any
	if accountID != "" {
		stmt, args = stmt+` AND vm_id IN (SELECT id FROM vms WHERE account_id = $1)`, []any{accountID}
	}
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var vmID, updated, result string
		if err := rows.Scan(&vmID, &updated, &result); err != nil {
			return err
		}
		v, at := byVM[vmID], parseTime(updated)
		if v == nil || !at.After(v.ProvenAt) {
			continue
		}
		var r domain.BackupRestoreResult
		if json.Unmarshal([]byte(result), &r) != nil || r.Backup == "" {
			continue
		}
		v.ProvenAt, v.ProvenBackupID, v.ProvenBy = at, r.Backup, "restore"
	}
	return rows.Err()
}

func (s *DB) vmSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error) {
	stmt, args := summariesQuery(accountID)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.VMSummary
	for rows.Next() {
		var v store.VMSummary
		var state, work, next, last, proven string
		if err := rows.Scan(&v.VMID, &v.Name, &v.AccountID, &v.Account, &v.HostID, &v.Host, &state, &work,
			&v.OfferingID, &v.Offering, &v.ChainHead, &v.ChainLength, &v.LastError, &v.FailedJobs, &next, &last, &proven); err != nil {
			return nil, err
		}
		v.State, v.WorkState, v.NextRun = domain.VMState(state), domain.VMState(work), parseTime(next)
		if parts := strings.SplitN(last, "|", 3); len(parts) == 3 {
			v.LastBackupAt, v.LastBackupStatus, v.LastBackupID = parseTime(parts[0]), domain.BackupStatus(parts[1]), parts[2]
		}
		if parts := strings.SplitN(proven, "|", 2); len(parts) == 2 {
			v.ProvenAt, v.ProvenBackupID, v.ProvenBy = parseTime(parts[0]), parts[1], "validation"
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
