package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

const jobCols = `id, type, backup_id, vm_id, host_id, zone_id, attempts, scheduled, started, ended, state, last_error, lease_owner, lease_until`

// jobReadCols are the columns a job is read with: its own, then the
// account of its backup (one primary-key lookup per job), whose settings
// the job follows.
const jobReadCols = jobCols + `, COALESCE((SELECT b.account_id FROM backups b WHERE b.id = jobs.backup_id), '')`

func optTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	return parseTime(s)
}

func fmtOpt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

func scanJob(r scanner) (jobs.Job, error) {
	var j jobs.Job
	var typ, state, sched, started, ended, until string
	err := r.Scan(&j.ID, &typ, &j.BackupID, &j.VMID, &j.HostID, &j.ZoneID, &j.Attempts, &sched, &started, &ended, &state, &j.LastError, &j.LeaseOwner, &until, &j.AccountID)
	j.Type, j.State = jobs.Type(typ), jobs.State(state)
	j.Scheduled, j.Started, j.Ended, j.LeaseUntil = optTime(sched), optTime(started), optTime(ended), optTime(until)
	return j, err
}

// EnqueueJob inserts a job.
func (s *DB) EnqueueJob(ctx context.Context, j jobs.Job) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs(`+jobCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
		j.ID, string(j.Type), j.BackupID, j.VMID, j.HostID, j.ZoneID, j.Attempts, fmtTime(j.Scheduled), fmtOpt(j.Started), fmtOpt(j.Ended),
		string(j.State), j.LastError, j.LeaseOwner, fmtOpt(j.LeaseUntil))
	return err
}

// Job finds a job.
func (s *DB) Job(ctx context.Context, id string) (jobs.Job, error) {
	j, err := scanJob(s.db.QueryRowContext(ctx, `SELECT `+jobReadCols+` FROM jobs WHERE id = $1`, id))
	if noRows(err) {
		return j, notFound("job", id)
	}
	return j, err
}

// openJobs is the condition of the jobs_open partial index: the query
// must hold it word for word for SQLite to use that index.
const openJobs = "state IN ('Queued', 'Running')"

// jobsQuery is Jobs' statement, ordered by scheduled time: unfinished jobs
// through jobs_open, running, due and later ones through jobs_state, one
// backup's through jobs_backup, all through jobs_scheduled.
func jobsQuery(f store.JobFilter, engine string) (string, []any) {
	var q query
	from := "jobs"
	q.eq("id", f.ID)
	q.eq("backup_id", f.BackupID)
	q.eq("host_id", f.HostID)
	q.eq("zone_id", f.ZoneID)
	q.eq("type", string(f.Type))
	switch {
	case f.Executing || f.HostID != "":
		q.where("state = 'Running'")
	case f.Scheduled:
		q.where("state = 'Queued' AND scheduled > " + q.arg(fmtTime(f.Now)))
	case f.Due:
		q.where("state = 'Queued' AND scheduled <= " + q.arg(fmtTime(f.Now)))
	case !f.All:
		q.where(openJobs)
		if engine == EngineSQLite {
			// Without statistics SQLite prefers jobs_state for the IN
			// list, then sorts every open job to find the first page.
			from = "jobs INDEXED BY jobs_open"
		}
	}
	if f.After != nil {
		q.after("scheduled", fmtTime(f.After.Time), "id", f.After.ID, false)
	}
	return q.sql(jobReadCols, from, "scheduled, id", f.Limit), q.args
}

// Jobs lists jobs.
func (s *DB) Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error) {
	stmt, args := jobsQuery(f, s.engine)
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []jobs.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

const claimJob = `UPDATE jobs SET state = 'Running', host_id = $3, lease_owner = $2, lease_until = $5, started = $4,
 attempts = attempts + 1, last_error = '' WHERE id = $1 AND state = 'Queued' AND scheduled <= $4`

// ClaimJob is one conditional UPDATE: only one claimer can move a job from
// Queued to Running.
func (s *DB) ClaimJob(ctx context.Context, id, owner, hostID string, now, leaseUntil time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, claimJob, id, owner, hostID, fmtTime(now), fmtTime(leaseUntil))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ClaimJobs runs the claims in one transaction: one commit for a pass.
func (s *DB) ClaimJobs(ctx context.Context, claims []store.JobClaim, owner string, now, leaseUntil time.Time) ([]store.JobClaim, error) {
	var won []store.JobClaim
	err := s.tx(ctx, func(tx *sql.Tx) error {
		won = won[:0]
		for _, c := range claims {
			res, err := tx.ExecContext(ctx, claimJob, c.JobID, owner, c.HostID, fmtTime(now), fmtTime(leaseUntil))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				won = append(won, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return won, nil
}

// RenewLease extends a held lease.
func (s *DB) RenewLease(ctx context.Context, id, owner string, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET lease_until = $3 WHERE id = $1 AND state = 'Running' AND lease_owner = $2`, id, owner, fmtTime(until))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// FinishJob records an attempt's outcome while owner holds the job.
func (s *DB) FinishJob(ctx context.Context, id, owner string, o jobs.Outcome, lastError string, ended time.Time) (bool, error) {
	sched := ""
	if o.State == jobs.Queued {
		sched = fmtTime(o.Scheduled)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = $3, last_error = $4, ended = $5, lease_owner = '', lease_until = '',
 scheduled = CASE WHEN $6 = '' THEN scheduled ELSE $6 END, host_id = CASE WHEN $3 = 'Queued' THEN '' ELSE host_id END, attempts = $7
 WHERE id = $1 AND state = 'Running' AND lease_owner = $2`, id, owner, string(o.State), lastError, fmtTime(ended), sched, o.Attempts)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReapJob finishes a running job whose lease ran out.
func (s *DB) ReapJob(ctx context.Context, id string, now time.Time, o jobs.Outcome, lastError string) (bool, error) {
	sched := ""
	if o.State == jobs.Queued {
		sched = fmtTime(o.Scheduled)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET state = $3, last_error = $4, ended = $2, lease_owner = '', lease_until = '',
 scheduled = CASE WHEN $5 = '' THEN scheduled ELSE $5 END, host_id = CASE WHEN $3 = 'Queued' THEN '' ELSE host_id END
 WHERE id = $1 AND state = 'Running' AND lease_until <> '' AND lease_until < $2`, id, fmtTime(now), string(o.State), lastError, sched)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
