package offsite

import (
	"context"
	"errors"
	"io"
	"time"
)

// LockMode is an S3 Object Lock retention mode.
type LockMode string

// Lock modes: governance yields to callers with the bypass permission
// (knib never sends the bypass header); compliance yields to nobody until
// the date.
const (
	Governance LockMode = "GOVERNANCE"
	Compliance LockMode = "COMPLIANCE"
)

// Lock is a retention: zero Until means no lock.
type Lock struct {
	Mode  LockMode
	Until time.Time
}

// Locked reports whether the lock holds at now.
func (l Lock) Locked(now time.Time) bool { return !l.Until.IsZero() && now.Before(l.Until) }

// Config is how to reach a bucket. Secrets are never logged.
type Config struct {
	Endpoint  string // URL: http://host:port or https://host:port
	Bucket    string
	Region    string // "" for the server's default
	AccessKey string
	SecretKey string
	// BandwidthBps limits the bytes per second this handle sends and
	// receives (< 1: no limit).
	BandwidthBps int64
}

// ObjectInfo describes one version of an object.
type ObjectInfo struct {
	Key       string
	VersionID string // "" on a bucket without versioning
	Size      int64
	ETag      string
	Modified  time.Time
	Lock      Lock // as the server reports it (zero when none)
}

// Errors a Bucket returns (wrapped, with the server's message).
var (
	// ErrNotFound: no such object, version or bucket.
	ErrNotFound = errors.New("not found")
	// ErrLocked: the server refused a delete or overwrite because of a lock.
	ErrLocked = errors.New("protected by object lock")
	// ErrDenied: the credentials may not do this (other than a lock).
	ErrDenied = errors.New("access denied")
)

// Progress is told the bytes a transfer has moved so far.
type Progress func(done int64)

// Bucket is one bucket of an S3-compatible server.
//
// Contract (checked by offsitetest.Run on every implementation):
//   - Put writes size bytes read from src as one object under key, in
//     parts (multipart upload for large objects). If an unfinished
//     multipart upload of key exists (a crash or a network fault ended an
//     earlier Put), Put resumes it: a part already uploaded whose size and
//     ETag match the bytes src holds for it is not sent again; any other
//     unfinished upload of key is aborted. src must therefore give the
//     same bytes for the same offsets on every call. A non-zero lock is
//     set on the new version as it is created. Put returns the new
//     version. A failed Put leaves at most an unfinished upload, which the
//     next Put of the key resumes or aborts.
//   - Get streams one version of an object (the current one when
//     versionID is ""); the reader fails, never returns short data silently,
//     if the connection drops.
//   - Stat describes one version (the current one when versionID is "");
//     ErrNotFound when it does not exist or is a delete marker.
//   - List returns the current version of every object whose key starts
//     with prefix, in key order. Versions hidden behind a delete marker are
//     listed too when withHidden is set (the newest version that is not a
//     marker, per key): an attacker's delete markers do not hide copies.
//   - Delete removes one version for good (all versions when versionID is
//     ""); a locked version makes it fail with ErrLocked and removes
//     nothing of that version.
//   - ExtendLock sets a version's retention to lock; it never shortens an
//     existing one (Until earlier than the current one is a no-op).
//   - LockEnabled reports whether the bucket has Object Lock turned on.
type Bucket interface {
	Put(ctx context.Context, key string, src io.ReaderAt, size int64, lock Lock, progress Progress) (ObjectInfo, error)
	Get(ctx context.Context, key, versionID string) (io.ReadCloser, error)
	Stat(ctx context.Context, key, versionID string) (ObjectInfo, error)
	List(ctx context.Context, prefix string, withHidden bool) ([]ObjectInfo, error)
	Delete(ctx context.Context, key, versionID string) error
	ExtendLock(ctx context.Context, key, versionID string, lock Lock) error
	LockEnabled(ctx context.Context) (bool, error)
}

// Opener opens a bucket from its configuration (package s3's Open).
type Opener func(Config) (Bucket, error)
