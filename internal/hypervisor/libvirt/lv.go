package lv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
)

// SystemSocket is the UNIX socket of the system-wide libvirt daemon
// (libvirtd, or virtproxyd with modular daemons).
const SystemSocket = "/run/libvirt/libvirt-sock"

// DefaultAgentTimeout bounds a guest agent command when its context has no
// deadline.
const DefaultAgentTimeout = 30 * time.Second

// Hypervisor is a hypervisor.Hypervisor backed by one libvirt connection.
type Hypervisor struct {
	l       *libvirt.Libvirt
	uri     string
	shots   string // directory QEMU writes screenshots to, as seen here
	qemuImg *qemuimg.Tool
	log     *slog.Logger

	mu     sync.RWMutex
	closed bool

	// dial opens another connection to the same daemon and URI (the
	// event watches' own, events.go).
	dial    func(ctx context.Context) (*libvirt.Libvirt, error)
	watches watches
}

var _ hypervisor.Hypervisor = (*Hypervisor)(nil)

// Option configures Open.
type Option func(*config)

type config struct {
	qemuImg *qemuimg.Tool
	log     *slog.Logger
	socket  string
}

// WithQemuImg sets the qemu-img used to inspect images libvirt has not
// described (default qemuimg.Default).
func WithQemuImg(t *qemuimg.Tool) Option { return func(c *config) { c.qemuImg = t } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithSocket overrides the daemon socket chosen for the URI.
func WithSocket(path string) Option { return func(c *config) { c.socket = path } }

// Open connects to the libvirt daemon serving uri (see socketFor) and opens
// uri there. ctx bounds the connection attempt.
func Open(ctx context.Context, uri string, opts ...Option) (*Hypervisor, error) {
	cfg := config{qemuImg: qemuimg.Default, log: slog.Default()}
	for _, o := range opts {
		o(&cfg)
	}
	sock, remote, err := socketFor(uri)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", uri, err)
	}
	if cfg.socket != "" {
		sock = cfg.socket
	}
	dial := func(ctx context.Context) (*libvirt.Libvirt, error) {
		timeout := 15 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = max(clock.Until(clock.Real{}, dl), time.Millisecond)
		}
		l := libvirt.NewWithDialer(newDialer(sock, timeout))
		err := do(ctx, func() error { return l.ConnectToURI(remote) })
		if err != nil {
			if ctx.Err() != nil {
				// The connect may still complete; release it when it does.
				go func() { <-time.After(timeout); _ = l.Disconnect() }()
			}
			return nil, fmt.Errorf("connect to %s via %s: %w", uri, sock, err)
		}
		return l, nil
	}
	l, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	shots := screenshotDir
	if u, perr := url.Parse(uri); perr == nil && u.Query().Get("screenshot_dir") != "" {
		shots = u.Query().Get("screenshot_dir")
		if !filepath.IsAbs(shots) || filepath.Clean(shots) != shots {
			_ = l.Disconnect()
			return nil, fmt.Errorf("open %s: screenshot_dir must be a clean absolute path", uri)
		}
	}
	return &Hypervisor{l: l, uri: uri, shots: shots, qemuImg: cfg.qemuImg, log: cfg.log, dial: dial}, nil
}

func newDialer(sock string, timeout time.Duration) socket.Dialer {
	return dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(timeout))
}

// socketFor chooses the daemon socket for a local connection URI and the
// URI to ask that daemon to open. It is the only place knowing that
// mapping:
//
//   - DRIVER:///system (qemu, test, ...) and test:///default: the system
//     daemon's socket (SystemSocket); the test driver runs inside it.
//   - DRIVER:///session: the per-user daemon's socket,
//     $XDG_RUNTIME_DIR/libvirt/libvirt-sock (or ~/.cache/libvirt/...). The
//     session daemon is not auto-started: it must already run.
//   - a "?socket=PATH" query overrides the socket.
//   - a "screenshot_dir=DIR" query names the directory (as seen by this
//     process) that is the daemon's /var/lib/libvirt/qemu, for a daemon
//     living in another mount namespace (see scripts/second-libvirtd.sh);
//     Open reads it, socketFor ignores it.
//
// Remote URIs (with a host, or a transport such as qemu+ssh) are refused.
func socketFor(uri string) (sock string, remote libvirt.ConnectURI, err error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", fmt.Errorf("parse uri: %w", err)
	}
	driver, transport, _ := strings.Cut(u.Scheme, "+")
	if driver == "" {
		return "", "", fmt.Errorf("uri %q has no driver", uri)
	}
	if u.Host != "" || (transport != "" && transport != "unix") {
		return "", "", fmt.Errorf("uri %q: only local connections are supported", uri)
	}
	remote = libvirt.ConnectURI((&url.URL{Scheme: driver, Path: u.Path}).String())
	switch {
	case u.Path == "/session":
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			sock = filepath.Join(d, "libvirt", "libvirt-sock")
		} else if home, herr := os.UserHomeDir(); herr == nil {
			sock = filepath.Join(home, ".cache", "libvirt", "libvirt-sock")
		} else {
			return "", "", fmt.Errorf("uri %q: cannot locate the session socket: %w", uri, herr)
		}
	case u.Path == "/system", driver == "test":
		sock = SystemSocket
	default:
		return "", "", fmt.Errorf("uri %q: unsupported path %q", uri, u.Path)
	}
	if s := u.Query().Get("socket"); s != "" {
		sock = s
	}
	return sock, remote, nil
}

