package accounts

import (
	"context"
	"errors"
	"fmt"

	"github.com/knib/knib/internal/auth"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// IssueToken creates a token for an account without checking the caller; the
// server uses it at first start. API callers use CreateToken.
func (s *Service) IssueToken(ctx context.Context, accountID string, role domain.Role, name string) (string, store.Token, error) {
	secret, hash := auth.NewToken()
	t := store.Token{ID: domain.NewID(), AccountID: accountID, Role: role, Name: name, Hash: hash, Created: s.k.Clock().Now()}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return "", t, err
	}
	return secret, t, nil
}

// Authenticate turns a bearer token into a principal.
func (s *Service) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	if err := auth.CheckForm(token); err != nil {
		return domain.Principal{}, fmt.Errorf("malformed API token: %w", domain.ErrUnauthorized)
	}
	t, err := s.store.TokenByHash(ctx, auth.Hash(token))
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Principal{}, fmt.Errorf("unknown API token: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return domain.Principal{}, err
	}
	acc, err := s.store.Account(ctx, t.AccountID)
	if err != nil {
		return domain.Principal{}, err
	}
	return domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: t.Role, TokenID: t.ID}, nil
}

// CreateAccount creates an account (admin).
func (s *Service) CreateAccount(ctx context.Context, p domain.Principal, name string) (domain.Account, error) {
	if err := p.RequireAdmin("creating accounts"); err != nil {
		return domain.Account{}, err
	}
	if err := domain.ValidateRef("name", name); err != nil {
		return domain.Account{}, err
	}
	// What the answer shows is what the catalogue holds: no limits.
	a := domain.Account{ID: domain.NewID(), Name: name, Created: s.k.Clock().Now(), Limits: domain.NoLimits}
	return a, s.store.CreateAccount(ctx, a)
}

// ListAccounts lists accounts (admin).
func (s *Service) ListAccounts(ctx context.Context, p domain.Principal) ([]domain.Account, error) {
	if err := p.RequireAdmin("listing accounts"); err != nil {
		return nil, err
	}
	return s.store.ListAccounts(ctx)
}

// CreateToken creates an API token for an account (admin).
func (s *Service) CreateToken(ctx context.Context, p domain.Principal, account, role, name string) (string, store.Token, error) {
	if err := p.RequireAdmin("creating tokens"); err != nil {
		return "", store.Token{}, err
	}
	r, err := domain.ParseRole(role)
	if err != nil {
		return "", store.Token{}, err
	}
	if err := domain.ValidateRef("account", account); err != nil {
		return "", store.Token{}, err
	}
	acc, err := s.store.Account(ctx, account)
	if err != nil {
		return "", store.Token{}, err
	}
	if name == "" {
		name = acc.Name + "-" + string(r)
	}
	if err := domain.ValidateRef("name", name); err != nil {
		return "", store.Token{}, err
	}
	return s.IssueToken(ctx, acc.ID, r, name)
}

// ListTokens lists API tokens (admin), of one account when account is
// given; never their secrets.
func (s *Service) ListTokens(ctx context.Context, p domain.Principal, account string) ([]store.Token, error) {
	if err := p.RequireAdmin("listing tokens"); err != nil {
		return nil, err
	}
	accountID := ""
	if account != "" {
		if err := domain.ValidateRef("account", account); err != nil {
			return nil, err
		}
		acc, err := s.store.Account(ctx, account)
		if err != nil {
			return nil, err
		}
		accountID = acc.ID
	}
	return s.store.ListTokens(ctx, accountID)
}

// RevokeToken deletes an API token (admin) and ends the console sessions
// started with it: it authenticates nobody from now on.
func (s *Service) RevokeToken(ctx context.Context, p domain.Principal, id string) error {
	if err := p.RequireAdmin("revoking tokens"); err != nil {
		return err
	}
	if err := domain.ValidateRef("id", id); err != nil {
		return err
	}
	if err := s.store.DeleteToken(ctx, id); err != nil {
		return err
	}
	s.k.Log().Info("token revoked", "token", id, "by", p.AccountName)
	return nil
}
