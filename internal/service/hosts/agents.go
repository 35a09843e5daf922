package hosts

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/pki"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// Remote agents: the installation CA, join tokens, agent identities, host
// maintenance and the connection states the server's connection manager
// drives.

// AgentCertTTL is how long an agent certificate is valid.
const AgentCertTTL = 5 * 365 * 24 * time.Hour

// MaxJoinTokenTTL bounds a join token's life.
const MaxJoinTokenTTL = 7 * 24 * time.Hour

// InitCA loads the installation's CA, creating it at the very first start;
// several servers on one database share the first one's.
func (s *Service) InitCA(ctx context.Context) (*pki.CA, error) {
	fresh, err := pki.NewCA(s.k.Clock().Now())
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := s.store.InitCA(ctx, string(fresh.CertPEM), string(fresh.KeyPEM), s.k.Clock().Now())
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return nil, fmt.Errorf("stored CA: %w", err)
	}
	s.caMu.Lock()
	s.caVal = ca
	s.caMu.Unlock()
	return ca, nil
}

func (s *Service) ca() (*pki.CA, error) {
	s.caMu.Lock()
	defer s.caMu.Unlock()
	if s.caVal == nil {
		return nil, fmt.Errorf("the certificate authority is not loaded: %w", domain.ErrUnavailable)
	}
	return s.caVal, nil
}

// CreateJoinToken issues a one-time join token for a zone (admin). Only its
// hash is stored; the text is returned once.
func (s *Service) CreateJoinToken(ctx context.Context, p domain.Principal, zone string, ttl time.Duration) (string, store.JoinToken, error) {
	if err := p.RequireAdmin("creating join tokens"); err != nil {
		return "", store.JoinToken{}, err
	}
	if err := domain.ValidateRef("zone", zone); err != nil {
		return "", store.JoinToken{}, err
	}
	if ttl <= 0 || ttl > MaxJoinTokenTTL {
		return "", store.JoinToken{}, domain.Invalid("ttl", "must be more than 0 and at most %s", MaxJoinTokenTTL)
	}
	ca, err := s.ca()
	if err != nil {
		return "", store.JoinToken{}, err
	}
	// A token never creates its zone: a typo would otherwise make a zone
	// without storage, and its host would take no backups.
	z, err := s.store.Zone(ctx, zone)
	if errors.Is(err, domain.ErrNotFound) {
		return "", store.JoinToken{}, domain.Invalid("zone", "zone %q does not exist (create it first with knib zone create)", zone)
	}
	if err != nil {
		return "", store.JoinToken{}, err
	}
	tok, err := pki.NewJoinToken(ca.Pin())
	if err != nil {
		return "", store.JoinToken{}, err
	}
	now := s.k.Clock().Now()
	jt := store.JoinToken{ID: tok.ID, Hash: tok.Hash(), ZoneID: z.ID, Created: now, Expires: now.Add(ttl)}
	if err := s.store.CreateJoinToken(ctx, jt); err != nil {
		return "", jt, err
	}
	s.k.Log().Info("join token created", "id", jt.ID, "zone", z.Name, "expires", jt.Expires)
	return tok.String(), jt, nil
}

// ListJoinTokens lists join tokens (admin), hashes only.
func (s *Service) ListJoinTokens(ctx context.Context, p domain.Principal) ([]store.JoinToken, error) {
	if err := p.RequireAdmin("listing join tokens"); err != nil {
		return nil, err
	}
	return s.store.ListJoinTokens(ctx)
}

// RevokeJoinToken revokes a join token by id (admin).
func (s *Service) RevokeJoinToken(ctx context.Context, p domain.Principal, id string) (store.JoinToken, error) {
	if err := p.RequireAdmin("revoking join tokens"); err != nil {
		return store.JoinToken{}, err
	}
	if err := domain.ValidateRef("id", id); err != nil {
		return store.JoinToken{}, err
	}
	if err := s.store.RevokeJoinToken(ctx, id); err != nil {
		return store.JoinToken{}, err
	}
	return s.store.JoinToken(ctx, id)
}