// do runs fn, a blocking go-libvirt call, and returns early with ctx's
// error when ctx ends first (fn then finishes in the background; go-libvirt
// calls are safe to abandon).
func do(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// conn returns the connection, or ErrClosed.
func (h *Hypervisor) conn() (*libvirt.Libvirt, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, hypervisor.ErrClosed
	}
	return h.l, nil
}

// Libvirt returns the underlying go-libvirt connection, for operations the
// port does not offer yet. It stays owned by h.
func (h *Hypervisor) Libvirt() *libvirt.Libvirt { return h.l }

// Close ends the event watches and disconnects. It is idempotent.
func (h *Hypervisor) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.watches.stop()
	if err := h.l.Disconnect(); err != nil {
		return fmt.Errorf("close %s: %w", h.uri, err)
	}
	return nil
}

// lvError maps a libvirt error for operation op: ErrNoDomain becomes
// hypervisor.ErrDomainNotFound; everything is wrapped with op.
func lvError(op string, err error) error {
	if err == nil {
		return nil
	}
	if libvirt.IsNotFound(err) {
		return fmt.Errorf("%s: %w: %w", op, hypervisor.ErrDomainNotFound, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func errCode(err error) (libvirt.ErrorNumber, bool) {
	var e libvirt.Error
	if errors.As(err, &e) {
		return libvirt.ErrorNumber(e.Code), true
	}
	return 0, false
}

// version decodes libvirt's major*1e6 + minor*1e3 + micro.
func version(v uint64) string {
	return fmt.Sprintf("%d.%d.%d", v/1000000, v/1000%1000, v%1000)
}

// HostInfo implements hypervisor.Hypervisor.
func (h *Hypervisor) HostInfo(ctx context.Context) (hypervisor.HostInfo, error) {
	l, err := h.conn()
	if err != nil {
		return hypervisor.HostInfo{}, err
	}
	var info hypervisor.HostInfo
	err = do(ctx, func() error {
		var err error
		if info.Hostname, err = l.ConnectGetHostname(); err != nil {
			return lvError("get hostname", err)
		}
		if info.URI, err = l.ConnectGetUri(); err != nil {
			return lvError("get uri", err)
		}
		lib, err := l.ConnectGetLibVersion()
		if err != nil {
			return lvError("get libvirt version", err)
		}
		info.LibvirtVersion = version(lib)
		hv, err := l.ConnectGetVersion()
		if err != nil {
			return lvError("get hypervisor version", err)
		}
		info.HypervisorVersion = version(hv)
		_, memKiB, cpus, _, _, _, _, _, err := l.NodeGetInfo()
		if err != nil {
			return lvError("get node info", err)
		}
		info.CPUs = int(cpus)
		info.MemoryBytes = memKiB * 1024
		return nil
	})
	if err != nil {
		return hypervisor.HostInfo{}, fmt.Errorf("host info: %w", err)
	}
	return info, nil
}

// ListDomains implements hypervisor.Hypervisor.
func (h *Hypervisor) ListDomains(ctx context.Context) ([]hypervisor.Domain, error) {
	l, err := h.conn()
	if err != nil {
		return nil, err
	}
	var doms []libvirt.Domain
	err = do(ctx, func() error {
		var err error
		doms, _, err = l.ConnectListAllDomains(1, 0)
		return err
	})
	if err != nil {
		return nil, lvError("list domains", err)
	}
	out := make([]hypervisor.Domain, 0, len(doms))
	for _, d := range doms {
		dom, err := h.describe(ctx, l, d)
		if errors.Is(err, hypervisor.ErrDomainNotFound) {
			continue // gone meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list domains: %w", err)
		}
		out = append(out, dom)
	}
	return out, nil
}

// lookup finds a domain by uuid.
func (h *Hypervisor) lookup(ctx context.Context, uuid string) (*libvirt.Libvirt, libvirt.Domain, error) {
	l, err := h.conn()
	if err != nil {
		return nil, libvirt.Domain{}, err
	}
	u, err := hypervisor.ParseUUID(uuid)
	if err != nil {
		return nil, libvirt.Domain{}, err
	}
	var d libvirt.Domain
	err = do(ctx, func() error {
		var err error
		d, err = l.DomainLookupByUUID(libvirt.UUID(u))
		return err
	})
	if err != nil {
		return nil, libvirt.Domain{}, lvError("lookup domain "+uuid, err)
	}
	return l, d, nil
}

// Domain implements hypervisor.Hypervisor.
func (h *Hypervisor) Domain(ctx context.Context, uuid string) (hypervisor.Domain, error) {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return hypervisor.Domain{}, err
	}
	return h.describe(ctx, l, d)
}

// DomainXML implements hypervisor.Hypervisor.
func (h *Hypervisor) DomainXML(ctx context.Context, uuid string, inactive bool) (string, error) {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return "", err
	}
	var flags libvirt.DomainXMLFlags
	if inactive {
		flags = libvirt.DomainXMLInactive
	}
	var x string
	err = do(ctx, func() error {
		var err error
		x, err = l.DomainGetXMLDesc(d, flags)
		return err
	})
	if err != nil {
		return "", lvError("get xml of domain "+uuid, err)
	}
	return x, nil
}

func stateName(s libvirt.DomainState) hypervisor.DomainState {
	switch s {
	case libvirt.DomainRunning:
		return hypervisor.StateRunning
	case libvirt.DomainPaused:
		return hypervisor.StatePaused
	case libvirt.DomainShutoff:
		return hypervisor.StateShutoff
	case libvirt.DomainCrashed:
		return hypervisor.StateCrashed
	case libvirt.DomainPmsuspended:
		return hypervisor.StatePMSuspended
	}
	return hypervisor.StateOther
}

// describe reads a domain's state, persistence and (live) XML and inspects
// its disks.
func (h *Hypervisor) describe(ctx context.Context, l *libvirt.Libvirt, d libvirt.Domain) (hypervisor.Domain, error) {
	uuid := hypervisor.FormatUUID(d.UUID)
	dom := hypervisor.Domain{UUID: uuid, Name: d.Name}
	var xmlDesc string
	err := do(ctx, func() error {
		state, reason, err := l.DomainGetState(d, 0)
		if err != nil {
			return lvError("get state of domain "+uuid, err)
		}
		dom.State = stateName(libvirt.DomainState(state))
		if dom.State == hypervisor.StateShutoff && libvirt.DomainShutoffReason(reason) == libvirt.DomainShutoffCrashed {
			// QEMU died (a segfault, a kill): shut off, but not by anyone.
			dom.State = hypervisor.StateCrashed
		}
		persistent, err := l.DomainIsPersistent(d)
		if err != nil {
			return lvError("get persistence of domain "+uuid, err)
		}
		dom.Persistent = persistent == 1
		if xmlDesc, err = l.DomainGetXMLDesc(d, 0); err != nil {
			return lvError("get xml of domain "+uuid, err)
		}
		return nil
	})
	if err != nil {
		return hypervisor.Domain{}, err
	}
	var x libvirtxml.Domain
	if err := x.Unmarshal(xmlDesc); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("parse xml of domain %s: %w", uuid, err)
	}
	snaps, err := snapshotsOf(ctx, l, d)
	if err != nil {
		return hypervisor.Domain{}, fmt.Errorf("domain %s: %w", uuid, err)
	}
	dom.Snapshots = snaps
	if x.VCPU != nil {
		dom.VCPUs = int(x.VCPU.Value)
	}
	if x.Memory != nil {
		dom.MemoryBytes = memoryBytes(x.Memory.Value, x.Memory.Unit)
	}
	if x.Devices == nil {
		return dom, nil
	}
	for _, xd := range x.Devices.Disks {
		disk, bs := diskFromXML(xd)
		if err := h.inspectDisk(ctx, l, d, &disk, bs); err != nil {
			return hypervisor.Domain{}, fmt.Errorf("domain %s: %w", uuid, err)
		}
		dom.Disks = append(dom.Disks, disk)
	}
	return dom, nil
}

