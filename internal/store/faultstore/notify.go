package faultstore

import (
	"context"
	"time"

	"github.com/knib/knib/internal/store"
)

// CreateNotifyTarget is store.Store.CreateNotifyTarget (a write).
func (fs *Store) CreateNotifyTarget(ctx context.Context, t store.NotifyTarget) error {
	if err := fs.write("CreateNotifyTarget"); err != nil {
		return err
	}
	return fs.inner.CreateNotifyTarget(ctx, t)
}

// NotifyTarget is store.Store.NotifyTarget.
func (fs *Store) NotifyTarget(ctx context.Context, idOrName string) (store.NotifyTarget, error) {
	return fs.inner.NotifyTarget(ctx, idOrName)
}

// ListNotifyTargets is store.Store.ListNotifyTargets.
func (fs *Store) ListNotifyTargets(ctx context.Context) ([]store.NotifyTarget, error) {
	return fs.inner.ListNotifyTargets(ctx)
}

// RemoveNotifyTarget is store.Store.RemoveNotifyTarget (a write).
func (fs *Store) RemoveNotifyTarget(ctx context.Context, id string) error {
	if err := fs.write("RemoveNotifyTarget"); err != nil {
		return err
	}
	return fs.inner.RemoveNotifyTarget(ctx, id)
}

// CreateNotifyRule is store.Store.CreateNotifyRule (a write).
func (fs *Store) CreateNotifyRule(ctx context.Context, r store.NotifyRule) error {
	if err := fs.write("CreateNotifyRule"); err != nil {
		return err
	}
	return fs.inner.CreateNotifyRule(ctx, r)
}

// ListNotifyRules is store.Store.ListNotifyRules.
func (fs *Store) ListNotifyRules(ctx context.Context) ([]store.NotifyRule, error) {
	return fs.inner.ListNotifyRules(ctx)
}

// RemoveNotifyRule is store.Store.RemoveNotifyRule (a write).
func (fs *Store) RemoveNotifyRule(ctx context.Context, id string) error {
	if err := fs.write("RemoveNotifyRule"); err != nil {
		return err
	}
	return fs.inner.RemoveNotifyRule(ctx, id)
}

// ActiveConditions is store.Store.ActiveConditions.
func (fs *Store) ActiveConditions(ctx context.Context) ([]store.NotifyCondition, error) {
	return fs.inner.ActiveConditions(ctx)
}

// NotifyConditionsSince is store.Store.NotifyConditionsSince.
func (fs *Store) NotifyConditionsSince(ctx context.Context, since time.Time) ([]store.NotifyCondition, error) {
	return fs.inner.NotifyConditionsSince(ctx, since)
}

// FireCondition is store.Store.FireCondition (a write).
func (fs *Store) FireCondition(ctx context.Context, c store.NotifyCondition, ds []store.NotifyDelivery) (bool, error) {
	if err := fs.write("FireCondition"); err != nil {
		return false, err
	}
	return fs.inner.FireCondition(ctx, c, ds)
}

// ResolveCondition is store.Store.ResolveCondition (a write).
func (fs *Store) ResolveCondition(ctx context.Context, key string, at time.Time, ds []store.NotifyDelivery) (bool, error) {
	if err := fs.write("ResolveCondition"); err != nil {
		return false, err
	}
	return fs.inner.ResolveCondition(ctx, key, at, ds)
}

// EnqueueDelivery is store.Store.EnqueueDelivery (a write).
func (fs *Store) EnqueueDelivery(ctx context.Context, d store.NotifyDelivery) (bool, error) {
	if err := fs.write("EnqueueDelivery"); err != nil {
		return false, err
	}
	return fs.inner.EnqueueDelivery(ctx, d)
}

// ClaimDeliveries is store.Store.ClaimDeliveries (a write).
func (fs *Store) ClaimDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]store.NotifyDelivery, error) {
	if err := fs.write("ClaimDeliveries"); err != nil {
		return nil, err
	}
	return fs.inner.ClaimDeliveries(ctx, owner, now, leaseUntil, limit)
}

// FinishDelivery is store.Store.FinishDelivery (a write).
func (fs *Store) FinishDelivery(ctx context.Context, d store.NotifyDelivery, owner string) (bool, error) {
	if err := fs.write("FinishDelivery"); err != nil {
		return false, err
	}
	return fs.inner.FinishDelivery(ctx, d, owner)
}

// ListDeliveries is store.Store.ListDeliveries.
func (fs *Store) ListDeliveries(ctx context.Context, f store.NotifyDeliveryFilter) ([]store.NotifyDelivery, error) {
	return fs.inner.ListDeliveries(ctx, f)
}
