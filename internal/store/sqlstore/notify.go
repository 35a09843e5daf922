package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

const notifyTargetCols = `id, name, kind, url, secret, addr, mail_from, mail_to, username, starttls, created`

func scanNotifyTarget(sc interface{ Scan(...any) error }) (store.NotifyTarget, error) {
	var t store.NotifyTarget
	var to, created string
	err := sc.Scan(&t.ID, &t.Name, &t.Kind, &t.URL, &t.Secret, &t.Addr, &t.From, &to, &t.User, &t.StartTLS, &created)
	t.To = splitWords(to)
	t.Created = parseTime(created)
	return t, err
}

func splitWords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// CreateNotifyTarget stores a target (see store.NotifyStore).
func (s *DB) CreateNotifyTarget(ctx context.Context, t store.NotifyTarget) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notify_targets(`+notifyTargetCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
		t.ID, t.Name, t.Kind, t.URL, t.Secret, t.Addr, t.From, strings.Join(t.To, ","), t.User, t.StartTLS, fmtTime(t.Created))
	if isUnique(err) {
		return fmt.Errorf("notification target name %q is taken: %w", t.Name, domain.ErrConflict)
	}
	return err
}

// NotifyTarget finds a target by id or name.
func (s *DB) NotifyTarget(ctx context.Context, ref string) (store.NotifyTarget, error) {
	t, err := scanNotifyTarget(s.db.QueryRowContext(ctx, `SELECT `+notifyTargetCols+` FROM notify_targets WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref))
	if noRows(err) {
		return t, notFound("notification target", ref)
	}
	return t, err
}

// ListNotifyTargets lists the targets by name.
func (s *DB) ListNotifyTargets(ctx context.Context) ([]store.NotifyTarget, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+notifyTargetCols+` FROM notify_targets ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NotifyTarget
	for rows.Next() {
		t, err := scanNotifyTarget(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RemoveNotifyTarget removes a target and its rules.
func (s *DB) RemoveNotifyTarget(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM notify_rules WHERE target_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM notify_targets WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("notification target", id)
		}
		return nil
	})
}

// CreateNotifyRule stores a rule.
func (s *DB) CreateNotifyRule(ctx context.Context, r store.NotifyRule) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO notify_rules(id, target_id, events, zone_id, account_id, digest, created) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		r.ID, r.TargetID, strings.Join(r.Events, ","), r.ZoneID, r.AccountID, r.Digest, fmtTime(r.Created))
	return err
}

// ListNotifyRules lists the rules, oldest first.
func (s *DB) ListNotifyRules(ctx context.Context) ([]store.NotifyRule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, target_id, events, zone_id, account_id, digest, created FROM notify_rules ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NotifyRule
	for rows.Next() {
		var r store.NotifyRule
		var events, created string
		if err := rows.Scan(&r.ID, &r.TargetID, &events, &r.ZoneID, &r.AccountID, &r.Digest, &created); err != nil {
			return nil, err
		}
		r.Events = splitWords(events)
		r.Created = parseTime(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RemoveNotifyRule removes a rule.
func (s *DB) RemoveNotifyRule(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM notify_rules WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("notification rule", id)
	}
	return nil
}

const notifyCondCols = `cond_key, kind, zone_id, account_id, summary, first_seen, resolved, episode`

func (s *DB) conditions(ctx context.Context, where string, args ...any) ([]store.NotifyCondition, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+notifyCondCols+` FROM notify_conditions WHERE `+where+` ORDER BY first_seen, cond_key`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NotifyCondition
	for rows.Next() {
		var c store.NotifyCondition
		var first, resolved string
		if err := rows.Scan(&c.Key, &c.Kind, &c.ZoneID, &c.AccountID, &c.Summary, &first, &resolved, &c.Episode); err != nil {
			return nil, err
		}
		c.FirstSeen, c.Resolved = parseTime(first), parseTime(resolved)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ActiveConditions lists the unresolved conditions.
func (s *DB) ActiveConditions(ctx context.Context) ([]store.NotifyCondition, error) {
	return s.conditions(ctx, `resolved = ''`)
}

// NotifyConditionsSince lists the conditions first seen or resolved since.
func (s *DB) NotifyConditionsSince(ctx context.Context, since time.Time) ([]store.NotifyCondition, error) {
	t := fmtTime(since)
	return s.conditions(ctx, `first_seen >= $1 OR resolved >= $2`, t, t)
}

func insertDeliveries(ctx context.Context, tx *sql.Tx, ds []store.NotifyDelivery) error {
	for _, d := range ds {
		if _, err := tx.ExecContext(ctx, `INSERT INTO notify_deliveries(id, target_id, condition_key, event, payload, attempts, next_attempt, created) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			d.ID, d.TargetID, d.ConditionKey, d.Event, d.Payload, d.Attempts, fmtTime(d.NextAttempt), fmtTime(d.Created)); err != nil {
			return fmt.Errorf("enqueue delivery: %w", err)
		}
	}
	return nil
}

