package api

import "time"

// RemoteAdd is the body of POST /remotes.
type RemoteAdd struct {
	Name         string `json:"name"`
	Endpoint     string `json:"endpoint" doc:"http(s)://host:port of the S3-compatible server"`
	Bucket       string `json:"bucket"`
	Region       string `json:"region,omitempty"`
	AccessKey    string `json:"access_key"`
	SecretKey    string `json:"secret_key" doc:"stored, never returned"`
	LockDays     int    `json:"lock_days,omitempty" doc:"write every object with an Object Lock retention of this many days (the server's locks are checked for real first)"`
	LockMode     string `json:"lock_mode,omitempty" doc:"governance or compliance (default with lock_days)"`
	BandwidthBps int64  `json:"bandwidth_bps,omitempty" doc:"bytes per second each transfer may use (0: no limit)"`
	Key          string `json:"key,omitempty" doc:"an exported remote key, to read copies another installation wrote; default a new key"`
}

// Remote is a remote without its secrets.
type Remote struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Endpoint     string    `json:"endpoint"`
	Bucket       string    `json:"bucket"`
	Region       string    `json:"region"`
	AccessKey    string    `json:"access_key"`
	LockDays     int       `json:"lock_days"`
	LockMode     string    `json:"lock_mode"`
	BandwidthBps int64     `json:"bandwidth_bps"`
	LockCheck    string    `json:"lock_check" doc:"enforced, or why locked copies are unsafe there; empty when never checked"`
	CheckedAt    time.Time `json:"checked_at,omitzero"`
	Created      time.Time `json:"created"`
	Copies       int       `json:"copies" doc:"finished copies (remote show only)"`
	CopiedBytes  int64     `json:"copied_bytes" doc:"their sealed bytes (remote show only)"`
}

// RemoteTest is what POST /remotes/{remote}/test found.
type RemoteTest struct {
	Reachable   bool   `json:"reachable"`
	LockEnabled bool   `json:"lock_enabled" doc:"the bucket has Object Lock turned on"`
	LockCheck   string `json:"lock_check" doc:"enforced: a locked canary could not be deleted; otherwise why the remote is unsafe"`
	Safe        bool   `json:"safe" doc:"locks are enforced, or the remote writes no locks"`
}

// RemoteKey is a remote's exported key.
type RemoteKey struct {
	Key     string `json:"key"`
	Warning string `json:"warning"`
}

// RemoteImport is the body of POST /remotes/{remote}/import.
type RemoteImport struct {
	Host string `json:"host,omitempty" doc:"host imported VMs are recorded on; default the only enabled host"`
}

// RemoteImported is what an import recorded.
type RemoteImported struct {
	Manifests  int      `json:"manifests"`
	Backups    int      `json:"backups" doc:"backups recorded"`
	VMs        int      `json:"vms" doc:"VMs recorded (Missing until restored)"`
	Known      int      `json:"known" doc:"backups the catalogue had already"`
	Unreadable []string `json:"unreadable" doc:"manifests that could not be opened, with why"`
}

// BackupCopyRequest is the body of POST /backups/{id}/copy.
type BackupCopyRequest struct {
	Remote   string `json:"remote"`
	KeepDays int    `json:"keep_days,omitempty" doc:"delete the copy this many days after it was made (0: keep)"`
}

// BackupCopy is one backup's copy on a remote.
type BackupCopy struct {
	ID        string    `json:"id"`
	BackupID  string    `json:"backup_id"`
	RemoteID  string    `json:"remote_id"`
	Remote    string    `json:"remote"`
	State     string    `json:"state" doc:"Queued, Copying, Copied, Failed"`
	Objects   int       `json:"objects"`
	Size      int64     `json:"size" doc:"sealed bytes on the remote"`
	LockUntil time.Time `json:"lock_until,omitzero"`
	KeepUntil time.Time `json:"keep_until,omitzero"`
	Copied    time.Time `json:"copied,omitzero"`
	Error     string    `json:"error,omitempty"`
	// Files are the copy's objects (GET /backups/{id}/copies only).
	Files []CopyFile `json:"files,omitempty"`
}

// CopyFile is one backup file of a copy in the bucket.
type CopyFile struct {
	Path      string `json:"path" doc:"relative to the backup storage root"`
	Disk      string `json:"disk,omitempty"`
	Key       string `json:"key" doc:"the object's key in the bucket (an HMAC: it reveals no name)"`
	VersionID string `json:"version_id,omitempty"`
	Size      int64  `json:"size" doc:"sealed bytes"`
	PlainSize int64  `json:"plain_size"`
}

// CopyPolicy is an offering's copy policy (PUT /offerings/{id}/copy-policy).
type CopyPolicy struct {
	Remote   string `json:"remote"`
	Every    string `json:"every,omitempty" doc:"backup (every backup, the default), daily or weekly (the last backup of each UTC day or week)"`
	KeepDays int    `json:"keep_days,omitempty" doc:"days a copy stays on the remote (0: until deleted)"`
}
