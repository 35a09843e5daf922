package agentapi

// Task kinds of restores.
const (
	KindRestore       = "backup.restore"
	KindRestoreVolume = "backup.restore-volume"
	KindCreateVM      = "backup.create-vm"
	KindConsolidate   = "vm.consolidate"
	KindDefinition    = "vm.definition"
)

// RestoreRequest restores backup files onto a VM's disks. The VM is stopped,
// or not defined any more: then it is defined again from the backup's
// domain.xml. Disks of the backup the VM no longer has are re-created and
// attached; disks the VM has that are not in the backup are left alone.
type RestoreRequest struct {
	InStorage
	DomainUUID string `json:"domain_uuid"`
	// Dir is the backup's directory relative to the storage root.
	Dir   string        `json:"dir"`
	Files []RestoreFile `json:"files"`
	// Quick: the disks become thin overlays on the backup files and the VM
	// starts at once; consolidation (KindConsolidate) makes it independent.
	Quick bool `json:"quick"`
	// Verify: the chain's files are hashed while they are copied; a
	// quick restore checks them at its consolidation instead.
	Verify
}

// RestoreFile is one disk's backup file (relative to the storage root).
type RestoreFile struct {
	Disk string `json:"disk"`
	Path string `json:"path"`
}

// RestoredDisk is a disk a restore wrote and verified.
type RestoredDisk struct {
	Target string `json:"target"`
	Path   string `json:"path"`
	// Verified says how the content was checked against the backup.
	Verified string `json:"verified"`
	Attached bool   `json:"attached,omitempty"`
}

// RestoreResult is what a restore did.
type RestoreResult struct {
	UUID    string         `json:"uuid"`
	Name    string         `json:"name"`
	Defined bool           `json:"defined"`
	Started bool           `json:"started"`
	Disks   []RestoredDisk `json:"disks"`
	// Damaged lists the damaged files a restore with AcceptDamaged
	// restored anyway.
	Damaged []Damage `json:"damaged,omitempty"`
}

// RestoreVolumeRequest makes a new disk from one backup file and attaches it
// to a VM, running or stopped.
type RestoreVolumeRequest struct {
	InStorage
	DomainUUID string `json:"domain_uuid"`
	File       string `json:"file"` // backup file, relative to the storage root
	// Name is used in the new file's name.
	Name string `json:"name"`
	// Quick attaches a thin overlay on the backup file instead of a full
	// copy; a stopped VM is then started (the seed's restoreVolume rows 5
	// and 6), so that its consolidation can run.
	Quick bool `json:"quick"`
	// Adopt, when set, is the inactive definition of a stopped VM that
	// lives on another host of the zone: it is defined here first (same
	// uuid and disks, which must exist here: shared primary storage), so
	// that the VM starts on this host. Idempotent.
	Adopt string `json:"adopt,omitempty"`
	Verify
}

// DefinitionRequest asks for a VM's inactive definition (domain XML).
type DefinitionRequest struct {
	DomainUUID string `json:"domain_uuid"`
}

// DefinitionResult is a VM's inactive definition.
type DefinitionResult struct {
	XML string `json:"xml"`
}

// CreateVMRequest defines a new VM from a backup: new name, new uuid, new MAC
// addresses, new disk files.
type CreateVMRequest struct {
	InStorage
	Dir   string        `json:"dir"`
	Files []RestoreFile `json:"files"`
	Name  string        `json:"name"`
	Quick bool          `json:"quick"`
	Start bool          `json:"start"`
	// OwnDiskDir puts the new disks in this host's disk directory
	// (<disk dir>/<name>/) instead of next to the original VM's disks: the
	// backup comes from another host.
	OwnDiskDir bool `json:"own_disk_dir,omitempty"`
	Verify
}

// ConsolidateRequest pulls every backing file that lives on backup storage
// into the VM's disks, so the VM no longer depends on backup storage.
type ConsolidateRequest struct {
	InStorage
	DomainUUID string `json:"domain_uuid"`
	// Verify: the backup files the VM's overlays read are hashed before
	// the block pull; a damaged one stops the consolidation and the VM
	// keeps running on its overlays.
	Verify
}

// ConsolidateResult lists the disks consolidated.
type ConsolidateResult struct {
	Disks []string `json:"disks"`
}

// Task kinds of disk changes.
const (
	KindAttachDisk = "vm.attach-disk"
	KindDetachDisk = "vm.detach-disk"
)

// AttachDiskRequest creates an empty qcow2 disk next to the VM's disks and
// attaches it (live too when the VM runs).
type AttachDiskRequest struct {
	DomainUUID string `json:"domain_uuid"`
	Size       int64  `json:"size"`
	Target     string `json:"target,omitempty"` // default: the first free vdX
}

// DetachDiskRequest detaches a disk (live too when the VM runs); its files stay.
type DetachDiskRequest struct {
	DomainUUID string `json:"domain_uuid"`
	Target     string `json:"target"`
}