// JoinRequest is what a new agent sends, inside TLS, after it pinned the CA.
type JoinRequest struct {
	Token  string
	CSR    []byte // PEM; the key never leaves the host
	Name   string
	URL    string // where the agent serves (https://host:port)
	Report agentapi.HostReport
}

// JoinResult is the agent's identity.
type JoinResult struct {
	HostID  string
	CertPEM []byte
	CAPEM   []byte
}

// ValidateAgentURL checks an agent's listen URL: https://host:port, nothing else.
func ValidateAgentURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return domain.Invalid("url", "want https://host:port, got %q", raw)
	}
	return nil
}

// JoinAgent checks a join token, records the host in the token's zone and
// signs the agent's certificate. The token is spent by one conditional
// update, so of two joins with one token (a replay) exactly one wins.
// Refusals wrap domain.ErrForbidden with the reason.
func (s *Service) JoinAgent(ctx context.Context, req JoinRequest) (JoinResult, error) {
	tok, err := pki.ParseJoinToken(req.Token)
	if err != nil {
		return JoinResult{}, fmt.Errorf("%v: %w", err, domain.ErrForbidden)
	}
	if err := domain.ValidateRef("name", req.Name); err != nil {
		return JoinResult{}, err
	}
	if err := ValidateAgentURL(req.URL); err != nil {
		return JoinResult{}, err
	}
	ca, err := s.ca()
	if err != nil {
		return JoinResult{}, err
	}
	if tok.Pin != ca.Pin() {
		return JoinResult{}, fmt.Errorf("join token is for another installation (CA hash differs): %w", domain.ErrForbidden)
	}
	now := s.k.Clock().Now()
	if why := s.joinRefusal(ctx, tok, now); why != "" {
		return JoinResult{}, fmt.Errorf("%s: %w", why, domain.ErrForbidden)
	}
	if h, err := s.store.Host(ctx, req.Name); err == nil && h.Local {
		return JoinResult{}, fmt.Errorf("host name %q belongs to the server's in-process agent: %w", req.Name, domain.ErrConflict)
	}
	iss, err := ca.SignCSR(req.CSR, req.Name, now, AgentCertTTL)
	if err != nil {
		return JoinResult{}, domain.Invalid("csr", "%v", err)
	}
	won, err := s.store.UseJoinToken(ctx, tok.ID, tok.Hash(), req.Name, now)
	if err != nil {
		return JoinResult{}, err
	}
	if !won {
		why := s.joinRefusal(ctx, tok, now)
		if why == "" {
			why = "join token already used"
		}
		return JoinResult{}, fmt.Errorf("%s: %w", why, domain.ErrForbidden)
	}
	jt, err := s.store.JoinToken(ctx, tok.ID)
	if err != nil {
		return JoinResult{}, err
	}
	rep := req.Report
	rep.Name = req.Name
	h, err := s.store.UpsertHost(ctx, kernel.HostFromReport(rep, jt.ZoneID, false, now))
	if err != nil {
		return JoinResult{}, err
	}
	if err := s.store.SetHostIdentity(ctx, h.ID, iss.Serial, strings.TrimSuffix(req.URL, "/"), now); err != nil {
		return JoinResult{}, err
	}
	// A re-join replaces the identity: the old connection goes.
	s.DropAgent(ctx, h.ID, "", "identity replaced by a new join")
	s.k.Log().Info("agent joined", "host", h.Name, "zone", s.k.ZoneName(ctx, jt.ZoneID), "url", req.URL, "serial", iss.Serial)
	return JoinResult{HostID: h.ID, CertPEM: iss.CertPEM, CAPEM: ca.CertPEM}, nil
}

