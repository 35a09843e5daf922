package api

import "time"

// Problem is an RFC 9457 problem document, the body of every error answer.
type Problem struct {
	Type   string `json:"type" doc:"URI reference naming the problem type"`
	Title  string `json:"title" doc:"short summary of the problem type"`
	Status int    `json:"status" doc:"HTTP status code"`
	Detail string `json:"detail" doc:"human-readable explanation"`
	Field  string `json:"field,omitempty" doc:"the request field that is wrong, when one is"`
}

// OfferingCreate is the body of POST /offerings.
type OfferingCreate struct {
	Name               string   `json:"name" doc:"unique among offerings not removed"`
	Description        string   `json:"description,omitempty"`
	Compress           bool     `json:"compress,omitempty"`
	Validate           bool     `json:"validate,omitempty"`
	ValidationSteps    []string `json:"validation_steps,omitempty" doc:"wait_for_boot, screenshot, execute_command; default screenshot when validate is set"`
	AllowQuickRestore  bool     `json:"allow_quick_restore,omitempty"`
	AllowExtractFile   bool     `json:"allow_extract_file,omitempty"`
	BackupChainSize    *int     `json:"backup_chain_size,omitempty" doc:"overrides setting backup.chain.size; 0 means unlimited"`
	CompressionLibrary string   `json:"compression_library,omitempty" doc:"zstd (default) or zlib"`
	StorageTag         string   `json:"storage_tag,omitempty" doc:"new chains go only to storages with this tag"`
}

// Offering is a backup offering.
type Offering struct {
	ID                 string     `json:"id"`
	Name               string     `json:"name"`
	Description        string     `json:"description"`
	Compress           bool       `json:"compress"`
	Validate           bool       `json:"validate"`
	ValidationSteps    []string   `json:"validation_steps"`
	AllowQuickRestore  bool       `json:"allow_quick_restore"`
	AllowExtractFile   bool       `json:"allow_extract_file"`
	BackupChainSize    *int       `json:"backup_chain_size"`
	CompressionLibrary string     `json:"compression_library"`
	StorageTag         string     `json:"storage_tag"`
	Created            time.Time  `json:"created"`
	Removed            *time.Time `json:"removed"`
}

// OfferingQuery filters GET /offerings.
type OfferingQuery struct {
	ID                string `query:"id"`
	Compress          bool   `query:"compress"`
	Validate          bool   `query:"validate"`
	AllowQuickRestore bool   `query:"allow_quick_restore"`
	AllowExtractFile  bool   `query:"allow_extract_file"`
	ShowRemoved       bool   `query:"show_removed"`
}

// Host is a KVM host with an agent.
type Host struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Zone              string            `json:"zone"`
	URI               string            `json:"uri"`
	LibvirtVersion    string            `json:"libvirt_version"`
	HypervisorVersion string            `json:"hypervisor_version"`
	CPUs              int               `json:"cpus"`
	MemoryBytes       uint64            `json:"memory_bytes"`
	StorageCapacity   uint64            `json:"storage_capacity"`
	StorageFree       uint64            `json:"storage_free"`
	Enabled           bool              `json:"enabled"`
	Local             bool              `json:"local" doc:"in-process agent of an all-in-one server"`
	LastSeen          time.Time         `json:"last_seen"`
	AgentSettings     map[string]string `json:"agent_settings" doc:"values from the host's agent configuration file"`
	Agent             string            `json:"agent" doc:"agent connection: local, Connected, Recovering, Disconnected, Revoked, or empty before the first contact"`
	AgentURL          string            `json:"agent_url,omitempty" doc:"where a remote agent serves"`
}