// snapshotsOf lists the snapshots libvirt keeps metadata for (knib's own
// are made without): one call for a domain without any.
func snapshotsOf(ctx context.Context, l *libvirt.Libvirt, d libvirt.Domain) ([]hypervisor.Snapshot, error) {
	var out []hypervisor.Snapshot
	err := do(ctx, func() error {
		list, _, err := l.DomainListAllSnapshots(d, 1, 0)
		if err != nil {
			return lvError("list snapshots", err)
		}
		out = out[:0]
		for _, sn := range list {
			doc, err := l.DomainSnapshotGetXMLDesc(sn, 0)
			if err != nil {
				return lvError("get xml of snapshot "+sn.Name, err)
			}
			var x libvirtxml.DomainSnapshot
			if err := x.Unmarshal(doc); err != nil {
				return fmt.Errorf("parse xml of snapshot %s: %w", sn.Name, err)
			}
			s := hypervisor.Snapshot{Name: sn.Name, DiskOnly: x.State == "disk-snapshot"}
			if x.Memory != nil {
				s.Memory = x.Memory.Snapshot == "internal" || x.Memory.Snapshot == "external"
			} else {
				s.Memory = x.State == "running" || x.State == "paused"
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// sourceOf describes a disk source: its type and path or description.
func sourceOf(s *libvirtxml.DomainDiskSource) (typ, desc string) {
	if s == nil {
		return "", ""
	}
	switch {
	case s.File != nil:
		return "file", s.File.File
	case s.Block != nil:
		return "block", s.Block.Dev
	case s.Dir != nil:
		return "dir", s.Dir.Dir
	case s.Network != nil:
		return "network", s.Network.Protocol + ":" + s.Network.Name
	case s.Volume != nil:
		return "volume", s.Volume.Pool + "/" + s.Volume.Volume
	case s.NVME != nil:
		return "nvme", ""
	case s.VHostUser != nil:
		return "vhostuser", ""
	case s.VHostVDPA != nil:
		return "vhostvdpa", s.VHostVDPA.Dev
	}
	return "", ""
}

// diskFromXML converts a <disk> element; it also returns the disk's
// <backingStore> element (nil when absent).
func diskFromXML(x libvirtxml.DomainDisk) (hypervisor.Disk, *libvirtxml.DomainDiskBackingStore) {
	disk := hypervisor.Disk{Device: x.Device}
	if disk.Device == "" {
		disk.Device = "disk"
	}
	if x.Target != nil {
		disk.Target, disk.Bus = x.Target.Dev, x.Target.Bus
	}
	if x.Driver != nil {
		disk.Format = x.Driver.Type
	}
	disk.SourceType, disk.Source = sourceOf(x.Source)
	if disk.Source == "" && (disk.SourceType == "file" || disk.SourceType == "block") {
		disk.SourceType = "" // e.g. <disk type='file' device='cdrom'> without medium
	}
	return disk, x.BackingStore
}

// chainFromXML walks libvirt's <backingStore> elements. ok is false when
// libvirt gave none (chain unknown); an empty <backingStore/> ends a chain.
func chainFromXML(bs *libvirtxml.DomainDiskBackingStore) (chain []hypervisor.Layer, ok bool) {
	if bs == nil {
		return nil, false
	}
	for ; bs != nil && bs.Source != nil; bs = bs.BackingStore {
		_, path := sourceOf(bs.Source)
		if path == "" {
			break // the terminating empty <backingStore/>
		}
		layer := hypervisor.Layer{Path: path}
		if bs.Format != nil {
			layer.Format = bs.Format.Type
		}
		chain = append(chain, layer)
	}
	return chain, true
}

// inspectDisk fills a disk's BackingChain and VirtualSize from libvirt
// where it can, and from qemu-img otherwise. What cannot be determined is
// reported in disk.Problem, not as an error; errors are reserved for the
// domain vanishing or ctx ending.
func (h *Hypervisor) inspectDisk(ctx context.Context, l *libvirt.Libvirt, d libvirt.Domain, disk *hypervisor.Disk, bs *libvirtxml.DomainDiskBackingStore) error {
	if disk.SourceType == "" {
		return nil
	}
	chain, chainKnown := chainFromXML(bs)
	disk.BackingChain = chain

	sizeKnown := false
	if disk.Target != "" {
		var capacity uint64
		err := do(ctx, func() error {
			var err error
			_, capacity, _, err = l.DomainGetBlockInfo(d, disk.Target, 0)
			return err
		})
		switch {
		case err == nil:
			disk.VirtualSize, sizeKnown = int64(capacity), true
		case ctx.Err() != nil:
			return ctx.Err()
		case libvirt.IsNotFound(err):
			return lvError("get block info", err)
		default:
			h.log.Debug("libvirt block info unavailable, using qemu-img", "domain", d.Name, "disk", disk.Target, "err", err)
		}
	}
	if chainKnown && sizeKnown {
		return nil
	}
	if disk.SourceType != "file" && disk.SourceType != "block" {
		disk.Problem = fmt.Sprintf("cannot inspect %s disk %s without libvirt's help", disk.SourceType, disk.Target)
		return nil
	}
	infos, err := h.qemuImg.Info(ctx, disk.Source, qemuimg.InfoOptions{BackingChain: true, ForceShare: true, Format: disk.Format})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		h.log.Warn("cannot inspect disk image", "domain", d.Name, "disk", disk.Target, "path", disk.Source, "err", err)
		disk.Problem = "inspect image: " + err.Error()
		return nil
	}
	if !sizeKnown {
		disk.VirtualSize = infos[0].VirtualSize
	}
	if !chainKnown {
		disk.BackingChain = nil
		for i := 1; i < len(infos); i++ {
			path := infos[i-1].FullBackingFilename
			if path == "" {
				path = infos[i].Filename
			}
			disk.BackingChain = append(disk.BackingChain, hypervisor.Layer{Path: path, Format: infos[i].Format})
		}
	}
	return nil
}

// agentTimeout derives libvirt's agent timeout in whole seconds (rounded
// up, at least 1) from ctx's deadline.
func agentTimeout(ctx context.Context) int32 {
	dl, ok := ctx.Deadline()
	if !ok {
		return int32(DefaultAgentTimeout / time.Second)
	}
	secs := math.Ceil(clock.Until(clock.Real{}, dl).Seconds())
	return int32(min(max(secs, 1), math.MaxInt32))
}

// AgentCommand implements guestagent.Transport via
// virDomainQemuAgentCommand.
func (h *Hypervisor) AgentCommand(ctx context.Context, uuid string, command []byte) ([]byte, error) {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var reply libvirt.OptString
	send := func() error {
		var err error
		reply, err = l.QEMUDomainAgentCommand(d, string(command), agentTimeout(ctx), 0)
		return err
	}
	err = do(ctx, send)
	// libvirt refuses agent commands while the domain is paused, and knib
	// pauses a running VM for milliseconds (the flush after a block job:
	// the merge that follows a backup, a block pull). A command refused
	// so never reached the guest: it is sent again once the domain runs,
	// for at most agentPauseWait.
	clk := clock.Real{}
	for end := clk.Now().Add(agentPauseWait); err != nil && refusedWhilePaused(l, d, err) && clk.Now().Before(end); {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		err = do(ctx, send)
	}
	if err != nil {
		return nil, agentError(ctx, err)
	}
	if len(reply) == 0 {
		return nil, nil
	}
	return []byte(reply[0]), nil
}

// agentPauseWait bounds how long an agent command refused because the
// domain was paused is sent again.
const agentPauseWait = 10 * time.Second

// refusedWhilePaused reports whether err is libvirt's "domain is not
// running" for a domain that is running or paused now.
func refusedWhilePaused(l *libvirt.Libvirt, d libvirt.Domain, err error) bool {
	if code, ok := errCode(err); !ok || code != libvirt.ErrOperationInvalid || !strings.Contains(err.Error(), "domain is not running") {
		return false
	}
	state, _, serr := l.DomainGetState(d, 0)
	return serr == nil && (libvirt.DomainState(state) == libvirt.DomainPaused || libvirt.DomainState(state) == libvirt.DomainRunning)
}

// agentError classifies a failed agent command.
func agentError(ctx context.Context, err error) error {
	const op = "libvirt qemu-agent-command"
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w: %w", op, guestagent.ErrAgentTimeout, err)
	}
	code, ok := errCode(err)
	if !ok {
		return lvError(op, err)
	}
	var le libvirt.Error
	errors.As(err, &le)
	switch code {
	case libvirt.ErrNoDomain:
		return lvError(op, err)
	case libvirt.ErrOperationInvalid, libvirt.ErrArgumentUnsupported, libvirt.ErrAgentUnsynced, libvirt.ErrNoSupport:
		// "domain is not running", "QEMU guest agent is not configured",
		// lost sync, a driver without agent support (test:///).
		return fmt.Errorf("%s: %w: %w", op, guestagent.ErrAgentUnavailable, err)
	case libvirt.ErrAgentUnresponsive:
		// "not connected", and also libvirt's reply timeout ("not
		// available for now").
		if strings.Contains(le.Message, "for now") {
			return fmt.Errorf("%s: %w: %w", op, guestagent.ErrAgentTimeout, err)
		}
		return fmt.Errorf("%s: %w: %w", op, guestagent.ErrAgentUnavailable, err)
	case libvirt.ErrAgentCommandTimeout:
		return fmt.Errorf("%s: %w: %w", op, guestagent.ErrAgentTimeout, err)
	case libvirt.ErrAgentCommandFailed, libvirt.ErrInternalError:
		// libvirt turns an error reply into "unable to execute QEMU agent
		// command 'NAME': DESC"; the error class is lost.
		const marker = "unable to execute QEMU agent command '"
		if _, rest, found := strings.Cut(le.Message, marker); found {
			name, desc, _ := strings.Cut(rest, "': ")
			return &guestagent.AgentError{Command: name, Desc: desc}
		}
	}
	return lvError(op, err)
}

// screenshotDir is where QEMU (running as the libvirt-qemu user) may write:
// libvirt's own per-user state directory.
const screenshotDir = "/var/lib/libvirt/qemu"

// Screenshot implements hypervisor.Hypervisor. It asks QEMU for a PNG with
// the QMP screendump command (QEMU >= 7.1) instead of virDomainScreenshot:
// go-libvirt's stream download can lose the race with the stream's data
// and then deadlock the whole connection.
func (h *Hypervisor) Screenshot(ctx context.Context, uuid string, w io.Writer) (string, error) {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return "", err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("knib-screenshot-%x.png", rnd)
	file := filepath.Join(h.shots, name)
	defer os.Remove(file)
	// QEMU writes in its own mount namespace, where the directory is
	// always screenshotDir.
	cmd, err := json.Marshal(map[string]any{"execute": "screendump", "arguments": map[string]any{"filename": filepath.Join(screenshotDir, name), "format": "png"}})
	if err != nil {
		return "", err
	}
	err = do(ctx, func() error {
		state, _, err := l.DomainGetState(d, 0)
		if err != nil {
			return err
		}
		if s := libvirt.DomainState(state); s != libvirt.DomainRunning && s != libvirt.DomainPaused {
			return fmt.Errorf("domain is %s: %w", stateName(s), hypervisor.ErrUnsupported)
		}
		reply, err := l.QEMUDomainMonitorCommand(d, string(cmd), 0)
		if err != nil {
			return err
		}
		var r struct {
			Error *struct {
				Desc string `json:"desc"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(reply), &r) == nil && r.Error != nil {
			return fmt.Errorf("screendump: %s: %w", r.Error.Desc, hypervisor.ErrUnsupported)
		}
		return nil
	})
	if err != nil {
		return "", lvError("screenshot of domain "+uuid, err)
	}
	img, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("screenshot of domain %s: %w", uuid, err)
	}
	mime := sniffImage(img)
	if mime == "" {
		return "", fmt.Errorf("screenshot of domain %s: not a complete image (%d bytes)", uuid, len(img))
	}
	if _, err := w.Write(img); err != nil {
		return "", fmt.Errorf("screenshot of domain %s: write: %w", uuid, err)
	}
	return mime, nil
}

// sniffImage returns the MIME type of a complete PNG or PPM image, or "".
func sniffImage(b []byte) string {
	pngEnd := []byte{0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82}
	switch {
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) && bytes.HasSuffix(b, pngEnd):
		return "image/png"
	case bytes.HasPrefix(b, []byte("P6")) && len(b) > 2 && (b[2] == '\n' || b[2] == ' '):
		return "image/x-portable-pixmap"
	}
	return ""
}

// memoryBytes converts a libvirt memory amount to bytes; libvirt's default
// unit is KiB.
func memoryBytes(v uint, unit string) uint64 {
	n := uint64(v)
	switch unit {
	case "b", "bytes":
		return n
	case "KB":
		return n * 1000
	case "", "k", "KiB":
		return n << 10
	case "MB":
		return n * 1000 * 1000
	case "M", "MiB":
		return n << 20
	case "GB":
		return n * 1000 * 1000 * 1000
	case "G", "GiB":
		return n << 30
	case "TB":
		return n * 1000 * 1000 * 1000 * 1000
	case "T", "TiB":
		return n << 40
	}
	return n << 10
}
