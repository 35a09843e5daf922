package offsite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CanaryPrefix is where lock checks write their canaries.
const CanaryPrefix = "knib/canary/"

// LockCheck is what a lock check found.
type LockCheck struct {
	// Enforced: the server refused to delete a locked canary.
	Enforced bool
	// Verdict is "enforced", or why locked copies are unsafe there.
	Verdict string
}

// CheckLocks learns whether a bucket enforces Object Lock: it writes a
// small canary locked (mode) until now+hold and tries to delete that
// version. A server that deletes it accepts locks without enforcing them:
// unsafe. Canaries of earlier checks whose lock has passed are removed,
// best effort.
func CheckLocks(ctx context.Context, b Bucket, mode LockMode, now time.Time, hold time.Duration) (LockCheck, error) {
	on, err := b.LockEnabled(ctx)
	if err != nil {
		return LockCheck{}, fmt.Errorf("read the bucket's object lock configuration: %w", err)
	}
	if !on {
		return LockCheck{Verdict: "object lock is not enabled on the bucket"}, nil
	}
	removeOldCanaries(ctx, b, now)
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return LockCheck{}, err
	}
	key := CanaryPrefix + hex.EncodeToString(id[:])
	body := []byte("knib lock check canary\n")
	info, err := b.Put(ctx, key, bytes.NewReader(body), int64(len(body)), Lock{Mode: mode, Until: now.Add(hold)}, nil)
	if err != nil {
		return LockCheck{}, fmt.Errorf("write a locked canary: %w", err)
	}
	if st, err := b.Stat(ctx, key, info.VersionID); err == nil && !st.Lock.Locked(now) {
		// The server stored the object without the lock it was asked for.
		if derr := b.Delete(ctx, key, info.VersionID); derr != nil {
			_ = derr // best effort: it is unlocked, a later check removes it
		}
		return LockCheck{Verdict: "unsafe: the server stored a locked object without its lock"}, nil
	}
	err = b.Delete(ctx, key, info.VersionID)
	switch {
	case errors.Is(err, ErrLocked):
		return LockCheck{Enforced: true, Verdict: "enforced"}, nil
	case err == nil:
		return LockCheck{Verdict: "unsafe: the server accepted a lock and deleted the object anyway"}, nil
	}
	return LockCheck{}, fmt.Errorf("try to delete the locked canary: %w", err)
}

// removeOldCanaries deletes canaries whose lock has passed.
func removeOldCanaries(ctx context.Context, b Bucket, now time.Time) {
	list, err := b.List(ctx, CanaryPrefix, false)
	if err != nil {
		return
	}
	for _, o := range list {
		if strings.HasPrefix(o.Key, CanaryPrefix) && !o.Lock.Locked(now) {
			if err := b.Delete(ctx, o.Key, ""); err != nil {
				continue // still locked somewhere: a later check retries
			}
		}
	}
}
