package offsite

import (
	"context"
	"time"
)

// TEMPORARY stub until the s3 branch merges (deleted at merge).

type LockCheck struct {
	Enforced bool
	Verdict  string
}

func CheckLocks(ctx context.Context, b Bucket, mode LockMode, now time.Time, hold time.Duration) (LockCheck, error) {
	return LockCheck{}, nil
}
