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

const remoteCols = `id, name, endpoint, bucket, region, access_key, secret_key, seal_key, lock_days, lock_mode, bandwidth_bps, lock_check, checked_at, created`

// fmtOptTime writes a time that may be unset ("" when zero).
func fmtOptTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return fmtTime(t)
}

func scanRemote(sc scanner) (domain.Remote, error) {
	var r domain.Remote
	var mode, checked, created string
	err := sc.Scan(&r.ID, &r.Name, &r.Endpoint, &r.Bucket, &r.Region, &r.AccessKey, &r.SecretKey, &r.Key, &r.LockDays, &mode, &r.BandwidthBps, &r.LockCheck, &checked, &created)
	r.LockMode, r.CheckedAt, r.Created = domain.LockMode(mode), parseTime(checked), parseTime(created)
	return r, err
}

// CreateRemote stores a remote (see store.RemoteStore).
func (s *DB) CreateRemote(ctx context.Context, r domain.Remote) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO remotes(`+remoteCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
		r.ID, r.Name, r.Endpoint, r.Bucket, r.Region, r.AccessKey, r.SecretKey, r.Key, r.LockDays, string(r.LockMode), r.BandwidthBps, r.LockCheck, fmtOptTime(r.CheckedAt), fmtTime(r.Created))
	if isUnique(err) {
		return fmt.Errorf("remote name %q is taken: %w", r.Name, domain.ErrConflict)
	}
	return err
}

// Remote finds a remote by id or name.
func (s *DB) Remote(ctx context.Context, ref string) (domain.Remote, error) {
	r, err := scanRemote(s.db.QueryRowContext(ctx, `SELECT `+remoteCols+` FROM remotes WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref))
	if noRows(err) {
		return r, notFound("remote", ref)
	}
	return r, err
}

// ListRemotes lists the remotes by name.
func (s *DB) ListRemotes(ctx context.Context) ([]domain.Remote, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+remoteCols+` FROM remotes ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Remote
	for rows.Next() {
		r, err := scanRemote(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SetRemoteCheck records a lock check's verdict.
func (s *DB) SetRemoteCheck(ctx context.Context, id, verdict string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE remotes SET lock_check = $2, checked_at = $3 WHERE id = $1`, id, verdict, fmtTime(at))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("remote", id)
	}
	return nil
}

// DeleteRemote removes a remote no copy and no policy names.
func (s *DB) DeleteRemote(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM backup_copies WHERE remote_id = $1) + (SELECT COUNT(*) FROM copy_policies WHERE remote_id = $1)`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("remote %s still has copies or copy policies: %w", id, domain.ErrConflict)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM remotes WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("remote", id)
		}
		return nil
	})
}

const policyCols = `offering_id, remote_id, every, keep_days, swept_until`

func scanPolicy(sc scanner) (domain.CopyPolicy, error) {
	var p domain.CopyPolicy
	var every, swept string
	err := sc.Scan(&p.OfferingID, &p.RemoteID, &every, &p.KeepDays, &swept)
	p.Every, p.SweptUntil = domain.CopyEvery(every), parseTime(swept)
	return p, err
}

// SetCopyPolicy sets or removes an offering's copy policy.
func (s *DB) SetCopyPolicy(ctx context.Context, p domain.CopyPolicy) error {
	if p.RemoteID == "" {
		_, err := s.db.ExecContext(ctx, `DELETE FROM copy_policies WHERE offering_id = $1`, p.OfferingID)
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO copy_policies(`+policyCols+`) VALUES ($1,$2,$3,$4,$5)
ON CONFLICT (offering_id) DO UPDATE SET remote_id = excluded.remote_id, every = excluded.every, keep_days = excluded.keep_days, swept_until = excluded.swept_until`,
		p.OfferingID, p.RemoteID, string(p.Every), p.KeepDays, fmtOptTime(p.SweptUntil))
	return err
}

// CopyPolicy returns an offering's policy.
func (s *DB) CopyPolicy(ctx context.Context, offeringID string) (domain.CopyPolicy, error) {
	p, err := scanPolicy(s.db.QueryRowContext(ctx, `SELECT `+policyCols+` FROM copy_policies WHERE offering_id = $1`, offeringID))
	if noRows(err) {
		return p, notFound("copy policy of offering", offeringID)
	}
	return p, err
}

// CopyPolicies lists every policy.
func (s *DB) CopyPolicies(ctx context.Context) ([]domain.CopyPolicy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+policyCols+` FROM copy_policies ORDER BY offering_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.CopyPolicy
	for rows.Next() {
		p, err := scanPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AdvanceCopyPolicy moves swept_until from prev to next if nobody did.
func (s *DB) AdvanceCopyPolicy(ctx context.Context, offeringID string, prev, next time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE copy_policies SET swept_until = $3 WHERE offering_id = $1 AND swept_until = $2`, offeringID, fmtOptTime(prev), fmtOptTime(next))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