// VM is a libvirt domain known to knib.
type VM struct {
	ID          string    `json:"id" doc:"libvirt domain UUID"`
	Name        string    `json:"name"`
	Host        string    `json:"host"`
	State       string    `json:"state" doc:"Running, Stopped, Paused, Missing, BackingUp, BackupError, Restoring, RestoreError"`
	Account     string    `json:"account"`
	OfferingID  string    `json:"offering_id"`
	Offering    string    `json:"offering" doc:"offering name"`
	VCPUs       int       `json:"vcpus"`
	MemoryBytes uint64    `json:"memory_bytes"`
	Disks       []Disk    `json:"disks"`
	Seen        time.Time `json:"seen"`
	Busy        string    `json:"busy" doc:"the operation holding the VM, empty when idle"`
	ChainHead   string    `json:"chain_head" doc:"backup whose deltas are on primary storage"`
	LastError   string    `json:"last_error" doc:"why the VM needs attention (for example what recovery found missing)"`
}

// Disk is one disk of a VM.
type Disk struct {
	Target       string  `json:"target"`
	Device       string  `json:"device"`
	Bus          string  `json:"bus"`
	SourceType   string  `json:"source_type"`
	Source       string  `json:"source"`
	Format       string  `json:"format"`
	VirtualSize  int64   `json:"virtual_size"`
	BackingChain []Layer `json:"backing_chain" doc:"files below source, top to bottom"`
	Problem      string  `json:"problem,omitempty" doc:"why the host could not inspect the disk fully"`
}

// Layer is one file of a backing chain.
type Layer struct {
	Path   string `json:"path"`
	Format string `json:"format"`
}

// VMQuery filters GET /vms.
type VMQuery struct {
	Host string `query:"host"`
	Paging
}

// Paging selects one page of a list. Every list is paged: a request reads
// at most MaxPage items, never the whole catalogue. When more items follow,
// the answer carries their cursor in the NextCursorHeader header.
type Paging struct {
	Limit  int    `query:"limit" doc:"items per page: default 100, at most 1000"`
	Cursor string `query:"cursor" doc:"where the page starts: the Knib-Next-Cursor header of the page before"`
}

// Page sizes and the header that carries the next page's cursor.
const (
	DefaultPage      = 100
	MaxPage          = 1000
	NextCursorHeader = "Knib-Next-Cursor"
)

// VMAssign is the body of POST /vms/{vm}/assign.
type VMAssign struct {
	OfferingID string `json:"offering_id"`
}

// VMOwner is the body of POST /vms/{vm}/owner.
type VMOwner struct {
	Account string `json:"account" doc:"account name or id"`
}

// Setting is one setting with its effective value at the asked scope.
type Setting struct {
	Key         string   `json:"key"`
	Value       string   `json:"value"`
	Source      string   `json:"source" doc:"where the value comes from: default, global, zone, host, account, agent"`
	Default     string   `json:"default"`
	Type        string   `json:"type"`
	Unit        string   `json:"unit"`
	Scopes      []string `json:"scopes" doc:"scopes the setting can be set at besides global"`
	Description string   `json:"description"`
}

// SettingQuery selects the scope GET /settings resolves values for.
type SettingQuery struct {
	Scope   string `query:"scope" doc:"global (default), zone, host or account"`
	Zone    string `query:"zone"`
	Host    string `query:"host"`
	Account string `query:"account"`
}

// SettingUpdate is the body of PUT /settings/{key}.
type SettingUpdate struct {
	Value   string `json:"value"`
	Zone    string `json:"zone,omitempty"`
	Host    string `json:"host,omitempty"`
	Account string `json:"account,omitempty"`
}

// VMDetail is one VM detail (per-VM validation configuration).
type VMDetail struct {
	Key              string `json:"key"`
	Value            string `json:"value"`
	ReadOnlyForUsers bool   `json:"read_only_for_users"`
	Description      string `json:"description"`
}

// VMDetailUpdate is the body of PUT /vms/{vm}/details/{key}.
type VMDetailUpdate struct {
	Value string `json:"value"`
}

