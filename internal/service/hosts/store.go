package hosts

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	CreateJoinToken(ctx context.Context, t store.JoinToken) error
	EnsureZone(ctx context.Context, name string) (domain.Zone, error)
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	HostAgent(ctx context.Context, hostID string) (store.HostAgent, error)
	InitCA(ctx context.Context, certPEM, keyPEM string, at time.Time) (cert, key string, err error)
	JoinToken(ctx context.Context, id string) (store.JoinToken, error)
	ListHostAgents(ctx context.Context) ([]store.HostAgent, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	ListJoinTokens(ctx context.Context) ([]store.JoinToken, error)
	ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error)
	RevokeHostIdentity(ctx context.Context, hostID string) error
	RevokeJoinToken(ctx context.Context, id string) error
	SetHostAgentURL(ctx context.Context, hostID, url string) error
	SetHostConnection(ctx context.Context, hostID, state string, at time.Time) error
	SetHostEnabled(ctx context.Context, hostID string, enabled bool) error
	SetHostIdentity(ctx context.Context, hostID, serial, url string, at time.Time) error
	UpsertHost(ctx context.Context, h domain.Host) (domain.Host, error)
	UseJoinToken(ctx context.Context, id, hash, host string, now time.Time) (bool, error)
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
}
