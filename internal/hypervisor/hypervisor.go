package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/knib/knib/internal/guestagent"
)

// ErrDomainNotFound is wrapped by every error that means "no domain with
// this UUID on this host", including a UUID that is not well-formed.
var ErrDomainNotFound = errors.New("domain not found")

// ErrLeftPaused is wrapped by an error after which a domain that was
// running is left paused by this process: it was paused to flush its images
// (WaitBlockJob) and could not be resumed, typically because it was
// migrated to another host while paused, where it is paused now. Whoever
// gets it resumes the domain where it lives (ChainOps.ResumeDomain).
var ErrLeftPaused = errors.New("the domain was left paused after a flush")

// ErrClosed is wrapped by errors from a Hypervisor used after Close.
var ErrClosed = errors.New("hypervisor connection closed")

// ErrUnsupported is wrapped by errors for an operation the hypervisor or
// the domain's configuration cannot do (e.g. a screenshot of a domain
// without display, or of a domain that is not running).
var ErrUnsupported = errors.New("operation not supported")

// HostInfo describes the host and its hypervisor.
type HostInfo struct {
	Hostname string
	// URI is the hypervisor connection URI, e.g. "qemu:///system".
	URI string
	// LibvirtVersion and HypervisorVersion are "major.minor.micro".
	LibvirtVersion    string
	HypervisorVersion string
	// CPUs is the number of active host CPUs.
	CPUs int
	// MemoryBytes is the host's memory.
	MemoryBytes uint64
}

// DomainState is a domain's coarse run state.
type DomainState string

// The domain states. StateOther covers libvirt's "no state", "blocked" and
// "shutting down". StateCrashed is a guest crash kept by libvirt, or a
// domain shut off because its QEMU process died (nobody shut it down).
const (
	StateRunning     DomainState = "running"
	StatePaused      DomainState = "paused"
	StateShutoff     DomainState = "shutoff"
	StateCrashed     DomainState = "crashed"
	StatePMSuspended DomainState = "pmsuspended"
	StateOther       DomainState = "other"
)

// Domain is a virtual machine and its disks.
type Domain struct {
	// UUID in canonical lower-case form.
	UUID  string
	Name  string
	State DomainState
	// Persistent is true for a defined domain, false for a transient one.
	Persistent bool
	// VCPUs and MemoryBytes are the domain's configured size (its maximum
	// vCPUs and its memory), what account limits count.
	VCPUs       int
	MemoryBytes uint64
	// Disks in the order of the domain definition.
	Disks []Disk
	// Snapshots are the domain's snapshots that the hypervisor keeps
	// metadata for. knib's own disk-only snapshots carry none, so each of
	// these was made outside knib.
	Snapshots []Snapshot
}

// Snapshot is a domain snapshot known to the hypervisor.
type Snapshot struct {
	Name string
	// Memory is true when the snapshot holds the VM's memory state.
	Memory bool
	// DiskOnly is true for an external disk-only snapshot.
	DiskOnly bool
}

// Disk is one disk device of a domain.
type Disk struct {
	// Target is the device name in the guest's bus namespace, e.g. "vda".
	Target string
	// Device is "disk", "cdrom", "floppy" or "lun".
	Device string
	// Bus is "virtio", "scsi", "sata", "ide", ... as configured.
	Bus string
	// SourceType is "file", "block", "network", "volume", "dir", or "" for
	// a disk without source (an empty cdrom).
	SourceType string
	// Source is the active layer: a path for file and block disks (and the
	// directory for dir disks); "protocol:name" for network disks;
	// "pool/volume" for volume disks; "" without source.
	Source string
	// Format is the driver type of the active layer: "qcow2", "raw", ...
	Format string
	// VirtualSize is the guest-visible size in bytes; 0 when unknown (see
	// Problem) or without source.
	VirtualSize int64
	// BackingChain lists the images below Source, top to bottom, as
	// libvirt sees them (or, where libvirt has not looked, as qemu-img
	// does). Empty when Source has no backing file.
	BackingChain []Layer
	// Problem is set when the disk could not be fully inspected (its image
	// unreadable, qemu-img failing, ...); BackingChain and VirtualSize are
	// then unreliable, and callers must not back the disk up.
	Problem string
}

