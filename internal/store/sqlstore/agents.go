package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/knib/knib/internal/store"
)

// InitCA stores the CA unless one exists and returns the stored one.
func (s *DB) InitCA(ctx context.Context, certPEM, keyPEM string, at time.Time) (string, string, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO pki_ca(id, cert_pem, key_pem, created) VALUES ('ca', $1, $2, $3) ON CONFLICT (id) DO NOTHING`,
		certPEM, keyPEM, fmtTime(at)); err != nil {
		return "", "", fmt.Errorf("store CA: %w", err)
	}
	var c, k string
	err := s.db.QueryRowContext(ctx, `SELECT cert_pem, key_pem FROM pki_ca WHERE id = 'ca'`).Scan(&c, &k)
	return c, k, err
}

const joinTokenCols = `id, hash, zone_id, created, expires, used, used_by, revoked`

func scanJoinToken(r scanner) (store.JoinToken, error) {
	var t store.JoinToken
	var created, expires, used string
	err := r.Scan(&t.ID, &t.Hash, &t.ZoneID, &created, &expires, &used, &t.UsedBy, &t.Revoked)
	t.Created, t.Expires, t.Used = parseTime(created), parseTime(expires), parseTime(used)
	return t, err
}

// CreateJoinToken stores a join token.
func (s *DB) CreateJoinToken(ctx context.Context, t store.JoinToken) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO join_tokens(id, hash, zone_id, created, expires) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.Hash, t.ZoneID, fmtTime(t.Created), fmtTime(t.Expires))
	if err != nil {
		return fmt.Errorf("create join token: %w", err)
	}
	return nil
}

// JoinToken finds a join token by id.
func (s *DB) JoinToken(ctx context.Context, id string) (store.JoinToken, error) {
	t, err := scanJoinToken(s.db.QueryRowContext(ctx, `SELECT `+joinTokenCols+` FROM join_tokens WHERE id = $1`, id))
	if noRows(err) {
		return t, notFound("join token", id)
	}
	return t, err
}

// ListJoinTokens lists join tokens, newest first.
func (s *DB) ListJoinTokens(ctx context.Context) ([]store.JoinToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+joinTokenCols+` FROM join_tokens ORDER BY created DESC, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.JoinToken
	for rows.Next() {
		t, err := scanJoinToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// UseJoinToken marks an unused, unrevoked, unexpired token used: one
// conditional update, so of two concurrent joins exactly one wins.
func (s *DB) UseJoinToken(ctx context.Context, id, hash, host string, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE join_tokens SET used = $1, used_by = $2
WHERE id = $3 AND hash = $4 AND used = '' AND revoked = FALSE AND expires > $1`, fmtTime(now), host, id, hash)
	if err != nil {
		return false, fmt.Errorf("use join token: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// RevokeJoinToken revokes a token.
func (s *DB) RevokeJoinToken(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE join_tokens SET revoked = TRUE WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("join token", id)
	}
	return nil
}

// SetHostIdentity records the host's new certificate serial and agent URL.
func (s *DB) SetHostIdentity(ctx context.Context, hostID, serial, url string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO host_agents(host_id, agent_url, cert_serial, revoked, connection, since) VALUES ($1, $2, $3, FALSE, '', $4)
ON CONFLICT (host_id) DO UPDATE SET agent_url = excluded.agent_url, cert_serial = excluded.cert_serial, revoked = FALSE`,
		hostID, url, serial, fmtTime(at))
	if err != nil {
		return fmt.Errorf("record host identity: %w", err)
	}
	return nil
}

func (s *DB) updateHostAgent(ctx context.Context, hostID, set string, args ...any) error {
	res, err := s.db.ExecContext(ctx, `UPDATE host_agents SET `+set+` WHERE host_id = $1`, append([]any{hostID}, args...)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("host agent", hostID)
	}
	return nil
}

// SetHostAgentURL records where the agent serves.
func (s *DB) SetHostAgentURL(ctx context.Context, hostID, url string) error {
	return s.updateHostAgent(ctx, hostID, `agent_url = $2`, url)
}

// RevokeHostIdentity revokes the host's certificate.
func (s *DB) RevokeHostIdentity(ctx context.Context, hostID string) error {
	return s.updateHostAgent(ctx, hostID, `revoked = TRUE`)
}

// SetHostConnection records whether the server reaches the host's agent.
func (s *DB) SetHostConnection(ctx context.Context, hostID, state string, at time.Time) error {
	return s.updateHostAgent(ctx, hostID, `connection = $2, since = $3`, state, fmtTime(at))
}

const hostAgentCols = `host_id, agent_url, cert_serial, revoked, connection, since`

func scanHostAgent(r scanner) (store.HostAgent, error) {
	var a store.HostAgent
	var since string
	err := r.Scan(&a.HostID, &a.URL, &a.CertSerial, &a.Revoked, &a.Connection, &since)
	a.Since = parseTime(since)
	return a, err
}

// HostAgent returns a host's agent record.
func (s *DB) HostAgent(ctx context.Context, hostID string) (store.HostAgent, error) {
	a, err := scanHostAgent(s.db.QueryRowContext(ctx, `SELECT `+hostAgentCols+` FROM host_agents WHERE host_id = $1`, hostID))
	if noRows(err) {
		return a, notFound("host agent", hostID)
	}
	return a, err
}

// ListHostAgents lists every remote host's agent record.
func (s *DB) ListHostAgents(ctx context.Context) ([]store.HostAgent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+hostAgentCols+` FROM host_agents ORDER BY host_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.HostAgent
	for rows.Next() {
		a, err := scanHostAgent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetHostEnabled enables or disables a host (maintenance).
func (s *DB) SetHostEnabled(ctx context.Context, hostID string, enabled bool) error {
	res, err := s.db.ExecContext(ctx, `UPDATE hosts SET enabled = $2 WHERE id = $1`, hostID, enabled)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("host", hostID)
	}
	return nil
}

var _ store.AgentStore = (*DB)(nil)
