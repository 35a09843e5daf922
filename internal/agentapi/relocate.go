package agentapi

// Task kinds that move a VM between hosts.
const (
	// KindRestoreHere restores a backup onto this host for a VM that lives
	// (or lived) on another host of the zone.
	KindRestoreHere = "backup.restore-here"
	// KindUndefine removes a stopped VM's definition from this host, leaving
	// its disk files alone.
	KindUndefine = "vm.undefine"
)

// RestoreHereRequest defines the backup's VM on this host from the
// backup's domain.xml (same uuid and name), with its disks as new files in
// this host's disk directory (agent configuration: <disk dir>/<uuid>/<disk>.qcow2),
// never at the paths of the stored definition, which belong to the VM's
// old host. Quick: the disks are thin overlays on the backup files and the
// VM starts; otherwise they are full copies, checked against the backup,
// and the VM stays shut off.
//
// Idempotent: when the VM is already defined here with its disks in this
// host's disk directory (an earlier attempt), the disks are written again
// while it is shut off, and a quick restore whose VM already runs is done.
// A VM of that uuid defined here with other disks is refused, unchanged.
type RestoreHereRequest struct {
	InStorage
	DomainUUID string        `json:"domain_uuid"`
	Dir        string        `json:"dir"`
	Files      []RestoreFile `json:"files"`
	Quick      bool          `json:"quick"`
	Verify
}

// UndefineRequest names the VM to undefine. A VM that is not defined is
// fine (already done); a running one is refused.
type UndefineRequest struct {
	DomainUUID string `json:"domain_uuid"`
}

// UndefineResult says whether a definition was removed and which disk files
// it named (left in place).
type UndefineResult struct {
	Undefined bool     `json:"undefined"`
	Files     []string `json:"files"`
}
