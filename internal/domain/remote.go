package domain

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Remote is an S3-compatible bucket knib copies backups to (offsite
// copies). SecretKey and Key are secrets: the catalogue keeps them, no
// list or show returns them (Key only through `knib remote key export`).
type Remote struct {
	ID        string
	Name      string
	Endpoint  string // http(s)://host[:port]
	Bucket    string
	Region    string
	AccessKey string
	SecretKey string
	// Key is the remote's sealing key (seal.Key's text form): without it
	// the copies are unreadable.
	Key string
	// LockDays > 0 writes every object with an Object Lock retention of
	// that many days in LockMode.
	LockDays int
	LockMode LockMode
	// BandwidthBps limits each transfer's bytes per second (0: none).
	BandwidthBps int64
	// LockCheck is the verdict of the last lock check (LockEnforced, or
	// why the remote is unsafe), CheckedAt its time.
	LockCheck string
	CheckedAt time.Time
	Created   time.Time
}

// LockMode is an Object Lock retention mode, as users write it.
type LockMode string

// Lock modes.
const (
	LockGovernance LockMode = "governance"
	LockCompliance LockMode = "compliance"
)

// LockEnforced is the lock check's verdict for a remote whose server
// refused to delete a locked canary.
const LockEnforced = "enforced"

// MaxLockDays bounds lock and keep periods (100 years).
const MaxLockDays = 36500

// RemoteSpec is what a caller asks for when adding a remote (raw input).
type RemoteSpec struct {
	Name, Endpoint, Bucket, Region, AccessKey, SecretKey string
	LockDays                                             int
	LockMode                                             string
	BandwidthBps                                         int64
}

var bucketRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
var regionRE = regexp.MustCompile(`^[a-z0-9-]{0,64}$`)

// NewRemote validates spec and returns the remote it describes (without
// its key, which the caller draws or imports).
func NewRemote(id string, spec RemoteSpec, now time.Time) (Remote, error) {
	name := strings.TrimSpace(spec.Name)
	if err := ValidateRef("name", name); err != nil {
		return Remote{}, err
	}
	u, err := url.Parse(spec.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Remote{}, Invalid("endpoint", "must be an http:// or https:// URL of a server (scheme, host and port only), got %q", spec.Endpoint)
	}
	if !bucketRE.MatchString(spec.Bucket) || strings.Contains(spec.Bucket, "..") {
		return Remote{}, Invalid("bucket", "must be 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit, got %q", spec.Bucket)
	}
	if !regionRE.MatchString(spec.Region) {
		return Remote{}, Invalid("region", "must be lower-case letters, digits and hyphens, got %q", spec.Region)
	}
	if spec.AccessKey == "" || len(spec.AccessKey) > 256 || strings.ContainsAny(spec.AccessKey, " \t\r\n") {
		return Remote{}, Invalid("access_key", "must be 1 to 256 characters without white space")
	}
	if spec.SecretKey == "" || len(spec.SecretKey) > 256 || strings.ContainsAny(spec.SecretKey, "\r\n") {
		return Remote{}, Invalid("secret_key", "must be 1 to 256 characters on one line")
	}
	if spec.LockDays < 0 || spec.LockDays > MaxLockDays {
		return Remote{}, Invalid("lock_days", "must be 0 (no lock) to %d, got %d", MaxLockDays, spec.LockDays)
	}
	mode := LockMode(strings.ToLower(strings.TrimSpace(spec.LockMode)))
	switch {
	case mode == "" && spec.LockDays > 0:
		mode = LockCompliance
	case mode == "":
	case mode != LockGovernance && mode != LockCompliance:
		return Remote{}, Invalid("lock_mode", "unknown mode %q, want governance or compliance", spec.LockMode)
	case spec.LockDays == 0:
		return Remote{}, Invalid("lock_mode", "only allowed with lock_days")
	}
	if spec.BandwidthBps < 0 {
		return Remote{}, Invalid("bandwidth", "must not be negative")
	}
	return Remote{ID: id, Name: name, Endpoint: strings.TrimSuffix(spec.Endpoint, "/"), Bucket: spec.Bucket, Region: spec.Region,
		AccessKey: spec.AccessKey, SecretKey: spec.SecretKey, LockDays: spec.LockDays, LockMode: mode, BandwidthBps: spec.BandwidthBps, Created: now}, nil
}

// CopyEvery says which backups a copy policy copies.
type CopyEvery string

// Copy policies: every backup, or the last backup of each day or week (UTC;
// weeks start on Monday).
const (
	CopyEach   CopyEvery = "backup"
	CopyDaily  CopyEvery = "daily"
	CopyWeekly CopyEvery = "weekly"
)

// ParseCopyEvery checks a policy's frequency.
func ParseCopyEvery(s string) (CopyEvery, error) {
	switch e := CopyEvery(strings.ToLower(strings.TrimSpace(s))); e {
	case CopyEach, CopyDaily, CopyWeekly:
		return e, nil
	case "":
		return CopyEach, nil
	}
	return "", Invalid("every", "unknown frequency %q, want backup, daily or weekly", s)
}

// Period returns the start of the period (day or week, UTC) t falls in;
// for CopyEach, t itself.
func (e CopyEvery) Period(t time.Time) time.Time {
	t = t.UTC()
	switch e {
	case CopyDaily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case CopyWeekly:
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		return d.AddDate(0, 0, -back)
	}
	return t
}

// Next returns the start of the period after the one starting at p.
func (e CopyEvery) Next(p time.Time) time.Time {
	switch e {
	case CopyDaily:
		return p.AddDate(0, 0, 1)
	case CopyWeekly:
		return p.AddDate(0, 0, 7)
	}
	return p
}

// CopyPolicy copies an offering's backups to a remote and keeps the copies
// KeepDays there (0: until deleted by hand). SweptUntil is the end of the
// last period whose backups were picked (daily and weekly policies).
type CopyPolicy struct {
	OfferingID string
	RemoteID   string
	Every      CopyEvery
	KeepDays   int
	SweptUntil time.Time
}

// CopyState is where a backup's copy on a remote is.
type CopyState string

// Copy states: Queued (recorded, its job waits), Copying, Copied, Failed
// (the job gave up; the objects it left are deleted with the copy).
const (
	CopyQueued  CopyState = "Queued"
	CopyCopying CopyState = "Copying"
	CopyCopied  CopyState = "Copied"
	CopyFailed  CopyState = "Failed"
)

// BackupCopy is one backup's copy on one remote: its objects and its
// manifest, the lock on them and how long it is kept.
type BackupCopy struct {
	ID       string
	BackupID string
	RemoteID string
	State    CopyState
	// Salt (hex) makes this copy's sealed bytes its own; recorded before
	// the first upload so that retries seal identically.
	Salt            string
	Objects         []CopyObject
	ManifestKey     string
	ManifestVersion string
	LockUntil       time.Time // zero: not locked
	KeepUntil       time.Time // zero: kept until deleted by hand
	Size            int64     // sealed bytes
	Error           string
	Created         time.Time
	Copied          time.Time
}

// CopyObject is one backup file in the bucket.
type CopyObject struct {
	Path      string `json:"path"` // relative to the storage root
	Disk      string `json:"disk,omitempty"`
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	Size      int64  `json:"size"`
	PlainSize int64  `json:"plain_size"`
	Hash      string `json:"hash,omitempty"` // the file's xxh3-128
}
