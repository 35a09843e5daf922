package domain

// OpResult is the result of a succeeded operation: one named type per
// operation kind. Its JSON form is recorded in Operation.Result.
type OpResult interface {
	// OpKind is the operation kind whose result this is.
	OpKind() string
}

// Operation kinds.
const (
	OpBackupCreate        = "backup.create"
	OpBackupCreateVM      = "backup.create-vm"
	OpBackupDelete        = "backup.delete"
	OpBackupRestore       = "backup.restore"
	OpBackupRestoreVolume = "backup.restore-volume"
	OpVMConsolidate       = "vm.consolidate"
	OpChainFinish         = "chain.finish"
	OpInventoryRefresh    = "inventory.refresh"
	OpStorageMigrate      = "storage.migrate"
	OpBackupRestoreFiles  = "backup.restore-files"
)

// OpResults returns a zero value of every result type, one per operation
// kind the service can start.
func OpResults() []OpResult {
	return []OpResult{
		BackupCreateResult{}, BackupCreateVMResult{}, BackupDeleteResult{},
		BackupRestoreResult{}, BackupRestoreVolumeResult{}, VMConsolidateResult{},
		ChainFinishResult{}, InventoryRefreshResult{}, StorageMigrateResult{},
		BackupRestoreFilesResult{},
	}
}

// RestoredDisk is a disk a restore wrote and verified.
type RestoredDisk struct {
	// Target is the disk's target device (vda, ...).
	Target string `json:"target"`
	// Path is the disk's image file.
	Path string `json:"path"`
	// Verified says how the content was checked against the backup.
	Verified string `json:"verified"`
	// Attached is set when the disk was attached to the VM.
	Attached bool `json:"attached,omitempty"`
}

// BackupCreateResult is the result of backup.create.
type BackupCreateResult struct {
	// ID is the new backup's id.
	ID string `json:"id"`
	// Type is the backup type (Full or Incremental).
	Type string `json:"type"`
	// Freeze is how long the guest file systems were frozen, in seconds.
	Freeze float64 `json:"freeze_seconds"`
	// Phases are the backup's phases in seconds: snapshot, copy (fsync
	// excluded), fsync; the merge on primary storage follows the backup.
	Phases map[string]float64 `json:"phases_seconds,omitempty"`
}

// BackupCreateVMResult is the result of backup.create-vm: a new VM made
// from a backup.
type BackupCreateVMResult struct {
	// VM is the new VM's name.
	VM string `json:"vm"`
	// ID is the new VM's UUID.
	ID string `json:"id"`
	// Backup is the backup restored.
	Backup string `json:"backup"`
	// Disks are the disks written.
	Disks []RestoredDisk `json:"disks"`
	// Started says whether the new VM was started.
	Started bool `json:"started"`
	// Consolidated is set on a quick restore: whether the disks no longer
	// read the backup files.
	Consolidated *bool `json:"consolidated,omitempty"`
	// Damaged lists the damaged backup files restored anyway
	// (accept_damaged).
	Damaged []string `json:"damaged,omitempty"`
}

// BackupDeleteResult is the result of backup.delete.
type BackupDeleteResult struct {
	// Deleted are the ids of the backups deleted.
	Deleted []string `json:"deleted"`
}

// BackupRestoreResult is the result of backup.restore, in place or onto
// another host.
type BackupRestoreResult struct {
	// VM is the VM's name.
	VM string `json:"vm"`
	// Backup is the backup restored.
	Backup string `json:"backup"`
	// Disks are the disks written.
	Disks []RestoredDisk `json:"disks"`
	// Defined says whether the VM was defined anew.
	Defined bool `json:"defined"`
	// Quick says whether the restore was quick (disks read the backup files).
	Quick bool `json:"quick"`
	// Host is the target host of a restore onto another host.
	Host string `json:"host,omitempty"`
	// Started says whether the VM was started (restore onto another host).
	Started *bool `json:"started,omitempty"`
	// Consolidated is set on a quick restore: whether the disks no longer
	// read the backup files.
	Consolidated *bool `json:"consolidated,omitempty"`
	// Damaged lists the damaged backup files restored anyway
	// (accept_damaged).
	Damaged []string `json:"damaged,omitempty"`
}

// BackupRestoreVolumeResult is the result of backup.restore-volume.
type BackupRestoreVolumeResult struct {
	// VM is the VM's name.
	VM string `json:"vm"`
	// Backup is the backup restored.
	Backup string `json:"backup"`
	// Disks are the disks written.
	Disks []RestoredDisk `json:"disks"`
	// Consolidated is set on a quick restore (the VM runs on the overlay,
	// started by the restore when it was stopped).
	Consolidated *bool `json:"consolidated,omitempty"`
	// Started is true when the restore started the stopped VM (quick).
	Started bool `json:"started,omitempty"`
	// Host is the host the VM was started on, when --host moved it.
	Host string `json:"host,omitempty"`
	// Damaged lists the damaged backup files restored anyway
	// (accept_damaged).
	Damaged []string `json:"damaged,omitempty"`
}

// VMConsolidateResult is the result of vm.consolidate.
type VMConsolidateResult struct {
	// VM is the VM's name.
	VM string `json:"vm"`
	// Consolidated is true once the disks no longer read backup files.
	Consolidated bool `json:"consolidated"`
}

// ChainFinishResult is the result of chain.finish.
type ChainFinishResult struct {
	// VM is the VM's name.
	VM string `json:"vm"`
	// Chain is "ended".
	Chain string `json:"chain"`
}

// InventoryRefreshResult is the result of inventory.refresh.
type InventoryRefreshResult struct {
	// Hosts is the number of hosts refreshed.
	Hosts int `json:"hosts"`
	// VMs is the number of VMs known.
	VMs int `json:"vms"`
}

// StorageMigrateResult is the result of storage.migrate.
type StorageMigrateResult struct {
	// From is the source storage's name.
	From string `json:"from"`
	// To is the target storage's name.
	To string `json:"to"`
	// Moved are the backup ids moved.
	Moved []string `json:"moved"`
}

// BackupRestoreFilesResult is the result of backup.restore-files: what was
// written into the VM through its guest agent.
type BackupRestoreFilesResult struct {
	// VM is the VM's name; To the directory in the guest.
	VM string `json:"vm"`
	To string `json:"to"`
	// Files, Dirs and Links count what was written; Bytes the files' bytes.
	Files int   `json:"files"`
	Dirs  int   `json:"dirs"`
	Links int   `json:"links"`
	Bytes int64 `json:"bytes"`
	// Skipped counts devices, fifos and sockets (not restored).
	Skipped int `json:"skipped,omitempty"`
}

func (BackupRestoreFilesResult) OpKind() string  { return OpBackupRestoreFiles }
func (BackupCreateResult) OpKind() string        { return OpBackupCreate }
func (BackupCreateVMResult) OpKind() string      { return OpBackupCreateVM }
func (BackupDeleteResult) OpKind() string        { return OpBackupDelete }
func (BackupRestoreResult) OpKind() string       { return OpBackupRestore }
func (BackupRestoreVolumeResult) OpKind() string { return OpBackupRestoreVolume }
func (VMConsolidateResult) OpKind() string       { return OpVMConsolidate }
func (ChainFinishResult) OpKind() string         { return OpChainFinish }
func (InventoryRefreshResult) OpKind() string    { return OpInventoryRefresh }
func (StorageMigrateResult) OpKind() string      { return OpStorageMigrate }