// SessionLogin is the body of POST /session: an account's name and
// password, or an API token.
type SessionLogin struct {
	Account  string `json:"account,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

// Session is the answer of POST and GET /session. CSRFToken goes with every
// write made with the session cookie, as the X-CSRF-Token header.
type Session struct {
	Account   string    `json:"account"`
	Role      string    `json:"role"`
	CSRFToken string    `json:"csrf_token,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// PasswordUpdate is the body of PUT /accounts/{account}/password; a user
// changing their own password gives the current one.
type PasswordUpdate struct {
	Password        string `json:"password"`
	CurrentPassword string `json:"current_password,omitempty"`
}

// AccountCreate is the body of POST /accounts.
type AccountCreate struct {
	Name string `json:"name"`
}

// Account owns VMs and tokens.
type Account struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Limits  Limits    `json:"limits"`
	// Usage: what the account's VMs take (shown by GET /accounts/{account}).
	Usage *Usage `json:"usage,omitempty"`
}

// Limits are an account's resource limits; -1 is unlimited.
type Limits struct {
	VMs         int64 `json:"vms" doc:"number of VMs; -1: unlimited"`
	VCPUs       int64 `json:"vcpus" doc:"vCPUs of all VMs; -1: unlimited"`
	MemoryBytes int64 `json:"memory_bytes" doc:"memory of all VMs in bytes; -1: unlimited"`
}

// Usage is what an account's VMs (and its running validation VMs) take.
type Usage struct {
	VMs         int64 `json:"vms"`
	VCPUs       int64 `json:"vcpus"`
	MemoryBytes int64 `json:"memory_bytes"`
}

// LimitsUpdate is the body of PUT /accounts/{account}/limits: the limits
// given are replaced, the others kept.
type LimitsUpdate struct {
	VMs         *int64 `json:"vms,omitempty" doc:"number of VMs; -1: unlimited"`
	VCPUs       *int64 `json:"vcpus,omitempty" doc:"vCPUs of all VMs; -1: unlimited"`
	MemoryBytes *int64 `json:"memory_bytes,omitempty" doc:"memory of all VMs in bytes; -1: unlimited"`
}

// TokenCreate is the body of POST /tokens.
type TokenCreate struct {
	Account string `json:"account" doc:"account name or id"`
	Role    string `json:"role" doc:"admin or user"`
	Name    string `json:"name,omitempty"`
}

// TokenInfo is a stored API token, without its secret.
type TokenInfo struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Role    string    `json:"role"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// TokenQuery filters GET /tokens.
type TokenQuery struct {
	Account string `query:"account" doc:"only this account's tokens"`
}

// Token is a newly created API token; the secret is shown only once.
type Token struct {
	ID      string `json:"id"`
	Account string `json:"account"`
	Role    string `json:"role"`
	Name    string `json:"name"`
	Token   string `json:"token" doc:"the secret; it is stored hashed and cannot be shown again"`
}

// Operation is a long-running request.
type Operation struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	VMID     string    `json:"vm_id"`
	State    string    `json:"state" doc:"Pending, Running, Succeeded or Failed"`
	Progress float64   `json:"progress"`
	Message  string    `json:"message"`
	Result   any       `json:"result" schema:"opresult" doc:"the result of a succeeded operation; its schema is chosen by kind"`
	Error    string    `json:"error"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// EventQuery is the query of GET /events.
type EventQuery struct {
	Operation string `query:"operation" doc:"follow this operation only; the stream ends after its final state"`
}

// OperationQuery filters GET /operations.
type OperationQuery struct {
	All bool `query:"all" doc:"include finished operations"`
	Paging
}

// GuestExec is the body of POST /vms/{vm}/guest-exec (admin): runs a program
// in the guest through the guest agent.
type GuestExec struct {
	Path       string   `json:"path"`
	Args       []string `json:"args,omitempty"`
	TimeoutSec int      `json:"timeout_sec,omitempty" doc:"default 30"`
}

// GuestExecResult is the outcome of a guest program.
type GuestExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

// Empty is the body of requests that carry none.
type Empty struct{}

// BackupCreate is the body of POST /vms/{vm}/backups.
type BackupCreate struct {
	Isolated bool `json:"isolated,omitempty" doc:"a full backup outside the chain; the chain is left untouched"`
	Quiesce  bool `json:"quiesce,omitempty" doc:"freeze the guest's file systems through the guest agent during the snapshot"`
}

