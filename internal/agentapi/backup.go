package agentapi

import "time"

// Task kinds of the backup chain.
const (
	KindTakeBackup  = "backup.take"
	KindMergeBackup = "backup.merge"
	KindReconcile   = "vm.reconcile"
	KindDeleteFiles = "storage.delete"
)

// DeltaPrefix starts the file name of every backup delta knib creates on
// primary storage: knib-delta.<vm uuid>.<disk>.<backup id>.qcow2. The name
// alone tells recovery which VM and backup a left-over file belongs to.
const DeltaPrefix = "knib-delta."

// TakeBackupRequest is the payload of KindTakeBackup.
type TakeBackupRequest struct {
	InStorage
	BackupID   string `json:"backup_id"`
	DomainUUID string `json:"domain_uuid"`
	// Dir is the backup's directory relative to the storage root.
	Dir     string `json:"dir"`
	Quiesce bool   `json:"quiesce"`
	// MergeNewDelta merges the new deltas back at the end (end of chain,
	// isolated backup): the disks are left as they were before.
	MergeNewDelta bool             `json:"merge_new_delta"`
	Disks         []BackupDiskPlan `json:"disks"`
	// DeferMerge leaves the merges (MergeInto, MergeNewDelta) to a
	// KindMergeBackup task run after the backup is committed: the backup is
	// complete once its files are copied, synced and hashed. An agent that
	// does not know the field merges at once, as before.
	DeferMerge bool `json:"defer_merge,omitempty"`
	// Others are the VM snapshots' frozen files: files of their chains off
	// the current chain that are backed by a merged delta follow the merge,
	// and none of their files is removed as a left-over.
	Others []string `json:"others,omitempty"`
}

// BackupDiskPlan is what the backup does with one disk.
type BackupDiskPlan struct {
	Target string `json:"target"`
	// Full copies the flattened image; else Frozen alone on top of ParentFile.
	Full bool `json:"full"`
	// Frozen is the disk's top file when planned; the snapshot freezes it.
	Frozen string `json:"frozen"`
	// NewDelta is the overlay the snapshot creates.
	NewDelta string `json:"new_delta"`
	// MergeInto, when set, is where Delta (the previous backup's delta) is
	// merged after the copy.
	MergeInto string `json:"merge_into,omitempty"`
	// Delta is the previous backup's delta; Layers the files an incremental
	// copies, Frozen down to Delta (VM snapshot overlays in between are
	// collapsed into the one backup file).
	Delta  string   `json:"delta,omitempty"`
	Layers []string `json:"layers,omitempty"`

	// ParentFile is the parent backup's file for this disk, relative to the
	// storage root (incrementals only).
	ParentFile string `json:"parent_file,omitempty"`
}

// TakeBackupResult is what a backup wrote.
type TakeBackupResult struct {
	Files []BackupFile `json:"files"`
	// Chains are the disks' chains after the backup: top and the file below.
	Chains []DiskChain `json:"chains"`
	// Freeze is how long the snapshot held the guest's I/O.
	Freeze time.Duration `json:"freeze"`
	// Domain is the VM as the backup left it (its disks and their chains).
	Domain Domain `json:"domain"`
	// Phases is how long each phase took: snapshot, copy (fsync excluded),
	// fsync and merge (PhaseSnapshot...); an older agent sends none.
	Phases map[string]time.Duration `json:"phases,omitempty"`
}

// The phases of a backup that TakeBackupResult.Phases times.
const (
	PhaseSnapshot = "snapshot"
	PhaseCopy     = "copy"
	PhaseFsync    = "fsync"
	PhaseMerge    = "merge"
)

// MergeBackupRequest is the payload of KindMergeBackup: the merges a
// committed backup left to do (its TakeBackupRequest with DeferMerge).
// Idempotent: a delta no longer in its disk's chain is only removed.
type MergeBackupRequest struct {
	BackupID      string           `json:"backup_id"`
	DomainUUID    string           `json:"domain_uuid"`
	MergeNewDelta bool             `json:"merge_new_delta"`
	Disks         []BackupDiskPlan `json:"disks"`
	Others        []string         `json:"others,omitempty"`
	// ResumePaused: a merge of this backup on the host the VM left paused
	// it (TaskStatus.LeftPaused); the VM is resumed first if it is paused.
	ResumePaused bool `json:"resume_paused,omitempty"`
}

// MergeBackupRequestOf is the merge a TakeBackupRequest left to do.
func MergeBackupRequestOf(req TakeBackupRequest) MergeBackupRequest {
	return MergeBackupRequest{BackupID: req.BackupID, DomainUUID: req.DomainUUID, MergeNewDelta: req.MergeNewDelta, Disks: req.Disks, Others: req.Others}
}

// MergeBackupResult is the VM as the merge left it.
type MergeBackupResult struct {
	Chains []DiskChain   `json:"chains"`
	Domain Domain        `json:"domain"`
	Merge  time.Duration `json:"merge"`
}

// BackupFile is one written backup file.
type BackupFile struct {
	Disk        string `json:"disk"`
	Path        string `json:"path"` // relative to the storage root
	Full        bool   `json:"full"`
	Size        int64  `json:"size"`
	VirtualSize int64  `json:"virtual_size"`
	Hash        string `json:"hash"`
}

// NewDeltaBase is the file the new delta sits on once the previous delta was
// merged.
func (d BackupDiskPlan) NewDeltaBase() string {
	if d.MergeInto != "" && d.Delta == d.Frozen {
		return d.MergeInto
	}
	return d.Frozen
}

// DiskChain is the top of a disk and the file right below it.
type DiskChain struct {
	Target string `json:"target"`
	Top    string `json:"top"`
	Base   string `json:"base"`
}

// ReconcileRequest is the payload of KindReconcile: bring a VM's disks back to
// a consistent chain after an interruption. Every knib delta of the VM that is
// not in Keep is merged into the file below it; left-over delta files of the
// VM that no chain uses are removed; RemoveDirs (relative to the storage
// root, partial backups) are removed.
type ReconcileRequest struct {
	InStorage
	DomainUUID string   `json:"domain_uuid"`
	Keep       []string `json:"keep"`
	RemoveDirs []string `json:"remove_dirs"`
	// Others are VM snapshot frozen files; files of their chains backed by a
	// merged delta are rebased onto the merge target.
	Others []string `json:"others,omitempty"`
}

// ReconcileResult says what reconciliation found and did.
type ReconcileResult struct {
	Chains  []DiskChain `json:"chains"`
	Merged  []string    `json:"merged"`
	Removed []string    `json:"removed"`
	// Repoint maps each merged file to the file that now holds its state.
	Repoint map[string]string `json:"repoint"`
}

// DeleteFilesRequest is the payload of KindDeleteFiles: remove backup
// directories (relative to the storage root). Missing ones are fine.
type DeleteFilesRequest struct {
	InStorage
	Dirs []string `json:"dirs"`
}