const copyCols = `id, backup_id, remote_id, state, salt, objects, manifest_key, manifest_version, lock_until, keep_until, size, error, created, copied`

func scanCopy(sc scanner) (domain.BackupCopy, error) {
	var c domain.BackupCopy
	var state, objects, lock, keep, created, copied string
	if err := sc.Scan(&c.ID, &c.BackupID, &c.RemoteID, &state, &c.Salt, &objects, &c.ManifestKey, &c.ManifestVersion, &lock, &keep, &c.Size, &c.Error, &created, &copied); err != nil {
		return c, err
	}
	c.State, c.LockUntil, c.KeepUntil, c.Created, c.Copied = domain.CopyState(state), parseTime(lock), parseTime(keep), parseTime(created), parseTime(copied)
	if err := json.Unmarshal([]byte(objects), &c.Objects); err != nil {
		return c, fmt.Errorf("copy %s objects: %w", c.ID, err)
	}
	return c, nil
}

// CreateCopy records a copy before anything is uploaded.
func (s *DB) CreateCopy(ctx context.Context, c domain.BackupCopy) error {
	objects, err := json.Marshal(orEmpty(c.Objects))
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM backup_copies WHERE backup_id = $1 AND remote_id = $2 AND state <> $3`, c.BackupID, c.RemoteID, string(domain.CopyFailed)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("backup %s has a copy on that remote already: %w", c.BackupID, domain.ErrConflict)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO backup_copies(`+copyCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
			c.ID, c.BackupID, c.RemoteID, string(c.State), c.Salt, string(objects), c.ManifestKey, c.ManifestVersion, fmtOptTime(c.LockUntil), fmtOptTime(c.KeepUntil), c.Size, c.Error, fmtTime(c.Created), fmtOptTime(c.Copied))
		return err
	})
}

func orEmpty(o []domain.CopyObject) []domain.CopyObject {
	if o == nil {
		return []domain.CopyObject{}
	}
	return o
}

// Copy finds a copy by id.
func (s *DB) Copy(ctx context.Context, id string) (domain.BackupCopy, error) {
	c, err := scanCopy(s.db.QueryRowContext(ctx, `SELECT `+copyCols+` FROM backup_copies WHERE id = $1`, id))
	if noRows(err) {
		return c, notFound("copy", id)
	}
	return c, err
}

// Copies lists the copies matching f, oldest first.
func (s *DB) Copies(ctx context.Context, f store.CopyFilter) ([]domain.BackupCopy, error) {
	var q query
	q.eq("backup_id", f.BackupID)
	q.eq("remote_id", f.RemoteID)
	q.eq("state", string(f.State))
	if f.BackupIDs != nil {
		if len(f.BackupIDs) == 0 {
			return nil, nil
		}
		var ph []string
		for _, id := range f.BackupIDs {
			ph = append(ph, q.arg(id))
		}
		q.where("backup_id IN (" + strings.Join(ph, ",") + ")")
	}
	rows, err := s.db.QueryContext(ctx, q.sql(copyCols, "backup_copies", "created, id", 0), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.BackupCopy
	for rows.Next() {
		c, err := scanCopy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SaveCopy updates a copy.
func (s *DB) SaveCopy(ctx context.Context, c domain.BackupCopy) error {
	objects, err := json.Marshal(orEmpty(c.Objects))
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE backup_copies SET state = $2, objects = $3, manifest_key = $4, manifest_version = $5, lock_until = $6, keep_until = $7, size = $8, error = $9, copied = $10 WHERE id = $1`,
		c.ID, string(c.State), string(objects), c.ManifestKey, c.ManifestVersion, fmtOptTime(c.LockUntil), fmtOptTime(c.KeepUntil), c.Size, c.Error, fmtOptTime(c.Copied))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("copy", c.ID)
	}
	return nil
}

// DeleteCopy forgets a copy.
func (s *DB) DeleteCopy(ctx context.Context, id string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM backup_copies WHERE id = $1`, id)
	return err
}

// ImportVM records a VM the catalogue does not know.
func (s *DB) ImportVM(ctx context.Context, v domain.VM) (bool, error) {
	disks, err := json.Marshal(v.Disks)
	if err != nil {
		return false, err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO vms(`+vmCols+`) VALUES ($1,$2,$3,$4,'',$5,NULL,$6,$7,'','','',$8,$9) ON CONFLICT (id) DO NOTHING`,
		v.ID, v.Name, v.HostID, string(v.State), v.AccountID, string(disks), fmtTime(v.Seen), v.VCPUs, int64(v.MemoryBytes))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
