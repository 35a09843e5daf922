package hypervisor

import (
	"context"
	"time"
)

// DiskSnapshot names the overlay file a disk-only snapshot puts on a disk.
type DiskSnapshot struct {
	Target string
	File   string
	// Reuse: File exists already, a qcow2 overlay of the disk's current top
	// (created beforehand, so that the snapshot itself only switches the
	// disk over: the guest's I/O is held for less).
	Reuse bool
}

// TimedSnapshotter is ChainOps whose snapshot also reports how long the
// hypervisor's snapshot call itself took (the span in which the guest's
// I/O can be held), without the preparation around it.
type TimedSnapshotter interface {
	SnapshotDisksTimed(ctx context.Context, uuid string, disks []DiskSnapshot, quiesce bool) (time.Duration, error)
}

// ChainOps are the operations on a domain's disk chains that backups,
// deletions and restores need.
//
// Contract:
//   - SnapshotDisks takes one atomic external disk-only snapshot of a
//     running domain: every listed disk gets the named new qcow2 overlay as
//     its active layer, or none does. Disks not listed are left alone. With
//     quiesce the guest's file systems are frozen through the guest agent,
//     and the call fails without a connected agent.
//   - BlockCommit starts merging top into base (base must be below top) on a
//     running domain; active is set when top is the active layer.
//     WaitBlockJob then waits until no job runs on the disk, pivoting an
//     active commit when it is ready. WaitBlockJob returns nil at once when
//     no job runs, so it also finishes jobs a killed process left behind.
//   - BlockPull starts copying all backing data into the active layer of a
//     running domain's disk; WaitBlockJob waits for it.
//   - When WaitBlockJob returns nil after a job ran (one it saw, or the
//     one the caller started, JobWait.Started, which may have ended before
//     the wait looked), what the job wrote is on disk, metadata included
//     (the domain's images were flushed): a hypervisor that dies
//     afterwards loses none of it. It returns an error when the domain
//     stopped meanwhile, wrapping ErrLeftPaused when the flush paused the
//     domain and could not resume it.
//   - SetDiskSources rewrites the stored definition so that the given disks
//     use the given file and format (for stopped domains).
//   - BootFiles lists the external boot files of the stored definition that
//     exist (kernel, initrd, device tree, UEFI NVRAM).
//   - DefineDomain defines (or redefines, same uuid) a persistent domain from
//     XML and returns its uuid.
//   - UndefineDomain removes a stopped domain's definition (not its files).
//   - AttachDisk adds a file disk to the stored definition, and with live
//     also to the running domain.
//   - DetachDisk removes a disk from the stored definition, and with live
//     also from the running domain; the disk's files stay.
//   - StartDomain starts a stopped domain; starting a running one is fine.
//   - ResumeDomain resumes a paused domain; a running one is fine.
type ChainOps interface {
	DefineDomain(ctx context.Context, xml string) (uuid string, err error)
	UndefineDomain(ctx context.Context, uuid string) error
	AttachDisk(ctx context.Context, uuid string, d NewDisk, live bool) error
	DetachDisk(ctx context.Context, uuid, target string, live bool) error
	StartDomain(ctx context.Context, uuid string) error
	ResumeDomain(ctx context.Context, uuid string) error
	SnapshotDisks(ctx context.Context, uuid string, disks []DiskSnapshot, quiesce bool) error
	BlockCommit(ctx context.Context, uuid, target, top, base string, active bool) error
	BlockPull(ctx context.Context, uuid, target string) error
	WaitBlockJob(ctx context.Context, uuid, target string, w JobWait) error
	SetDiskSources(ctx context.Context, uuid string, sources map[string]Layer) error
	BootFiles(ctx context.Context, uuid string) ([]string, error)
}

// JobWait says what a WaitBlockJob waits for.
type JobWait struct {
	// Started says the caller has just started a job on the disk: the wait
	// makes it durable even when it ended before the wait first looked.
	// Without it, a disk with no job is a wait for nothing (finishing what
	// a killed process left).
	Started bool
	// Progress, if not nil, gets the job's (cur, end) while it runs.
	Progress func(cur, end uint64)
}

// NewDisk is a file disk to attach.
type NewDisk struct {
	Target string // e.g. "vdc"
	Bus    string // e.g. "virtio"
	Path   string
	Format string
}

// Transient domains (validation VMs) live only while they run.
type Transient interface {
	// CreateTransient starts a transient domain from XML; it disappears when
	// destroyed.
	CreateTransient(ctx context.Context, xml string) (uuid string, err error)
	// DestroyDomain powers a domain off at once; an absent domain is fine.
	DestroyDomain(ctx context.Context, uuid string) error
	// DomainsNamed lists the uuids of the domains whose name starts with prefix.
	DomainsNamed(ctx context.Context, prefix string) ([]string, error)
}