// Backup is one backup of a VM.
type Backup struct {
	ID          string       `json:"id"`
	VMID        string       `json:"vm_id"`
	VMName      string       `json:"vm_name"`
	StorageID   string       `json:"storage_id" doc:"the backup storage holding its files"`
	Type        string       `json:"type" doc:"full or incremental"`
	Isolated    bool         `json:"isolated"`
	ParentID    string       `json:"parent_id"`
	Position    int          `json:"position" doc:"1 for a full backup, parent's + 1 for an incremental"`
	EndOfChain  bool         `json:"end_of_chain" doc:"the next backup after this one is full"`
	ChainHead   bool         `json:"chain_head" doc:"this backup's deltas are on primary storage: the next incremental builds on it"`
	Status      string       `json:"status" doc:"BackingUp, BackedUp, Failed, Error, Removed, Restoring"`
	Size        int64        `json:"size" doc:"physical bytes of the backup files"`
	VirtualSize int64        `json:"virtual_size"`
	Created     time.Time    `json:"created"`
	Error       string       `json:"error"`
	Files       []BackupFile `json:"files"`

	CompressionStatus string `json:"compression_status" doc:"Uncompressed, Compressing, FinalizingCompression, Compressed, CompressionError"`
	UncompressedSize  int64  `json:"uncompressed_size"`
	ValidationStatus  string `json:"validation_status" doc:"NotValidated, Validating, Valid, NotValid, UnableToValidate"`
	ValidationReason  string `json:"validation_reason"`
	HasScreenshot     bool   `json:"has_screenshot"`

	ValidationSteps []ValidationStep `json:"validation_steps" doc:"the steps the last validation ran, in order, with their outcomes"`

	Copies []BackupCopy `json:"copies" doc:"its offsite copies"`
}

// ValidationStep is what one step of a backup's validation did.
type ValidationStep struct {
	Step    string `json:"step" doc:"wait_for_boot, screenshot, execute_command; hash for a re-validation"`
	Outcome string `json:"outcome" doc:"passed, failed or skipped (the step did not run)"`
	Detail  string `json:"detail,omitempty" doc:"why the step failed or was skipped, or what it produced"`
}

// BackupFile is the file of one disk in a backup.
type BackupFile struct {
	Disk        string `json:"disk"`
	Path        string `json:"path" doc:"relative to the backup storage root"`
	Full        bool   `json:"full"`
	Size        int64  `json:"size"`
	VirtualSize int64  `json:"virtual_size"`
	Hash        string `json:"hash" doc:"xxh3-128 of the file's bytes"`
}

// BackupQuery filters GET /backups.
type BackupQuery struct {
	VM string `query:"vm" doc:"VM name or uuid"`
	Paging
}

// BackupDelete is the body of POST /backups/delete.
type BackupDelete struct {
	IDs    []string `json:"ids"`
	Forced bool     `json:"forced,omitempty" doc:"forget backups whose files cannot be deleted"`
}

// DeletePlan is what POST /backups/delete would do with the same ids
// (POST /backups/delete/plan, a dry run that changes nothing).
type DeletePlan struct {
	VMs []VMDeletePlan `json:"vms"`
}

// VMDeletePlan is what a deletion does to one VM's chains.
type VMDeletePlan struct {
	VM            string   `json:"vm"`
	MarkRemoved   []string `json:"mark_removed" doc:"kept on storage and marked Removed: newer backups need their files; they go with the last of those"`
	Deleted       []string `json:"deleted" doc:"their files go and they leave the catalogue, Removed ancestors that nothing needs any more included"`
	CatalogueOnly []string `json:"catalogue_only" doc:"failed backups without files that only leave the catalogue"`
	MergeHead     bool     `json:"merge_head" doc:"the chain head goes: its deltas on the VM's disks are merged first, and the VM's next backup is full"`
}