// Layer is one image of a backing chain.
type Layer struct {
	// Path of the image (or the description, as for Disk.Source).
	Path string
	// Format of the image, e.g. "qcow2"; "" when unknown.
	Format string
}

// Hypervisor is a connection to the hypervisor of the local host.
//
// Contract, for every implementation:
//   - All methods are safe for concurrent use. Read methods (HostInfo,
//     ListDomains, Domain, DomainXML) have no side effects and may be
//     retried freely.
//   - ctx bounds each call; an ended ctx yields an error wrapping ctx.Err()
//     at the latest when the call returns.
//   - A method taking a uuid returns an error wrapping ErrDomainNotFound
//     when no such domain exists (also for a malformed uuid). Uuids are
//     accepted in any letter case, with or without dashes; returned ones
//     are canonical lower-case with dashes.
//   - After Close, every method returns an error wrapping ErrClosed.
//
// Methods:
//
// HostInfo describes the host; every field is filled.
//
// ListDomains returns every domain of the host, running or not, each as
// Domain would return it. A domain vanishing while it is being listed is
// left out rather than failing the call.
//
// Domain returns one domain. Its Disks describe the live configuration of
// a running domain and the stored one of a stopped domain.
//
// DomainXML returns the domain's libvirt XML: the live definition, or with
// inactive the stored (next-boot) definition. Secure fields are omitted.
//
// AgentCommand (guestagent.Transport) sends one command to the domain's
// guest agent; see guestagent.Transport. It bounds the wait by ctx's
// deadline (30 s when ctx has none). A domain that is not running, or has
// no connected agent, yields an error wrapping
// guestagent.ErrAgentUnavailable.
//
// Screenshot writes an image of the domain's first display to w and
// returns its MIME type (e.g. "image/png"). A domain that is not running
// or has no display yields an error wrapping ErrUnsupported. Bytes may
// have been written to w when an error is returned.
//
// Close releases the connection. It is idempotent: later calls return nil.
type Hypervisor interface {
	HostInfo(ctx context.Context) (HostInfo, error)
	ListDomains(ctx context.Context) ([]Domain, error)
	Domain(ctx context.Context, uuid string) (Domain, error)
	DomainXML(ctx context.Context, uuid string, inactive bool) (string, error)
	guestagent.Transport
	Screenshot(ctx context.Context, uuid string, w io.Writer) (mimeType string, err error)
	Close() error
}

// ParseUUID returns the 16 bytes of a domain UUID written as 32 hex
// digits, with or without the four dashes of the canonical form, in any
// letter case. A malformed uuid yields an error wrapping ErrDomainNotFound.
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := s
	if len(h) == 36 {
		if h[8] != '-' || h[13] != '-' || h[18] != '-' || h[23] != '-' {
			return u, fmt.Errorf("malformed uuid %q: %w", s, ErrDomainNotFound)
		}
		h = h[0:8] + h[9:13] + h[14:18] + h[19:23] + h[24:]
	}
	if len(h) != 32 {
		return u, fmt.Errorf("malformed uuid %q: %w", s, ErrDomainNotFound)
	}
	for i := 0; i < 16; i++ {
		hi, ok1 := unhex(h[2*i])
		lo, ok2 := unhex(h[2*i+1])
		if !ok1 || !ok2 {
			return u, fmt.Errorf("malformed uuid %q: %w", s, ErrDomainNotFound)
		}
		u[i] = hi<<4 | lo
	}
	return u, nil
}

// FormatUUID writes u in canonical lower-case form.
func FormatUUID(u [16]byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b.WriteByte('-')
		}
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0xf])
	}
	return b.String()
}

// CanonicalUUID returns s in canonical form, or an error wrapping
// ErrDomainNotFound when it is malformed.
func CanonicalUUID(s string) (string, error) {
	u, err := ParseUUID(s)
	if err != nil {
		return "", err
	}
	return FormatUUID(u), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
