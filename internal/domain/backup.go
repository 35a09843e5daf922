package domain

import "time"

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
	// Dir is the backup's directory relative to the storage root.
	Dir string
	// Plan is the recorded intent (JSON) of a backup being taken, so an
	// interrupted backup can be reconciled.
	Plan    string
	Error   string
	Files   []BackupFile
	Created time.Time
	Updated time.Time
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
