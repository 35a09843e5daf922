package notify

import (
	"slices"
	"time"
)

// Event kinds (the first part of a condition key).
const (
	KindVMError           = "vm.error"
	KindBackupFailed      = "backup.failed"
	KindValidationFailed  = "validation.notvalid"
	KindCompressionFailed = "compression.failed"
	KindJobExhausted      = "job.exhausted"
	KindAgentDown         = "agent.down"
	KindStorageLow        = "storage.low"
	KindVMStale           = "vm.stale"
	KindBackupChanged     = "backup.changed"
)

// Kinds lists every event kind.
var Kinds = []string{KindVMError, KindBackupFailed, KindValidationFailed, KindCompressionFailed, KindJobExhausted,
	KindAgentDown, KindStorageLow, KindVMStale, KindBackupChanged}

// ValidKind reports whether k is an event kind.
func ValidKind(k string) bool { return slices.Contains(Kinds, k) }

// Condition is one active condition as the evaluator derives it.
type Condition struct {
	Key       string
	Kind      string
	ZoneID    string
	AccountID string
	Summary   string
	Details   Details
}

// Details are the facts of a condition a message carries.
type Details struct {
	VMID          string `json:"vm_id,omitempty"`
	VM            string `json:"vm,omitempty"`
	BackupID      string `json:"backup_id,omitempty"`
	JobID         string `json:"job_id,omitempty"`
	HostID        string `json:"host_id,omitempty"`
	StorageID     string `json:"storage_id,omitempty"`
	Reason        string `json:"reason,omitempty"`
	ScreenshotURL string `json:"screenshot_url,omitempty"`
}

// Message is the JSON body of a webhook delivery and the source of an
// e-mail.
type Message struct {
	Event      string     `json:"event"` // firing, resolved, digest, test
	Key        string     `json:"key,omitempty"`
	Kind       string     `json:"kind,omitempty"`
	Summary    string     `json:"summary,omitempty"`
	ZoneID     string     `json:"zone_id,omitempty"`
	AccountID  string     `json:"account_id,omitempty"`
	FirstSeen  time.Time  `json:"first_seen,omitzero"`
	ResolvedAt time.Time  `json:"resolved_at,omitzero"`
	Details    *Details   `json:"details,omitempty"`
	Day        string     `json:"day,omitempty"` // digest: YYYY-MM-DD (UTC)
	Conditions []Message  `json:"conditions,omitempty"`
	Sent       *time.Time `json:"sent,omitempty"`
}