// Restore is the body of POST /backups/{id}/restore.
type Restore struct {
	QuickRestore  bool   `json:"quick_restore,omitempty" doc:"boot from the backup at once and consolidate while running (offering must allow it)"`
	Host          string `json:"host,omitempty" doc:"host to restore onto (admin only): any enabled host of the backup's zone; the VM moves there"`
	AcceptDamaged bool   `json:"accept_damaged,omitempty" doc:"restore even when backup files no longer match their recorded hashes (the result lists them)"`
	From          string `json:"from,omitempty" doc:"remote to fetch the backup's chain from first (restore when the local files are gone)"`
}

// RestoreVolume is the body of POST /backups/{id}/restore-volume.
type RestoreVolume struct {
	Disk          string `json:"disk" doc:"disk target in the backup, e.g. vdb"`
	VM            string `json:"vm" doc:"VM (name or uuid) to attach the new disk to"`
	QuickRestore  bool   `json:"quick_restore,omitempty"`
	Host          string `json:"host,omitempty" doc:"must be the VM's own host (admin only)"`
	AcceptDamaged bool   `json:"accept_damaged,omitempty" doc:"restore even when backup files no longer match their recorded hashes (the result lists them)"`
	From          string `json:"from,omitempty" doc:"remote to fetch the backup's chain from first (restore when the local files are gone)"`
}

// CreateVM is the body of POST /backups/{id}/create-vm.
type CreateVM struct {
	Name          string `json:"name"`
	QuickRestore  bool   `json:"quick_restore,omitempty"`
	Start         bool   `json:"start,omitempty"`
	Host          string `json:"host,omitempty" doc:"host to define the new VM on (admin only): any enabled host of the backup's zone"`
	AcceptDamaged bool   `json:"accept_damaged,omitempty" doc:"restore even when backup files no longer match their recorded hashes (the result lists them)"`
	From          string `json:"from,omitempty" doc:"remote to fetch the backup's chain from first (restore when the local files are gone)"`
}

// AttachDisk is the body of POST /vms/{vm}/disks.
type AttachDisk struct {
	Size   int64  `json:"size" doc:"bytes"`
	Target string `json:"target,omitempty" doc:"device name, default the first free vdX"`
}

// SnapshotCreate is the body of POST /vms/{vm}/snapshots.
type SnapshotCreate struct {
	Name string `json:"name,omitempty"`
}

// Snapshot is a disk-only VM snapshot.
type Snapshot struct {
	ID      string         `json:"id"`
	VMID    string         `json:"vm_id"`
	Name    string         `json:"name"`
	Status  string         `json:"status" doc:"Ready; Removed (deleted, files kept while needed); Deleted (merged and gone)"`
	Created time.Time      `json:"created"`
	Files   []SnapshotFile `json:"files"`
}

// SnapshotFile is one disk's frozen file of a snapshot.
type SnapshotFile struct {
	Disk   string `json:"disk"`
	Frozen string `json:"frozen" doc:"the file holding the disk's state at the snapshot (with its backing chain)"`
}

// Job is a background service job (seed: listBackupServiceJobs).
type Job struct {
	ID        string     `json:"id"`
	Type      string     `json:"type" doc:"StartCompression, FinalizeCompression, BackupValidation or BackupCopy"`
	BackupID  string     `json:"backup_id"`
	VMID      string     `json:"vm_id"`
	Host      string     `json:"host"`
	Zone      string     `json:"zone"`
	Attempts  int        `json:"attempts"`
	Scheduled time.Time  `json:"scheduled"`
	Started   *time.Time `json:"started"`
	Ended     *time.Time `json:"ended"`
	State     string     `json:"state" doc:"Queued, Running, Succeeded or Failed"`
	LastError string     `json:"last_error"`
}

// JobQuery filters GET /jobs.
type JobQuery struct {
	ID        string `query:"id"`
	Backup    string `query:"backup"`
	Host      string `query:"host" doc:"implies executing"`
	Zone      string `query:"zone"`
	Type      string `query:"type"`
	Executing bool   `query:"executing"`
	Scheduled bool   `query:"scheduled" doc:"queued for later"`
	All       bool   `query:"all" doc:"finished jobs too"`
	Paging
}

