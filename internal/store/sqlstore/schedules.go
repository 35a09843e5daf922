package sqlstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
)

const schedCols = `id, vm_id, interval, at, timezone, max_backups, isolated, next_run, created`

func scanSchedule(r scanner) (domain.Schedule, error) {
	var sc domain.Schedule
	var next, created string
	err := r.Scan(&sc.ID, &sc.VMID, &sc.Interval, &sc.At, &sc.Timezone, &sc.MaxBackups, &sc.Isolated, &next, &created)
	sc.NextRun, sc.Created = parseTime(next), parseTime(created)
	return sc, err
}

// SaveSchedule inserts or updates a schedule.
func (s *DB) SaveSchedule(ctx context.Context, sc domain.Schedule) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO schedules(`+schedCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)
ON CONFLICT (id) DO UPDATE SET interval=excluded.interval, at=excluded.at, timezone=excluded.timezone,
 max_backups=excluded.max_backups, isolated=excluded.isolated, next_run=excluded.next_run`,
		sc.ID, sc.VMID, sc.Interval, sc.At, sc.Timezone, sc.MaxBackups, sc.Isolated, fmtTime(sc.NextRun), fmtTime(sc.Created))
	return err
}

// Schedule finds a schedule.
func (s *DB) Schedule(ctx context.Context, id string) (domain.Schedule, error) {
	sc, err := scanSchedule(s.db.QueryRowContext(ctx, `SELECT `+schedCols+` FROM schedules WHERE id = $1`, id))
	if noRows(err) {
		return sc, notFound("schedule", id)
	}
	return sc, err
}

// schedulesQuery lists a VM's schedules (schedules_vm) or all of them.
func schedulesQuery(vmID string) (string, []any) {
	var q query
	q.eq("vm_id", vmID)
	return q.sql(schedCols, "schedules", "created, id", 0), q.args
}

// dueSchedulesQuery reads a page of the schedules due at now, through
// schedules_due.
func dueSchedulesQuery(now time.Time, limit int) (string, []any) {
	var q query
	q.where("next_run <= " + q.arg(fmtTime(now)))
	return q.sql(schedCols, "schedules", "next_run, id", limit), q.args
}

// DueSchedules lists at most limit schedules whose next run is due at now,
// the most overdue first.
func (s *DB) DueSchedules(ctx context.Context, now time.Time, limit int) ([]domain.Schedule, error) {
	stmt, args := dueSchedulesQuery(now, limit)
	return s.schedules(ctx, stmt, args)
}

// Schedules lists schedules.
func (s *DB) Schedules(ctx context.Context, vmID string) ([]domain.Schedule, error) {
	stmt, args := schedulesQuery(vmID)
	return s.schedules(ctx, stmt, args)
}

func (s *DB) schedules(ctx context.Context, stmt string, args []any) ([]domain.Schedule, error) {
	rows, err := s.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Schedule
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// DeleteSchedule removes a schedule (its backups stay).
func (s *DB) DeleteSchedule(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM schedules WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("schedule", id)
	}
	return nil
}

// AdvanceSchedule is one conditional UPDATE: one caller wins each due run.
func (s *DB) AdvanceSchedule(ctx context.Context, id string, prev, next time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE schedules SET next_run = $3 WHERE id = $1 AND next_run = $2`, id, fmtTime(prev), fmtTime(next))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
