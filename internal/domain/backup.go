package domain

import (
	"strings"
	"time"
)

// BackupStatus is a backup's catalogue status (the seed's names).
type BackupStatus string

// Backup statuses. Expunged backups leave the catalogue.
const (
	BackupBackingUp BackupStatus = "BackingUp"
	BackupBackedUp  BackupStatus = "BackedUp"
	BackupFailed    BackupStatus = "Failed"
	BackupError     BackupStatus = "Error"
	BackupRemoved   BackupStatus = "Removed"
	BackupRestoring BackupStatus = "Restoring"
	BackupExpunged  BackupStatus = "Expunged"
)

// BackupType says how a backup was copied.
type BackupType string

// Backup types.
const (
	BackupFull        BackupType = "full"
	BackupIncremental BackupType = "incremental"
)

// Backup is one backup of a VM: one qcow2 file per disk on backup storage,
// plus the domain XML, boot files and a manifest, in one directory.
type Backup struct {
	ID         string
	VMID       string
	VMName     string
	AccountID  string
	OfferingID string
	HostID     string
	Type       BackupType
	Isolated   bool
	ParentID   string
	Position   int
	EndOfChain bool
	Status     BackupStatus
	Size       int64 // physical bytes of the files
	// VirtualSize is the sum of the disks' virtual sizes.
	VirtualSize int64
	// StorageID is the backup storage holding the files ("" only for
	// backups of a catalogue not yet upgraded: the default storage).
	StorageID string
	// Dir is the backup's directory relative to the storage root.
	Dir string
	// Plan is the recorded intent (JSON) of a backup being taken, so an
	// interrupted backup can be reconciled.
	Plan  string
	Error string
	// Compression and validation by background jobs.
	CompressionStatus CompressionStatus
	UncompressedSize  int64
	ValidationStatus  ValidationStatus
	ValidationReason  string
	HasScreenshot     bool
	ScheduleID        string // the schedule that took it, "" for manual backups
	Files             []BackupFile
	Created           time.Time
	Updated           time.Time

	// ValidationSteps are the steps the validation behind ValidationStatus
	// ran, in order, each with its outcome (empty while none is recorded).
	ValidationSteps []ValidationStepRun
}

// BackupFile is the file of one disk in a backup.
type BackupFile struct {
	Disk        string // target device at backup time
	Path        string // relative to the storage root
	Full        bool   // flattened copy (no backing file)
	Size        int64
	VirtualSize int64
	Hash        string // "xxh3-128:<hex>" of the file's bytes
}

// Delta is the overlay the chain head keeps on top of one disk.
type Delta struct {
	VMID     string
	Disk     string
	BackupID string
	Delta    string
	Base     string
}

// SnapshotStatus is a VM snapshot's status.
type SnapshotStatus string

// Snapshot statuses: a Removed snapshot was deleted by the user but its files
// stay until nothing depends on them.
const (
	SnapshotReady   SnapshotStatus = "Ready"
	SnapshotRemoved SnapshotStatus = "Removed"
)

// Snapshot is a disk-only VM snapshot: for every disk, the file that was on
// top when it was taken (its frozen file) holds the disk's state at that time
// through its backing chain.
type Snapshot struct {
	ID      string
	VMID    string
	Name    string
	Status  SnapshotStatus
	Files   []SnapshotFile
	Created time.Time
}

// SnapshotFile is one disk's frozen file.
type SnapshotFile struct {
	Disk   string `json:"disk"`
	Frozen string `json:"frozen"`
}

// CompressionStatus is where a backup is in background compression.
type CompressionStatus string

// Compression statuses (the seed's names).
const (
	Uncompressed          CompressionStatus = "Uncompressed"
	Compressing           CompressionStatus = "Compressing"
	FinalizingCompression CompressionStatus = "FinalizingCompression"
	Compressed            CompressionStatus = "Compressed"
	CompressionError      CompressionStatus = "CompressionError"
)

// ValidationStatus is the outcome of a backup's validation.
type ValidationStatus string

// Validation statuses (the seed's names).
const (
	NotValidated     ValidationStatus = "NotValidated"
	Validating       ValidationStatus = "Validating"
	Valid            ValidationStatus = "Valid"
	NotValid         ValidationStatus = "NotValid"
	UnableToValidate ValidationStatus = "UnableToValidate"
)

// ValidationStepRun is what one step of a validation did.
type ValidationStepRun struct {
	Step    ValidationStep `json:"step"`
	Outcome StepOutcome    `json:"outcome"`
	// Detail says why a step failed or was skipped, or what it produced.
	Detail string `json:"detail,omitempty"`
}

// StepOutcome is how a validation step ended.
type StepOutcome string

// Step outcomes: a skipped step did not run (for example execute_command
// without a command).
const (
	StepPassed  StepOutcome = "passed"
	StepFailed  StepOutcome = "failed"
	StepSkipped StepOutcome = "skipped"
)

// Schedule takes backups of a VM at regular times and keeps at most
// MaxBackups of them (0: no limit).
type Schedule struct {
	ID         string
	VMID       string
	Interval   string // hourly, daily, weekly, monthly
	At         string
	Timezone   string
	MaxBackups int
	Isolated   bool
	NextRun    time.Time
	Created    time.Time
}

// DamagedReason starts the validation reason of a backup that is NotValid
// because a file of it no longer hashes to the hash recorded when it was
// written: a restore of it, or of a backup above it in its chain, is
// refused unless the user accepts the damage.
const DamagedReason = "damaged: "

// Damaged reports whether the backup is NotValid by hash.
func (b Backup) Damaged() bool {
	return b.ValidationStatus == NotValid && strings.HasPrefix(b.ValidationReason, DamagedReason)
}