// joinRefusal says why a token cannot be used ("" when it can).
func (s *Service) joinRefusal(ctx context.Context, tok pki.JoinToken, now time.Time) string {
	jt, err := s.store.JoinToken(ctx, tok.ID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return "unknown join token"
	case err != nil:
		return "join token cannot be checked now"
	case !tok.Matches(jt.Hash):
		return "unknown join token"
	case jt.Revoked:
		return "join token revoked"
	case !jt.Used.IsZero():
		return "join token already used"
	case !now.Before(jt.Expires):
		return "join token expired"
	}
	return ""
}

// AgentHello records where a joined agent serves. leaf is its client
// certificate, already verified to chain to the CA with the agent role; it
// must be the host's current, unrevoked identity.
func (s *Service) AgentHello(ctx context.Context, leaf *x509.Certificate, agentURL string, rep agentapi.HostReport) (domain.Host, error) {
	if err := ValidateAgentURL(agentURL); err != nil {
		return domain.Host{}, err
	}
	name := leaf.Subject.CommonName
	h, err := s.store.Host(ctx, name)
	if errors.Is(err, domain.ErrNotFound) {
		return h, fmt.Errorf("host %q is unknown (removed?): join again with a new token: %w", name, domain.ErrForbidden)
	} else if err != nil {
		return h, err
	}
	ha, err := s.store.HostAgent(ctx, h.ID)
	if errors.Is(err, domain.ErrNotFound) || h.Local {
		return h, fmt.Errorf("host %q has no remote agent identity: join with a token: %w", name, domain.ErrForbidden)
	} else if err != nil {
		return h, err
	}
	if ha.Revoked {
		return h, fmt.Errorf("agent identity revoked: join again with a new token: %w", domain.ErrForbidden)
	}
	if pki.SerialOf(leaf) != ha.CertSerial {
		return h, fmt.Errorf("agent certificate was replaced by a newer join of host %q: %w", name, domain.ErrForbidden)
	}
	if err := s.store.SetHostAgentURL(ctx, h.ID, strings.TrimSuffix(agentURL, "/")); err != nil {
		return h, err
	}
	s.k.Log().Info("agent hello", "host", h.Name, "url", agentURL)
	return h, nil
}

// RemoteHost is a joined host with its agent record.
type RemoteHost struct {
	Host  domain.Host
	Agent store.HostAgent
}

// RemoteHosts lists hosts with a remote agent identity that is not revoked
// and an agent URL.
func (s *Service) RemoteHosts(ctx context.Context) ([]RemoteHost, error) {
	list, err := s.store.ListHostAgents(ctx)
	if err != nil {
		return nil, err
	}
	var out []RemoteHost
	for _, a := range list {
		if a.Revoked || a.URL == "" {
			continue
		}
		h, err := s.store.Host(ctx, a.HostID)
		if err != nil {
			continue
		}
		out = append(out, RemoteHost{Host: h, Agent: a})
	}
	return out, nil
}

// AgentUp brings a reachable remote agent into service: left-over
// validation VMs are removed, the host's inventory is read and interrupted
// work is recovered (the same recovery as for the in-process agent) while
// the host takes no new work; only then is it open for new work.
func (s *Service) AgentUp(ctx context.Context, hostID string, a agentapi.Agent) error {
	now := s.k.Clock().Now()
	if err := s.store.SetHostConnection(ctx, hostID, store.AgentRecovering, now); err != nil {
		return fmt.Errorf("agent of host %s: record Recovering: %w", s.k.HostName(ctx, hostID), err)
	}
	s.k.Gate(hostID)
	s.k.SetAgent(hostID, a)
	ungate := func() { s.k.Ungate(hostID) }
	s.jobs.CleanupValidations(ctx, a)
	admin, err := s.k.EnsureAdmin(ctx)
	if err == nil {
		err = s.k.SyncHost(ctx, hostID, a, admin.ID)
	}
	if err != nil {
		s.k.RemoveAgent(hostID)
		ungate()
		err = fmt.Errorf("agent of host %s: %w", s.k.HostName(ctx, hostID), err)
		if werr := s.store.SetHostConnection(ctx, hostID, store.AgentDisconnected, s.k.Clock().Now()); werr != nil {
			return errors.Join(err, fmt.Errorf("record Disconnected: %w", werr))
		}
		return err
	}
	s.recovery.Reconcile(ctx)
	ungate()
	s.k.Log().Info("agent connected", "host", s.k.HostName(ctx, hostID))
	return s.store.SetHostConnection(ctx, hostID, store.AgentConnected, s.k.Clock().Now())
}

