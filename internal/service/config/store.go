package config

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Account(ctx context.Context, idOrName string) (domain.Account, error)
	DeleteSetting(ctx context.Context, scope, scopeID, key string) error
	DeleteVMDetail(ctx context.Context, vmID, key string) error
	Host(ctx context.Context, idOrName string) (domain.Host, error)
	ListSettings(ctx context.Context) ([]store.Setting, error)
	SetSetting(ctx context.Context, s store.Setting) error
	SetVMDetail(ctx context.Context, vmID, key, value string) error
	VMDetails(ctx context.Context, vmID string) (map[string]string, error)
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
}
