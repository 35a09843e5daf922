package testbed

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

const (
	// DefaultDiskSize is the size of the single disk a test domain gets
	// when DomainOptions.DiskSizes is empty.
	DefaultDiskSize int64 = 64 << 20
	// DefaultMemoryMiB is a test domain's memory when
	// DomainOptions.MemoryMiB is 0.
	DefaultMemoryMiB = 256
	// BootTimeout bounds NewDomain's wait for the guest agent after start.
	BootTimeout = 3 * time.Minute
	// QEMULogDir is where libvirt logs each QEMU process (qemu.conf's
	// default).
	QEMULogDir = "/var/log/libvirt/qemu"

	// VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP (libvirt-qemu.h); go-libvirt has
	// no constant for it.
	qemuMonitorCommandHMP = 1
)

// DomainOptions describes a test domain for NewDomain.
type DomainOptions struct {
	// Name of the domain and of its directory under ImagesDir: letters,
	// digits and dashes, starting with a letter or digit, at most 64
	// characters; tests use knib-t-<something>.
	Name string
	// DiskSizes in bytes, one qcow2 disk per entry, attached as vda, vdb,
	// ... (at most 26). Empty means one disk of DefaultDiskSize.
	DiskSizes []int64
	// Start the domain and wait for its guest agent.
	Start bool
	// NoFormat leaves the first disk blank. By default (false) the first
	// disk holds an ext4 file system (no journal, inode tables initialised
	// at mkfs time, so the guest writes only what tests make it write),
	// which the guest mounts at /data.
	NoFormat bool
	// Journal gives the first disk's ext4 a journal, for tests that take
	// crash-consistent snapshots while the guest writes.
	Journal bool
	// MemoryMiB of guest memory; 0 means DefaultMemoryMiB.
	MemoryMiB int
}

// Domain is a test domain made by NewDomain.
type Domain struct {
	Name string
	UUID string // canonical text form
	// Dir holds the domain's disks and console log: ImagesDir/<Name>.
	Dir string
	// Disks are the qcow2 paths in target order; Targets their target
	// devices (vda, vdb, ...).
	Disks   []string
	Targets []string
	// ConsoleLog is the file the serial console is logged to.
	ConsoleLog string
	// QEMULog is libvirt's log of the QEMU process (command line, QEMU's
	// stdout and stderr): QEMULogDir/<Name>.log.
	QEMULog string
	// L is the connection the domain was made with; it is closed when the
	// test ends.
	L *libvirt.Libvirt
	// Dom is the libvirt handle of the domain.
	Dom libvirt.Domain

	hmpMu sync.Mutex // serialises WriteDisk, which reads QEMULog
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// ValidateName reports whether name is acceptable for a test domain.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("testbed: invalid domain name %q: want letters, digits and dashes, at most 64, not starting with a dash", name)
	}
	return nil
}

// NewDomain creates a test domain (see DomainOptions), after removing any
// leftover domain or directory of the same name, and registers its removal
// (destroy, undefine with managed-save/snapshot/checkpoint/NVRAM metadata,
// delete the directory) with t.Cleanup. It calls Require first, so it skips
// (or fails) the test when the infrastructure is missing. Any error is fatal
// to the test.
func NewDomain(t testing.TB, opts DomainOptions) *Domain {
	t.Helper()
	l := Connect(t) // calls Require
	// Registered after Connect's cleanup, so it runs before the connection
	// is closed.
	t.Cleanup(func() {
		if err := RemoveDomain(l, opts.Name); err != nil {
			t.Errorf("testbed: removing %s: %v", opts.Name, err)
		}
	})
	start := time.Now()
	d, err := CreateDomain(context.Background(), l, opts)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Start {
		t.Logf("testbed: %s up, guest agent answered %.1fs after start", opts.Name, time.Since(start).Seconds())
	}
	return d
}

// RemoveDomain destroys and undefines the domain and deletes its directory;
// absent ones are fine.
func RemoveDomain(l *libvirt.Libvirt, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	return removeDomain(l, name, filepath.Join(ImagesDir, name))
}