// AgentSeen records a successful heartbeat of a connected agent.
func (s *Service) AgentSeen(ctx context.Context, hostID string, rep agentapi.HostReport) error {
	h, err := s.store.Host(ctx, hostID)
	if err != nil {
		return err
	}
	rep.Name = h.Name
	_, err = s.store.UpsertHost(ctx, kernel.HostFromReport(rep, h.ZoneID, false, s.k.Clock().Now()))
	return err
}

// DropAgent takes a host's agent out of service: commands to it fail with
// ErrUnavailable and no job is placed on it. state, when not empty, is
// recorded as the host's connection state.
func (s *Service) DropAgent(ctx context.Context, hostID, state, why string) {
	had := s.k.RemoveAgent(hostID)
	if state != "" {
		if err := s.store.SetHostConnection(ctx, hostID, state, s.k.Clock().Now()); err != nil {
			s.k.Log().Warn("record the agent's connection state; the next heartbeat does", "host", hostID, "state", state, "err", err)
		}
	}
	if had {
		s.k.Log().Warn("agent out of service", "host", s.k.HostName(ctx, hostID), "why", why)
	}
}

// SetHostEnabled enables or disables a host for new work (admin). A
// disabled host keeps its agent for inventory and recovery.
func (s *Service) SetHostEnabled(ctx context.Context, p domain.Principal, ref string, enabled bool) (domain.Host, error) {
	what := map[bool]string{true: "enabling hosts", false: "disabling hosts"}[enabled]
	if err := p.RequireAdmin(what); err != nil {
		return domain.Host{}, err
	}
	if err := domain.ValidateRef("host", ref); err != nil {
		return domain.Host{}, err
	}
	h, err := s.store.Host(ctx, ref)
	if err != nil {
		return h, err
	}
	if err := s.store.SetHostEnabled(ctx, h.ID, enabled); err != nil {
		return h, err
	}
	s.k.Log().Info("host maintenance", "host", h.Name, "enabled", enabled)
	return s.store.Host(ctx, h.ID)
}

// RevokeHost invalidates a remote host's agent identity (admin): its
// certificate is refused from now on and the agent must join again.
func (s *Service) RevokeHost(ctx context.Context, p domain.Principal, ref string) (domain.Host, error) {
	if err := p.RequireAdmin("revoking host identities"); err != nil {
		return domain.Host{}, err
	}
	if err := domain.ValidateRef("host", ref); err != nil {
		return domain.Host{}, err
	}
	h, err := s.store.Host(ctx, ref)
	if err != nil {
		return h, err
	}
	if h.Local {
		return h, fmt.Errorf("host %s is the server's in-process agent; it has no identity to revoke: %w", h.Name, domain.ErrConflict)
	}
	if err := s.store.RevokeHostIdentity(ctx, h.ID); err != nil {
		return h, err
	}
	s.DropAgent(ctx, h.ID, store.AgentDisconnected, "identity revoked")
	return h, nil
}

// Host returns one host (admin).
func (s *Service) Host(ctx context.Context, p domain.Principal, ref string) (domain.Host, error) {
	if err := p.RequireAdmin("showing hosts"); err != nil {
		return domain.Host{}, err
	}
	if err := domain.ValidateRef("host", ref); err != nil {
		return domain.Host{}, err
	}
	return s.store.Host(ctx, ref)
}
