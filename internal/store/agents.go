package store

import (
	"context"
	"time"
)

// JoinToken is a stored one-time join token (hash only).
type JoinToken struct {
	ID      string
	Hash    string
	ZoneID  string
	Created time.Time
	Expires time.Time
	Used    time.Time // zero while unused
	UsedBy  string    // host name that joined with it
	Revoked bool
}

// Connection states of a remote host's agent.
const (
	AgentConnected    = "Connected"
	AgentDisconnected = "Disconnected"
	AgentRecovering   = "Recovering"
)

// HostAgent is a remote host's agent identity and connection.
type HostAgent struct {
	HostID     string
	URL        string // where the agent serves (https://...)
	CertSerial string // serial of the only certificate accepted for the host
	Revoked    bool
	Connection string // AgentConnected, AgentDisconnected, AgentRecovering, "" before the first contact
	Since      time.Time
}

// AgentStore persists the remote-agent PKI, join tokens and host identities.
type AgentStore interface {
	// InitCA stores a CA unless one exists, and returns the stored one: the
	// first server to start wins, the others use its CA.
	InitCA(ctx context.Context, certPEM, keyPEM string, at time.Time) (cert, key string, err error)

	CreateJoinToken(ctx context.Context, t JoinToken) error
	JoinToken(ctx context.Context, id string) (JoinToken, error)
	ListJoinTokens(ctx context.Context) ([]JoinToken, error)
	// UseJoinToken marks the token used by host at now with one conditional
	// update; false when it is unknown, used, revoked, expired or its hash
	// differs (a replay loses).
	UseJoinToken(ctx context.Context, id, hash, host string, now time.Time) (bool, error)
	// RevokeJoinToken revokes an unused token; ErrNotFound when absent.
	RevokeJoinToken(ctx context.Context, id string) error

	// SetHostIdentity records a new certificate for the host (clearing a
	// revocation) and where its agent serves.
	SetHostIdentity(ctx context.Context, hostID, serial, url string, at time.Time) error
	// SetHostAgentURL records where the host's agent serves.
	SetHostAgentURL(ctx context.Context, hostID, url string) error
	// HostAgent returns a host's agent record; ErrNotFound for hosts that
	// never joined (the in-process agent).
	HostAgent(ctx context.Context, hostID string) (HostAgent, error)
	ListHostAgents(ctx context.Context) ([]HostAgent, error)
	RevokeHostIdentity(ctx context.Context, hostID string) error
	SetHostConnection(ctx context.Context, hostID, state string, at time.Time) error
	SetHostEnabled(ctx context.Context, hostID string, enabled bool) error
}
