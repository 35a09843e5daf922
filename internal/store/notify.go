package store

import (
	"context"
	"time"
)

// Kinds of notification target.
const (
	NotifyWebhook = "webhook"
	NotifySMTP    = "smtp"
)

// NotifyTarget is where notifications go: a webhook (URL, HMAC secret) or
// an SMTP server (Addr, From, To, optional User and password). Secret is
// the webhook's HMAC key or the SMTP password; it is stored in the
// catalogue and never shown by a list.
type NotifyTarget struct {
	ID, Name string
	Kind     string // NotifyWebhook or NotifySMTP
	URL      string // webhook
	Secret   string
	Addr     string // smtp host:port
	From     string
	To       []string
	User     string
	StartTLS string // "required" (default) or "none"
	Created  time.Time
}

// NotifyRule sends the events of the listed kinds (all when empty) of a
// zone and an account (any when empty) to a target, at once or in a daily
// digest.
type NotifyRule struct {
	ID        string
	TargetID  string
	Events    []string
	ZoneID    string
	AccountID string
	Digest    bool
	Created   time.Time
}

// NotifyCondition is one condition the evaluator found active, keyed by
// what it is about ("vm.error/<vmID>"). A key is fired once and resolved
// once per episode; a condition that comes back after it was resolved
// starts a new episode.
type NotifyCondition struct {
	Key       string
	Kind      string
	ZoneID    string
	AccountID string
	Summary   string
	FirstSeen time.Time
	Resolved  time.Time // zero while active
	Episode   int
}

// Delivery events.
const (
	DeliveryFiring   = "firing"
	DeliveryResolved = "resolved"
	DeliveryDigest   = "digest"
	DeliveryTest     = "test"
)

// NotifyDelivery is one message to one target, in the outbox until it is
// delivered or has failed for good.
type NotifyDelivery struct {
	ID           string
	TargetID     string
	ConditionKey string // "" for a digest
	Event        string // DeliveryFiring, DeliveryResolved, DeliveryDigest
	Payload      string // JSON
	Attempts     int
	NextAttempt  time.Time
	LastError    string
	Delivered    time.Time // zero until delivered
	Failed       bool      // gave up after the last attempt
	Created      time.Time
}

// Delivery states for NotifyDeliveryFilter.
const (
	DeliveriesPending   = "pending"
	DeliveriesDelivered = "delivered"
	DeliveriesFailed    = "failed"
)

// NotifyDeliveryFilter selects deliveries, newest first.
type NotifyDeliveryFilter struct {
	State string // "" for all, else one of the Deliveries* states
	Page
}

// NotifyStore persists notification targets, rules, conditions and the
// delivery outbox.
type NotifyStore interface {
	// CreateNotifyTarget stores a target; ErrConflict when its name is taken.
	CreateNotifyTarget(ctx context.Context, t NotifyTarget) error
	// NotifyTarget finds a target by id or name; ErrNotFound when absent.
	NotifyTarget(ctx context.Context, idOrName string) (NotifyTarget, error)
	ListNotifyTargets(ctx context.Context) ([]NotifyTarget, error)
	// RemoveNotifyTarget removes a target and its rules; ErrNotFound when absent.
	RemoveNotifyTarget(ctx context.Context, id string) error

	CreateNotifyRule(ctx context.Context, r NotifyRule) error
	ListNotifyRules(ctx context.Context) ([]NotifyRule, error)
	// RemoveNotifyRule removes a rule; ErrNotFound when absent.
	RemoveNotifyRule(ctx context.Context, id string) error

	// ActiveConditions lists the conditions not resolved.
	ActiveConditions(ctx context.Context) ([]NotifyCondition, error)
	// NotifyConditionsSince lists the conditions first seen or resolved at
	// or after since (for digests), by first seen.
	NotifyConditionsSince(ctx context.Context, since time.Time) ([]NotifyCondition, error)
	// FireCondition records c as active, inserting it or starting a new
	// episode of a resolved one, and enqueues ds in the same transaction;
	// false (nothing written) when the key is active already: of two
	// servers firing one condition, exactly one wins.
	FireCondition(ctx context.Context, c NotifyCondition, ds []NotifyDelivery) (bool, error)
	// ResolveCondition marks an active condition resolved at at and
	// enqueues ds in the same transaction; false when it was not active.
	ResolveCondition(ctx context.Context, key string, at time.Time, ds []NotifyDelivery) (bool, error)

	// EnqueueDelivery adds a delivery; false when one with its id exists
	// (a digest's id names its rule and day, so it is enqueued once).
	EnqueueDelivery(ctx context.Context, d NotifyDelivery) (bool, error)
	// ClaimDeliveries takes up to limit due deliveries (pending, next
	// attempt at or before now, no live claim) for owner until leaseUntil,
	// each with a conditional update: of two senders one wins each.
	ClaimDeliveries(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]NotifyDelivery, error)
	// FinishDelivery records an attempt of a delivery claimed by owner:
	// d's Attempts, NextAttempt, LastError, Delivered and Failed. False when
	// owner's claim was lost.
	FinishDelivery(ctx context.Context, d NotifyDelivery, owner string) (bool, error)
	ListDeliveries(ctx context.Context, f NotifyDeliveryFilter) ([]NotifyDelivery, error)
}
