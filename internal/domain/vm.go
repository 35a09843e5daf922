package domain

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// VMState is the state knib shows for a VM. The first group mirrors the
// hypervisor; the second is set by knib while it works on the VM and wins over
// the hypervisor's view until the work ends.
type VMState string

// Hypervisor-derived states.
const (
	VMRunning VMState = "Running"
	VMStopped VMState = "Stopped"
	VMPaused  VMState = "Paused"
	VMUnknown VMState = "Unknown"
	// VMMissing: the domain is no longer defined on its host.
	VMMissing VMState = "Missing"
)

// States knib sets while it works on a VM.
const (
	VMBackingUp    VMState = "BackingUp"
	VMBackupError  VMState = "BackupError"
	VMRestoring    VMState = "Restoring"
	VMRestoreError VMState = "RestoreError"
)

// IsWorkState reports whether s is a state knib sets itself (as opposed to one
// read from the hypervisor).
func (s VMState) IsWorkState() bool {
	switch s {
	case VMBackingUp, VMBackupError, VMRestoring, VMRestoreError:
		return true
	}
	return false
}

// VM is a libvirt domain knib knows about.
type VM struct {
	ID         string // libvirt domain UUID
	Name       string
	HostID     string
	State      VMState
	WorkState  VMState // knib's own state, empty when idle
	AccountID  string
	OfferingID string // empty: not assigned
	Disks      []Disk
	// VCPUs and MemoryBytes: the domain's configured size, as its host
	// reports it.
	VCPUs       int
	MemoryBytes uint64
	Seen        time.Time // last time the hypervisor reported it
	Busy        string    // the operation holding the VM, "" when idle
	ChainHead   string    // backup whose deltas are on primary, "" when none
	LastError   string    // why the VM needs attention, "" when fine
}

// EffectiveState is what users see: knib's work state when set, else the
// hypervisor state.
func (v VM) EffectiveState() VMState {
	if v.WorkState != "" {
		return v.WorkState
	}
	return v.State
}

// Disk is one disk of a VM as its host reports it.
type Disk struct {
	Target       string // guest device, e.g. "vda"
	Device       string // "disk", "cdrom", ...
	Bus          string
	SourceType   string // "file", "block", "network", "volume", ""
	Source       string // active (top) file
	Format       string // "qcow2", "raw", ...
	VirtualSize  int64
	BackingChain []Layer // below Source, top to bottom
	Problem      string  // set when the host could not inspect the disk fully
}

// Layer is one file of a disk's backing chain.
type Layer struct {
	Path   string
	Format string
}

// BackupEligible says whether knib can back this disk up with external qcow2
// overlays: it must be a file (qcow2 or raw). CD-ROMs and floppies are not
// backed up and do not make a VM ineligible.
func (d Disk) BackupEligible() error {
	if d.Device != "" && d.Device != "disk" {
		return nil
	}
	if d.Problem != "" {
		return fmt.Errorf("disk %s cannot be inspected: %s", d.Target, d.Problem)
	}
	if d.SourceType != "file" {
		return fmt.Errorf("disk %s is not file-based (source type %q)", d.Target, d.SourceType)
	}
	if d.Format != "qcow2" && d.Format != "raw" {
		return fmt.Errorf("disk %s has format %q, want qcow2 or raw", d.Target, d.Format)
	}
	return nil
}

// BackedUpDisks returns the disks a backup copies (device "disk").
func (v VM) BackedUpDisks() []Disk {
	var out []Disk
	for _, d := range v.Disks {
		if d.Device == "" || d.Device == "disk" {
			out = append(out, d)
		}
	}
	return out
}