// ScheduleSpec is the body of POST /vms/{vm}/schedules and PUT /schedules/{id}.
type ScheduleSpec struct {
	Interval   string `json:"interval" doc:"hourly, daily, weekly or monthly"`
	At         string `json:"at" doc:"MM (hourly), HH:MM (daily), DAY HH:MM (weekly), D HH:MM (monthly)"`
	Timezone   string `json:"timezone,omitempty" doc:"IANA time zone, default UTC"`
	MaxBackups int    `json:"max_backups,omitempty" doc:"keep at most this many backups of the schedule (0: all)"`
	Isolated   bool   `json:"isolated,omitempty" doc:"take isolated (full, outside the chain) backups"`
}

// Schedule is a backup schedule.
type Schedule struct {
	ID         string    `json:"id"`
	VMID       string    `json:"vm_id"`
	Interval   string    `json:"interval"`
	At         string    `json:"at"`
	Timezone   string    `json:"timezone"`
	MaxBackups int       `json:"max_backups"`
	Isolated   bool      `json:"isolated"`
	NextRun    time.Time `json:"next_run"`
	Created    time.Time `json:"created"`
}

// FileQuery is the query of GET /backups/{id}/files.
type FileQuery struct {
	Path string `query:"path" doc:"directory to list, absolute inside the file system; empty: list the volumes"`
	Disk string `query:"disk" doc:"volume: a disk (vda) with one file system, a partition (vda1) or VG/LV; empty when the backup has one file system"`
}

// FileVolume is a device of a backup that holds a file system.
type FileVolume struct {
	Name      string `json:"name" doc:"vda (whole disk), vda1 (partition) or VG/LV"`
	Disk      string `json:"disk,omitempty"`
	Partition int    `json:"partition,omitempty"`
	Table     string `json:"table,omitempty" doc:"gpt or msdos"`
	FSType    string `json:"fs_type"`
	Label     string `json:"label,omitempty"`
	Size      int64  `json:"size"`
	Total     int64  `json:"total,omitempty"`
	Used      int64  `json:"used,omitempty"`
	Browsable bool   `json:"browsable"`
}

// FileEntry is one directory entry of a backup's file system.
type FileEntry struct {
	Name   string    `json:"name"`
	Type   string    `json:"type" doc:"file, dir, symlink, char, block, fifo, socket"`
	Size   int64     `json:"size"`
	Mode   uint32    `json:"mode" doc:"permission bits with setuid, setgid and sticky"`
	UID    int64     `json:"uid"`
	GID    int64     `json:"gid"`
	MTime  time.Time `json:"mtime"`
	Links  int64     `json:"links"`
	Target string    `json:"target,omitempty" doc:"symlink target"`
}

// FileListing is the answer of GET /backups/{id}/files: the volumes, or a
// directory's entries.
type FileListing struct {
	Backup  string       `json:"backup"`
	Volumes []FileVolume `json:"volumes,omitempty"`
	Volume  string       `json:"volume,omitempty"`
	Path    string       `json:"path,omitempty"`
	Entries []FileEntry  `json:"entries,omitempty"`
}

// FileExtract is the body of POST /backups/{id}/files/extract.
type FileExtract struct {
	Paths       []string `json:"paths" doc:"absolute paths inside the file system: files, directories (whole trees), symlinks"`
	Disk        string   `json:"disk,omitempty"`
	Compression string   `json:"compression,omitempty" doc:"zstd: the tar stream is zstd-compressed"`
}

// FileRestore is the body of POST /backups/{id}/files/restore.
type FileRestore struct {
	Paths     []string `json:"paths"`
	Disk      string   `json:"disk,omitempty"`
	VM        string   `json:"vm" doc:"running VM (name or uuid) with a guest agent"`
	To        string   `json:"to" doc:"directory in the guest; each path goes to TO/path"`
	Overwrite bool     `json:"overwrite,omitempty" doc:"replace existing files; without it nothing is written when a target exists"`
}
