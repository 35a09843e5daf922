package sqlstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// SetAccountPassword stores an account's password hash.
func (s *DB) SetAccountPassword(ctx context.Context, id, hash string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET password_hash = $2 WHERE id = $1`, id, hash)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("account", id)
	}
	return nil
}

// AccountPassword returns an account's password hash.
func (s *DB) AccountPassword(ctx context.Context, ref string) (string, error) {
	var hash string
	err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM accounts WHERE id = $1 OR name = $1 ORDER BY (id = $1) DESC LIMIT 1`, ref).Scan(&hash)
	if noRows(err) {
		return "", notFound("account", ref)
	}
	return hash, err
}

// CreateSession inserts a console session.
func (s *DB) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions(hash, account_id, role, token_id, created, last_seen, expires) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		se.Hash, se.AccountID, string(se.Role), se.TokenID, fmtTime(se.Created), fmtTime(se.LastSeen), fmtTime(se.Expires))
	return err
}

// SessionByHash finds a session by the hash of its secret.
func (s *DB) SessionByHash(ctx context.Context, hash string) (store.Session, error) {
	se := store.Session{Hash: hash}
	var role, created, seen, expires string
	err := s.db.QueryRowContext(ctx, `SELECT account_id, role, token_id, created, last_seen, expires FROM sessions WHERE hash = $1`, hash).
		Scan(&se.AccountID, &role, &se.TokenID, &created, &seen, &expires)
	if noRows(err) {
		return se, notFound("session", "")
	}
	se.Role, se.Created, se.LastSeen, se.Expires = domain.Role(role), parseTime(created), parseTime(seen), parseTime(expires)
	return se, err
}

// TouchSession sets a session's last use.
func (s *DB) TouchSession(ctx context.Context, hash string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen = $2 WHERE hash = $1`, hash, fmtTime(at))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("session", "")
	}
	return nil
}

// DeleteSession removes a session.
func (s *DB) DeleteSession(ctx context.Context, hash string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE hash = $1`, hash)
	return err
}

// DeleteSessions removes every session of an account.
func (s *DB) DeleteSessions(ctx context.Context, accountID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = $1`, accountID)
	return err
}

// DeleteExpiredSessions removes the sessions past their end or idle.
func (s *DB) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires < $1 OR last_seen < $2`, fmtTime(now), fmtTime(idleBefore))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