// CreateDomain is NewDomain without a test: it replaces any domain of the
// same name, and the caller removes it (RemoveDomain) when done. knib's demo
// uses it through `knib dev vm create`.
func CreateDomain(ctx context.Context, l *libvirt.Libvirt, opts DomainOptions) (*Domain, error) {
	return createDomain(ctx, l, opts, QEMULogDir)
}

// createDomain is CreateDomain on a daemon logging QEMU into qemuLogDir.
func createDomain(ctx context.Context, l *libvirt.Libvirt, opts DomainOptions, qemuLogDir string) (*Domain, error) {
	if err := ValidateName(opts.Name); err != nil {
		return nil, err
	}
	sizes := opts.DiskSizes
	if len(sizes) == 0 {
		sizes = []int64{DefaultDiskSize}
	}
	if len(sizes) > 26 {
		return nil, fmt.Errorf("testbed: %d disks requested, at most 26", len(sizes))
	}
	mem := opts.MemoryMiB
	if mem == 0 {
		mem = DefaultMemoryMiB
	}
	if mem < 64 {
		return nil, fmt.Errorf("testbed: MemoryMiB %d too small (the guest needs about 64 MiB)", mem)
	}
	if err := EnsureGuest(); err != nil {
		return nil, err
	}
	dir := filepath.Join(ImagesDir, opts.Name)
	d := &Domain{
		Name:       opts.Name,
		Dir:        dir,
		ConsoleLog: filepath.Join(dir, "console.log"),
		QEMULog:    filepath.Join(qemuLogDir, opts.Name+".log"),
		L:          l,
	}
	if err := removeDomain(l, opts.Name, dir); err != nil {
		return nil, fmt.Errorf("testbed: removing leftover %s: %v", opts.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	_ = os.Chmod(ImagesDir, 0o755)
	for i, size := range sizes {
		target := "vd" + string(rune('a'+i))
		path := filepath.Join(dir, target+".qcow2")
		if err := makeDisk(path, size, i == 0 && !opts.NoFormat, opts.Journal); err != nil {
			return nil, fmt.Errorf("testbed: disk %s: %v", target, err)
		}
		d.Disks = append(d.Disks, path)
		d.Targets = append(d.Targets, target)
	}

	xml, err := DomainXML(opts.Name, mem, d.Disks, d.Targets, d.ConsoleLog)
	if err != nil {
		return nil, err
	}
	dom, err := l.DomainDefineXML(xml)
	if err != nil {
		return nil, fmt.Errorf("testbed: define %s: %v", opts.Name, err)
	}
	d.Dom = dom
	d.UUID = formatUUID(dom.UUID)

	if opts.Start {
		ctx, cancel := context.WithTimeout(ctx, BootTimeout)
		defer cancel()
		if err := d.Start(ctx); err != nil {
			return nil, fmt.Errorf("testbed: start %s: %v\nconsole:\n%s", opts.Name, err, d.Console())
		}
	}
	return d, nil
}

// makeDisk creates a qcow2 image; with ext4 it holds a fresh file system
// filling the whole disk.
func makeDisk(path string, size int64, ext4, journal bool) error {
	if size <= 0 {
		return fmt.Errorf("size %d must be positive", size)
	}
	qemuImg, err := lookTool("qemu-img")
	if err != nil {
		return err
	}
	if !ext4 {
		return run(qemuImg, "create", "-q", "-f", "qcow2", path, fmt.Sprint(size))
	}
	mkfs, err := lookTool("mkfs.ext4")
	if err != nil {
		return err
	}
	raw := strings.TrimSuffix(path, ".qcow2") + ".raw"
	defer os.Remove(raw)
	f, err := os.Create(raw)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// No journal and no lazy init: after boot the guest writes nothing on
	// its own (no ext4lazyinit thread, no journal commits), and a host-side
	// reader such as debugfs sees synced metadata in place.
	features, extended := "^has_journal", "root_owner=0:0,lazy_itable_init=0"
	if journal {
		features, extended = "has_journal", extended+",lazy_journal_init=0"
	}
	if err := run(mkfs, "-F", "-q", "-O", features, "-E", extended, raw); err != nil {
		return err
	}
	return run(qemuImg, "convert", "-q", "-f", "raw", "-O", "qcow2", raw, path)
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// DomainXML returns the libvirt XML of a test domain: TCG, direct kernel
// boot of the test guest, the given qcow2 disks on the virtio bus, serial
// console on a pty logged to consoleLog, guest-agent channel, VNC on
// 127.0.0.1 with a VGA video device, no network, no USB, no balloon.
func DomainXML(name string, memoryMiB int, disks, targets []string, consoleLog string) (string, error) {
	if len(disks) != len(targets) {
		return "", errors.New("testbed: disks and targets differ in length")
	}
	port0 := uint(0)
	dom := &libvirtxml.Domain{
		Type:   "qemu",
		Name:   name,
		Memory: &libvirtxml.DomainMemory{Value: uint(memoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: "x86_64", Type: "hvm"},
			Kernel:  KernelPath(),
			Initrd:  InitrdPath(),
			Cmdline: KernelCmdline,
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port0},
				Log:    &libvirtxml.DomainChardevLog{File: consoleLog, Append: "off"},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port0},
			}},
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: AgentChannel}},
			}},
			Graphics: []libvirtxml.DomainGraphic{{
				VNC: &libvirtxml.DomainGraphicVNC{
					AutoPort: "yes",
					Listeners: []libvirtxml.DomainGraphicListener{{
						Address: &libvirtxml.DomainGraphicListenerAddress{Address: "127.0.0.1"},
					}},
				},
			}},
			Videos:     []libvirtxml.DomainVideo{{Model: libvirtxml.DomainVideoModel{Type: "vga"}}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	for i, p := range disks {
		dom.Devices.Disks = append(dom.Devices.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: p}},
			Target: &libvirtxml.DomainDiskTarget{Dev: targets[i], Bus: "virtio"},
		})
	}
	return dom.Marshal()
}