// CheckAssignable returns a *InvalidError naming the first disk that keeps the
// VM from being assigned to an offering.
func (v VM) CheckAssignable() error {
	if len(v.BackedUpDisks()) == 0 {
		return Invalid("vm", "VM %s has no disk to back up", v.Name)
	}
	for _, d := range v.Disks {
		if err := d.BackupEligible(); err != nil {
			return Invalid("vm", "VM %s cannot be backed up: %v", v.Name, err)
		}
	}
	return nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsUUID reports whether s is a textual UUID.
func IsUUID(s string) bool { return uuidRE.MatchString(s) }

// ValidateRef checks a reference given by a caller (a name or an id): not
// empty, bounded, no control characters, no path separators.
func ValidateRef(field, ref string) error {
	if err := ValidateName(field, ref); err != nil {
		return err
	}
	if strings.ContainsAny(ref, "/\\") {
		return Invalid(field, "must not contain path separators")
	}
	return nil
}

var diskTargetRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// ValidateDiskTarget checks a guest device name given by a caller (vda,
// sdb, hdc): a lower-case letter, then up to 15 letters or digits. It
// reaches domain XML and file names.
func ValidateDiskTarget(field, target string) error {
	if !diskTargetRE.MatchString(target) {
		return Invalid(field, "want a device name like vdb (lower-case letters and digits, at most 16), got %q", target)
	}
	return nil
}

// Host is a machine running libvirt with a knib agent.
type Host struct {
	ID                string
	Name              string
	ZoneID            string
	URI               string
	LibvirtVersion    string
	HypervisorVersion string
	CPUs              int
	MemoryBytes       uint64
	StorageCapacity   uint64 // bytes of the backup storage as the host sees it
	StorageFree       uint64
	StoragePath       string // where the host mounts the backup storage
	Enabled           bool
	Local             bool // in-process agent of an all-in-one server
	LastSeen          time.Time
	// AgentSettings are the values of the host's own agent configuration file.
	AgentSettings map[string]string
}

// Zone groups hosts and backup storages.
type Zone struct {
	ID   string
	Name string
}

// Role is what a token may do.
type Role string

// Roles.
const (
	RoleAdmin Role = "admin"
	RoleUser  Role = "user"
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case RoleAdmin, RoleUser:
		return Role(s), nil
	}
	return "", Invalid("role", "unknown role %q, want admin or user", s)
}

// Account owns VMs and tokens.
type Account struct {
	ID      string
	Name    string
	Created time.Time
	Limits  Limits
}

// Principal is the authenticated caller of a request.
type Principal struct {
	AccountID   string
	AccountName string
	Role        Role
	TokenID     string
}

// IsAdmin reports whether the principal has the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

// CanSeeVM reports whether the principal may see and act on vm: admins see
// all VMs, users only those of their account.
func (p Principal) CanSeeVM(vm VM) bool {
	return p.IsAdmin() || (p.AccountID != "" && vm.AccountID == p.AccountID)
}

// RequireAdmin returns ErrForbidden wrapped with the action for non-admins.
func (p Principal) RequireAdmin(action string) error {
	if p.IsAdmin() {
		return nil
	}
	return fmt.Errorf("%s needs the admin role: %w", action, ErrForbidden)
}

// DependsOn reports whether any disk's chain has a file under dir: a VM
// quick-restored from backup files depends on them until consolidated.
func (v VM) DependsOn(dir string) bool {
	if dir == "" {
		return false
	}
	prefix := strings.TrimRight(dir, "/") + "/"
	for _, d := range v.Disks {
		for _, l := range d.BackingChain {
			if strings.HasPrefix(l.Path, prefix) {
				return true
			}
		}
	}
	return false
}

// ForeignSnapshot is a snapshot of a VM that knib did not make, as its
// host reports it.
type ForeignSnapshot struct {
	Name     string
	Memory   bool
	DiskOnly bool
}

// CheckNoForeignSnapshots refuses a VM with snapshots made outside knib
// (the specification refuses an offering assignment for disk+memory VM
// snapshots and for disk-only ones of another strategy): their overlays
// and memory states are not in knib's chains, so a backup would miss them
// and a merge or a restore would break them.
func CheckNoForeignSnapshots(vm string, snaps []ForeignSnapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	names := make([]string, 0, len(snaps))
	for _, s := range snaps {
		kind := "disk-only"
		switch {
		case s.Memory:
			kind = "with memory"
		case !s.DiskOnly:
			kind = "internal"
		}
		names = append(names, s.Name+" ("+kind+")")
	}
	return fmt.Errorf("vm %s has %d snapshot(s) made outside knib: %s; knib backs up only VMs without them (delete them, e.g. virsh snapshot-delete): %w",
		vm, len(snaps), strings.Join(names, ", "), ErrConflict)
}