// FireCondition records c as active and enqueues ds, once per episode.
func (s *DB) FireCondition(ctx context.Context, c store.NotifyCondition, ds []store.NotifyDelivery) (bool, error) {
	return s.conditionWrite(ctx, ds, `INSERT INTO notify_conditions(`+notifyCondCols+`) VALUES ($1,$2,$3,$4,$5,$6,'',1)
			ON CONFLICT (cond_key) DO UPDATE SET kind = excluded.kind, zone_id = excluded.zone_id, account_id = excluded.account_id,
			summary = excluded.summary, first_seen = excluded.first_seen, resolved = '', episode = notify_conditions.episode + 1
			WHERE notify_conditions.resolved <> ''`,
		c.Key, c.Kind, c.ZoneID, c.AccountID, c.Summary, fmtTime(c.FirstSeen))
}

// ResolveCondition marks an active condition resolved and enqueues ds.
func (s *DB) ResolveCondition(ctx context.Context, key string, at time.Time, ds []store.NotifyDelivery) (bool, error) {
	return s.conditionWrite(ctx, ds, `UPDATE notify_conditions SET resolved = $2 WHERE cond_key = $1 AND resolved = ''`, key, fmtTime(at))
}

// conditionWrite runs the conditional write of a condition and, only when
// it changed a row (this caller won), enqueues ds in the same transaction.
func (s *DB) conditionWrite(ctx context.Context, ds []store.NotifyDelivery, query string, args ...any) (bool, error) {
	won := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		won = true
		return insertDeliveries(ctx, tx, ds)
	})
	return won && err == nil, err
}

// EnqueueDelivery adds a delivery unless its id exists.
func (s *DB) EnqueueDelivery(ctx context.Context, d store.NotifyDelivery) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO notify_deliveries(id, target_id, condition_key, event, payload, attempts, next_attempt, created) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)
		ON CONFLICT (id) DO NOTHING`,
		d.ID, d.TargetID, d.ConditionKey, d.Event, d.Payload, d.Attempts, fmtTime(d.NextAttempt), fmtTime(d.Created))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

const notifyDeliveryCols = `id, target_id, condition_key, event, payload, attempts, next_attempt, last_error, delivered, failed, created`

func scanDelivery(sc interface{ Scan(...any) error }) (store.NotifyDelivery, error) {
	var d store.NotifyDelivery
	var next, delivered, created string
	err := sc.Scan(&d.ID, &d.TargetID, &d.ConditionKey, &d.Event, &d.Payload, &d.Attempts, &next, &d.LastError, &delivered, &d.Failed, &created)
	d.NextAttempt, d.Delivered, d.Created = parseTime(next), parseTime(delivered), parseTime(created)
	return d, err
}

// ClaimDeliveries takes up to limit due deliveries for owner.
func (s *DB) ClaimDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]store.NotifyDelivery, error) {
	n := fmtTime(now)
	rows, err := s.db.QueryContext(ctx, `SELECT `+notifyDeliveryCols+` FROM notify_deliveries
		WHERE delivered = '' AND failed = FALSE AND next_attempt <= $1 AND lease_until <= $2 ORDER BY next_attempt, id LIMIT `+fmt.Sprint(max(limit, 1)), n, n)
	if err != nil {
		return nil, err
	}
	var due []store.NotifyDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		due = append(due, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []store.NotifyDelivery
	for _, d := range due {
		res, err := s.db.ExecContext(ctx, `UPDATE notify_deliveries SET owner = $2, lease_until = $3
			WHERE id = $1 AND delivered = '' AND failed = FALSE AND lease_until <= $4`, d.ID, owner, fmtTime(leaseUntil), n)
		if err != nil {
			return out, err
		}
		if k, err := res.RowsAffected(); err != nil {
			return out, err
		} else if k == 1 {
			out = append(out, d)
		}
	}
	return out, nil
}

// FinishDelivery records an attempt of a claimed delivery.
func (s *DB) FinishDelivery(ctx context.Context, d store.NotifyDelivery, owner string) (bool, error) {
	delivered := ""
	if !d.Delivered.IsZero() {
		delivered = fmtTime(d.Delivered)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE notify_deliveries SET attempts = $3, next_attempt = $4, last_error = $5, delivered = $6, failed = $7, owner = '', lease_until = ''
		WHERE id = $1 AND owner = $2`, d.ID, owner, d.Attempts, fmtTime(d.NextAttempt), d.LastError, delivered, d.Failed)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ListDeliveries lists deliveries, newest first.
func (s *DB) ListDeliveries(ctx context.Context, f store.NotifyDeliveryFilter) ([]store.NotifyDelivery, error) {
	var q query
	switch f.State {
	case "":
	case store.DeliveriesPending:
		q.where(`delivered = '' AND failed = FALSE`)
	case store.DeliveriesDelivered:
		q.where(`delivered <> ''`)
	case store.DeliveriesFailed:
		q.where(`failed = TRUE`)
	default:
		return nil, domain.Invalid("state", "unknown delivery state %q (want pending, delivered or failed)", f.State)
	}
	if f.After != nil {
		q.after("created", fmtTime(f.After.Time), "id", f.After.ID, true)
	}
	rows, err := s.db.QueryContext(ctx, q.sql(notifyDeliveryCols, "notify_deliveries", "created DESC, id DESC", f.Limit), q.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.NotifyDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