// removeDomain destroys and undefines the named domain if it exists and
// deletes dir.
func removeDomain(l *libvirt.Libvirt, name, dir string) error {
	dom, err := l.DomainLookupByName(name)
	switch {
	case libvirt.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("lookup: %w", err)
	default:
		if err := destroy(l, dom); err != nil {
			return err
		}
		// A transient domain is gone after destroy.
		if _, err := l.DomainLookupByName(name); libvirt.IsNotFound(err) {
			break
		}
		flags := libvirt.DomainUndefineManagedSave | libvirt.DomainUndefineSnapshotsMetadata |
			libvirt.DomainUndefineCheckpointsMetadata
		err := l.DomainUndefineFlags(dom, flags|libvirt.DomainUndefineNvram)
		if err != nil && !libvirt.IsNotFound(err) {
			// Retry without the NVRAM flag, which some setups refuse.
			err = l.DomainUndefineFlags(dom, flags)
		}
		if err != nil && !libvirt.IsNotFound(err) {
			return fmt.Errorf("undefine: %w", err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return nil
}

// destroy forces the domain off; a domain that is not running is fine.
func destroy(l *libvirt.Libvirt, dom libvirt.Domain) error {
	state, _, err := l.DomainGetState(dom, 0)
	if libvirt.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get state: %w", err)
	}
	if libvirt.DomainState(state) == libvirt.DomainShutoff {
		return nil
	}
	err = l.DomainDestroyFlags(dom, libvirt.DomainDestroyDefault)
	if err == nil || libvirt.IsNotFound(err) {
		return nil
	}
	// Lost a race with the domain stopping by itself.
	if state, _, serr := l.DomainGetState(dom, 0); serr == nil && libvirt.DomainState(state) == libvirt.DomainShutoff {
		return nil
	}
	return fmt.Errorf("destroy: %w", err)
}

func formatUUID(u libvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// State returns the domain's libvirt state.
func (d *Domain) State() (libvirt.DomainState, error) {
	state, _, err := d.L.DomainGetState(d.Dom, 0)
	return libvirt.DomainState(state), err
}

// Start starts the domain unless it is running, then waits for its guest
// agent (WaitAgent), bounded by ctx.
func (d *Domain) Start(ctx context.Context) error {
	state, err := d.State()
	if err != nil {
		return err
	}
	if state != libvirt.DomainRunning {
		if err := d.L.DomainCreate(d.Dom); err != nil {
			return fmt.Errorf("start %s: %w", d.Name, err)
		}
	}
	return d.WaitAgent(ctx)
}

// Destroy forces the domain off (like pulling the plug); it is a no-op for a
// domain that is not running.
func (d *Domain) Destroy(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return destroy(d.L, d.Dom)
}

// Console returns what the guest printed on its serial console so far (the
// log is rewritten at every start).
func (d *Domain) Console() string {
	b, err := os.ReadFile(d.ConsoleLog)
	if err != nil {
		return fmt.Sprintf("(no console log: %v)", err)
	}
	return string(b)
}

// WriteDisk writes length bytes of pattern at offset into disk diskIndex of
// the running domain, from the host but through QEMU's block layer, as if the
// guest had written them (HMP qemu-io), then flushes QEMU's caches so that
// outside readers of the image (qemu-img, qemu-io -U) see the data. The
// guest's page cache does not notice. Offset and length should be multiples
// of 512.
//
// QEMU 7.2 answers HMP qemu-io with an empty reply and prints the command's
// result ("wrote N/N bytes at offset O" or "write failed: ...") on its
// stdout, which libvirt logs to QEMULog; WriteDisk checks the reply for
// errors and then waits (up to 5 s) for the result in that log.
func (d *Domain) WriteDisk(ctx context.Context, diskIndex int, pattern byte, offset, length int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if diskIndex < 0 || diskIndex >= len(d.Targets) {
		return fmt.Errorf("testbed: disk index %d out of range (%d disks)", diskIndex, len(d.Targets))
	}
	if offset < 0 || length <= 0 {
		return fmt.Errorf("testbed: bad range offset=%d length=%d", offset, length)
	}
	d.hmpMu.Lock()
	defer d.hmpMu.Unlock()

	// libvirt names a virtio disk's device virtio-disk<N>, N being the
	// target's index (vda=0, vdb=1, ...).
	dev := fmt.Sprintf("/machine/peripheral/virtio-disk%d/virtio-backend", d.Targets[diskIndex][2]-'a')
	var logStart int64
	if fi, err := os.Stat(d.QEMULog); err == nil {
		logStart = fi.Size()
	}
	write := fmt.Sprintf(`qemu-io -d %s "write -P 0x%02x %d %d"`, dev, pattern, offset, length)
	flush := fmt.Sprintf(`qemu-io -d %s "flush"`, dev)
	for _, cmd := range []string{write, flush} {
		reply, err := d.L.QEMUDomainMonitorCommand(d.Dom, cmd, qemuMonitorCommandHMP)
		if err != nil {
			return fmt.Errorf("testbed: %s: %w", cmd, err)
		}
		if r := strings.TrimSpace(reply); r != "" {
			return fmt.Errorf("testbed: %s: %s", cmd, r)
		}
	}

	want := fmt.Sprintf("wrote %d/%d bytes at offset %d", length, length, offset)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := readFrom(d.QEMULog, logStart)
		if err != nil {
			return fmt.Errorf("testbed: %s: cannot check the result: %w", write, err)
		}
		for _, bad := range []string{"write failed", "flush failed", "not found", "Error:"} {
			if i := strings.Index(out, bad); i >= 0 {
				line, _, _ := strings.Cut(out[i:], "\n")
				return fmt.Errorf("testbed: %s: %s (from %s)", write, strings.TrimSpace(line), d.QEMULog)
			}
		}
		if strings.Contains(out, want) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("testbed: %s: %q did not appear in %s", write, want, d.QEMULog)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readFrom returns the content of path from offset on (from the start when
// the file is shorter, e.g. after virtlogd rotated it).
func readFrom(path string, offset int64) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return string(b[offset:]), nil
}
