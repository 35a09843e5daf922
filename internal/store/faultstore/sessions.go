package faultstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/store"
)

// SetAccountPassword is store.Store.SetAccountPassword (a write: it may be made to fail).
func (fs *Store) SetAccountPassword(ctx context.Context, id, hash string) error {
	if err := fs.write("SetAccountPassword"); err != nil {
		return err
	}
	return fs.inner.SetAccountPassword(ctx, id, hash)
}

// AccountPassword is store.Store.AccountPassword.
func (fs *Store) AccountPassword(ctx context.Context, idOrName string) (string, error) {
	return fs.inner.AccountPassword(ctx, idOrName)
}

// CreateSession is store.Store.CreateSession (a write: it may be made to fail).
func (fs *Store) CreateSession(ctx context.Context, s store.Session) error {
	if err := fs.write("CreateSession"); err != nil {
		return err
	}
	return fs.inner.CreateSession(ctx, s)
}

// SessionByHash is store.Store.SessionByHash.
func (fs *Store) SessionByHash(ctx context.Context, hash string) (store.Session, error) {
	return fs.inner.SessionByHash(ctx, hash)
}

// TouchSession is store.Store.TouchSession (a write: it may be made to fail).
func (fs *Store) TouchSession(ctx context.Context, hash string, at time.Time) error {
	if err := fs.write("TouchSession"); err != nil {
		return err
	}
	return fs.inner.TouchSession(ctx, hash, at)
}

// DeleteSession is store.Store.DeleteSession (a write: it may be made to fail).
func (fs *Store) DeleteSession(ctx context.Context, hash string) error {
	if err := fs.write("DeleteSession"); err != nil {
		return err
	}
	return fs.inner.DeleteSession(ctx, hash)
}

// DeleteSessions is store.Store.DeleteSessions (a write: it may be made to fail).
func (fs *Store) DeleteSessions(ctx context.Context, accountID string) error {
	if err := fs.write("DeleteSessions"); err != nil {
		return err
	}
	return fs.inner.DeleteSessions(ctx, accountID)
}

// DeleteExpiredSessions is store.Store.DeleteExpiredSessions (a write: it may be made to fail).
func (fs *Store) DeleteExpiredSessions(ctx context.Context, now, idleBefore time.Time) (int, error) {
	if err := fs.write("DeleteExpiredSessions"); err != nil {
		return 0, err
	}
	return fs.inner.DeleteExpiredSessions(ctx, now, idleBefore)
}

// ListTokens is store.Store.ListTokens.
func (fs *Store) ListTokens(ctx context.Context, accountID string) ([]store.Token, error) {
	return fs.inner.ListTokens(ctx, accountID)
}

// DeleteToken is store.Store.DeleteToken (a write: it may be made to fail).
func (fs *Store) DeleteToken(ctx context.Context, id string) error {
	if err := fs.write("DeleteToken"); err != nil {
		return err
	}
	return fs.inner.DeleteToken(ctx, id)
}
