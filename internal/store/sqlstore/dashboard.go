package sqlstore

import (
	"context"
	"strings"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// summariesQuery is VMSummaries' statement: one pass over the backups
// grouped by VM (and the failed jobs and schedules likewise), joined to
// the VMs by name; the newest backup of each VM comes from the backups_vm
// index.
func summariesQuery(accountID string) (string, []any) {
	var args []any
	vmWhere, backupWhere := "", ""
	if accountID != "" {
		args = append(args, accountID)
		vmWhere, backupWhere = "WHERE v.account_id = $1", "WHERE account_id = $1"
	}
	return `SELECT v.id, v.name, v.account_id, COALESCE(a.name, ''), v.host_id, COALESCE(h.name, ''), v.state, v.work_state,
  COALESCE(v.offering_id, ''), COALESCE(o.name, ''), v.chain_head, COALESCE(hb.position, 0), v.last_error,
  COALESCE(b.n, 0), COALESCE(b.stored, 0), COALESCE(b.last_good, ''), COALESCE(b.proven, ''),
  COALESCE(b.not_valid, 0), COALESCE(b.unable, 0), COALESCE(b.failed, 0), COALESCE(j.failed, 0), COALESCE(s.next_run, ''),
  COALESCE((SELECT x.created || '|' || x.status || '|' || x.id FROM backups x WHERE x.vm_id = v.id ORDER BY x.created DESC, x.id DESC LIMIT 1), ''),
  COALESCE((SELECT x.id FROM backups x WHERE x.vm_id = v.id AND x.validation_status = 'Valid' ORDER BY x.created DESC, x.id DESC LIMIT 1), '')
FROM vms v
LEFT JOIN accounts a ON a.id = v.account_id
LEFT JOIN hosts h ON h.id = v.host_id
LEFT JOIN offerings o ON o.id = v.offering_id
LEFT JOIN backups hb ON hb.id = v.chain_head
LEFT JOIN (SELECT vm_id, count(*) AS n,
    CAST(sum(CASE WHEN status IN ('BackedUp', 'Removed') THEN size ELSE 0 END) AS BIGINT) AS stored,
    max(CASE WHEN status = 'BackedUp' THEN created END) AS last_good,
    max(CASE WHEN validation_status = 'Valid' THEN created END) AS proven,
    sum(CASE WHEN status = 'BackedUp' AND validation_status = 'NotValid' THEN 1 ELSE 0 END) AS not_valid,
    sum(CASE WHEN status = 'BackedUp' AND validation_status = 'UnableToValidate' THEN 1 ELSE 0 END) AS unable,
    sum(CASE WHEN status IN ('Error', 'Failed') THEN 1 ELSE 0 END) AS failed
  FROM backups ` + backupWhere + ` GROUP BY vm_id) b ON b.vm_id = v.id
LEFT JOIN (SELECT jb.vm_id, count(*) AS failed FROM jobs jb JOIN backups bb ON bb.id = jb.backup_id AND bb.status = 'BackedUp'
  WHERE jb.state = 'Failed' GROUP BY jb.vm_id) j ON j.vm_id = v.id
LEFT JOIN (SELECT vm_id, min(next_run) AS next_run FROM schedules GROUP BY vm_id) s ON s.vm_id = v.id
` + vmWhere + `
ORDER BY v.name, v.id`, args
}

// VMSummaries aggregates each VM's protection (see store.Dashboards).
func (s *DB) VMSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error) {
	stmt, args := summariesQuery(accountID)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.VMSummary
	for rows.Next() {
		var v store.VMSummary
		var state, work, lastGood, proven, next, last string
		var stored int64
		if err := rows.Scan(&v.VMID, &v.Name, &v.AccountID, &v.Account, &v.HostID, &v.Host, &state, &work,
			&v.OfferingID, &v.Offering, &v.ChainHead, &v.ChainLength, &v.LastError,
			&v.Backups, &stored, &lastGood, &proven, &v.NotValid, &v.UnableToValidate, &v.FailedBackups, &v.FailedJobs, &next,
			&last, &v.ProvenBackupID); err != nil {
			return nil, err
		}
		v.State, v.WorkState, v.StoredBytes = domain.VMState(state), domain.VMState(work), stored
		v.LastGoodAt, v.ProvenAt, v.NextRun = parseTime(lastGood), parseTime(proven), parseTime(next)
		if parts := strings.SplitN(last, "|", 3); len(parts) == 3 {
			v.LastBackupAt, v.LastBackupStatus, v.LastBackupID = parseTime(parts[0]), domain.BackupStatus(parts[1]), parts[2]
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
