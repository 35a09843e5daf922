package accounts

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	Account(ctx context.Context, idOrName string) (domain.Account, error)
	AccountPassword(ctx context.Context, idOrName string) (string, error)
	CreateSession(ctx context.Context, s store.Session) error
	DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error)
	DeleteSession(ctx context.Context, hash string) error
	DeleteSessions(ctx context.Context, accountID string) error
	SessionByHash(ctx context.Context, hash string) (store.Session, error)
	SetAccountPassword(ctx context.Context, id, hash string) error
	TouchSession(ctx context.Context, hash string, at time.Time) error
	CreateAccount(ctx context.Context, a domain.Account) error
	CreateToken(ctx context.Context, t store.Token) error
	DeleteToken(ctx context.Context, id string) error
	ListTokens(ctx context.Context, accountID string) ([]store.Token, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error)
	ListAccounts(ctx context.Context) ([]domain.Account, error)
	ListVMs(ctx context.Context, f store.VMFilter) ([]domain.VM, error)
	SetAccountLimits(ctx context.Context, id string, l domain.Limits) error
	TokenByHash(ctx context.Context, hash string) (store.Token, error)
	VM(ctx context.Context, idOrName string) (domain.VM, error)
}
