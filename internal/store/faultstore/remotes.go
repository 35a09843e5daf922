package faultstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// CreateRemote is store.Store.CreateRemote (a write).
func (fs *Store) CreateRemote(ctx context.Context, r domain.Remote) error {
	if err := fs.write("CreateRemote"); err != nil {
		return err
	}
	return fs.inner.CreateRemote(ctx, r)
}

// Remote is store.Store.Remote.
func (fs *Store) Remote(ctx context.Context, idOrName string) (domain.Remote, error) {
	return fs.inner.Remote(ctx, idOrName)
}

// ListRemotes is store.Store.ListRemotes.
func (fs *Store) ListRemotes(ctx context.Context) ([]domain.Remote, error) {
	return fs.inner.ListRemotes(ctx)
}

// SetRemoteCheck is store.Store.SetRemoteCheck (a write).
func (fs *Store) SetRemoteCheck(ctx context.Context, id, verdict string, at time.Time) error {
	if err := fs.write("SetRemoteCheck"); err != nil {
		return err
	}
	return fs.inner.SetRemoteCheck(ctx, id, verdict, at)
}

// DeleteRemote is store.Store.DeleteRemote (a write).
func (fs *Store) DeleteRemote(ctx context.Context, id string) error {
	if err := fs.write("DeleteRemote"); err != nil {
		return err
	}
	return fs.inner.DeleteRemote(ctx, id)
}

// SetCopyPolicy is store.Store.SetCopyPolicy (a write).
func (fs *Store) SetCopyPolicy(ctx context.Context, p domain.CopyPolicy) error {
	if err := fs.write("SetCopyPolicy"); err != nil {
		return err
	}
	return fs.inner.SetCopyPolicy(ctx, p)
}

// CopyPolicy is store.Store.CopyPolicy.
func (fs *Store) CopyPolicy(ctx context.Context, offeringID string) (domain.CopyPolicy, error) {
	return fs.inner.CopyPolicy(ctx, offeringID)
}

// CopyPolicies is store.Store.CopyPolicies.
func (fs *Store) CopyPolicies(ctx context.Context) ([]domain.CopyPolicy, error) {
	return fs.inner.CopyPolicies(ctx)
}

// AdvanceCopyPolicy is store.Store.AdvanceCopyPolicy (a write).
func (fs *Store) AdvanceCopyPolicy(ctx context.Context, offeringID string, prev, next time.Time) (bool, error) {
	if err := fs.write("AdvanceCopyPolicy"); err != nil {
		return false, err
	}
	return fs.inner.AdvanceCopyPolicy(ctx, offeringID, prev, next)
}

// CreateCopy is store.Store.CreateCopy (a write).
func (fs *Store) CreateCopy(ctx context.Context, c domain.BackupCopy) error {
	if err := fs.write("CreateCopy"); err != nil {
		return err
	}
	return fs.inner.CreateCopy(ctx, c)
}

// Copy is store.Store.Copy.
func (fs *Store) Copy(ctx context.Context, id string) (domain.BackupCopy, error) {
	return fs.inner.Copy(ctx, id)
}

// Copies is store.Store.Copies.
func (fs *Store) Copies(ctx context.Context, f store.CopyFilter) ([]domain.BackupCopy, error) {
	return fs.inner.Copies(ctx, f)
}

// SaveCopy is store.Store.SaveCopy (a write).
func (fs *Store) SaveCopy(ctx context.Context, c domain.BackupCopy) error {
	if err := fs.write("SaveCopy"); err != nil {
		return err
	}
	return fs.inner.SaveCopy(ctx, c)
}

// DeleteCopy is store.Store.DeleteCopy (a write).
func (fs *Store) DeleteCopy(ctx context.Context, id string) error {
	if err := fs.write("DeleteCopy"); err != nil {
		return err
	}
	return fs.inner.DeleteCopy(ctx, id)
}

// ImportVM is store.Store.ImportVM (a write).
func (fs *Store) ImportVM(ctx context.Context, vm domain.VM) (bool, error) {
	if err := fs.write("ImportVM"); err != nil {
		return false, err
	}
	return fs.inner.ImportVM(ctx, vm)
}
