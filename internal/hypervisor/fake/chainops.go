package fake

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
)

// The fake models each disk's qcow2 layer graph: Source is the active
// layer and BackingChain the files below it. Where the files exist on disk
// it works on them as libvirt does: a snapshot creates its overlay as a
// real qcow2 file (qemu-img create), and a disk pointed at a file gets the
// backing chain read from the qcow2 headers. Block jobs change the graph
// only (no data is copied); they complete on WaitBlockJob.

var (
	_ hypervisor.ChainOps  = (*Hypervisor)(nil)
	_ hypervisor.Transient = (*Hypervisor)(nil)
)

// ErrInjected is returned by a call that FailOn made fail.
var ErrInjected = errors.New("fake: injected failure")

// ErrQEMUDied, given to FailOn("BlockPull", ...), also leaves the domain
// crashed, as when QEMU dies under a block job; given to
// FailOn("WaitBlockJob", ...) it is QEMU dying as a pull ends, after the
// overlay's header lost its backing file and before the pulled data's
// metadata reached the file (the overlay's file has no backing file).
var ErrQEMUDied = errors.New("fake: unable to read from monitor: connection reset by peer")

type blockJob struct {
	kind       string // "commit" or "pull"
	top, base  string
	active     bool
	targetDisk string
}

type fault struct {
	n   int // fail the n-th call from now (1 = the next)
	err error
}

// FailOn makes the n-th next call of the named method (e.g. "BlockCommit",
// "SnapshotDisks") fail with err (ErrInjected when nil), changing nothing.
// Several FailOn of one method each fail their own call.
func (h *Hypervisor) FailOn(method string, n int, err error) {
	if err == nil {
		err = ErrInjected
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.faults == nil {
		h.faults = map[string][]*fault{}
	}
	h.faults[method] = append(h.faults[method], &fault{n: n, err: err})
}

// Calls returns how many times each ChainOps or Transient method was called.
func (h *Hypervisor) Calls(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[method]
}

// call counts a call and returns its injected failure; h.mu is held.
func (h *Hypervisor) call(method string) error {
	if h.calls == nil {
		h.calls = map[string]int{}
	}
	h.calls[method]++
	if len(h.faults[method]) == 0 {
		return nil
	}
	var hit *fault
	kept := h.faults[method][:0]
	for _, f := range h.faults[method] {
		if f.n--; f.n == 0 && hit == nil {
			hit = f
			continue
		}
		kept = append(kept, f)
	}
	h.faults[method] = kept
	if hit == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", method, hit.err)
}

// beginOp checks ctx and Close, counts the call and applies FailOn; on
// success h.mu is held.
func (h *Hypervisor) beginOp(ctx context.Context, method string) error {
	if err := h.begin(ctx); err != nil {
		return err
	}
	if err := h.call(method); err != nil {
		h.mu.Unlock()
		return err
	}
	return nil
}

func findDisk(e *entry, target string) (*hypervisor.Disk, error) {
	for i := range e.dom.Disks {
		if e.dom.Disks[i].Target == target {
			return &e.dom.Disks[i], nil
		}
	}
	return nil, fmt.Errorf("disk %s is not attached to %s", target, e.dom.Name)
}

func running(e *entry) bool {
	return e.dom.State == hypervisor.StateRunning || e.dom.State == hypervisor.StatePaused
}

// refreshXML regenerates the domain's XML after its disks changed.
func refreshXML(e *entry) {
	x := generateXML(e.dom)
	e.liveXML = x
	if !e.customDef {
		e.defXML = x
	}
}

// SnapshotDisks implements hypervisor.ChainOps: atomic over the listed
// disks; the overlay files are created when their directory exists.
func (h *Hypervisor) SnapshotDisks(ctx context.Context, uuid string, disks []hypervisor.DiskSnapshot, quiesce bool) error {
	if err := h.beginOp(ctx, "SnapshotDisks"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if !running(e) {
		return fmt.Errorf("snapshot of %s: the domain is not running", e.dom.Name)
	}
	if quiesce && e.agentDown {
		return fmt.Errorf("snapshot of %s: quiesce needs a connected guest agent", e.dom.Name)
	}
	for _, d := range disks {
		if _, err := findDisk(e, d.Target); err != nil {
			return fmt.Errorf("snapshot of %s: %w", e.dom.Name, err)
		}
	}
	var created []string
	for _, d := range disks {
		disk, _ := findDisk(e, d.Target)
		if d.Reuse {
			// Like libvirt's REUSE_EXT: the overlay was created beforehand.
			if st, err := os.Stat(filepath.Dir(d.File)); err == nil && st.IsDir() && !fileExists(d.File) {
				return fmt.Errorf("snapshot of %s: overlay %s to reuse does not exist", e.dom.Name, d.File)
			}
			continue
		}
		if err := createOverlay(ctx, d.File, disk.Source, disk.Format); err != nil {
			for _, c := range created {
				os.Remove(c)
			}
			return fmt.Errorf("snapshot of %s: %w", e.dom.Name, err)
		}
		if fileExists(d.File) {
			created = append(created, d.File)
		}
	}
	for _, d := range disks {
		disk, _ := findDisk(e, d.Target)
		disk.BackingChain = append([]hypervisor.Layer{{Path: disk.Source, Format: disk.Format}}, disk.BackingChain...)
		disk.Source, disk.Format, disk.SourceType = d.File, "qcow2", "file"
	}
	refreshXML(e)
	return nil
}

// createOverlay writes a qcow2 overlay over backing when the overlay's
// directory exists (tests with made-up paths get no files).
func createOverlay(ctx context.Context, path, backing, format string) error {
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil
	}
	if fileExists(path) {
		return fmt.Errorf("overlay %s exists already", path)
	}
	return qemuimg.Default.Create(ctx, path, "qcow2", 0, &qemuimg.Backing{Path: backing, Format: format})
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// chainIndex returns the position of path in the disk's chain: 0 for the
// active layer, 1.. for the backing files; -1 when absent.
func chainIndex(d *hypervisor.Disk, path string) int {
	if d.Source == path {
		return 0
	}
	for i, l := range d.BackingChain {
		if l.Path == path {
			return i + 1
		}
	}
	return -1
}

// BlockCommit implements hypervisor.ChainOps.
func (h *Hypervisor) BlockCommit(ctx context.Context, uuid, target, top, base string, active bool) error {
	if err := h.beginOp(ctx, "BlockCommit"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if !running(e) {
		return fmt.Errorf("block commit on %s: the domain is not running", e.dom.Name)
	}
	d, err := findDisk(e, target)
	if err != nil {
		return err
	}
	if e.jobs[target] != nil {
		return fmt.Errorf("block commit on %s: a block job runs on %s", e.dom.Name, target)
	}
	ti, bi := chainIndex(d, top), chainIndex(d, base)
	switch {
	case ti < 0 || bi < 0:
		return fmt.Errorf("block commit %s into %s on %s: not in the disk's chain", top, base, target)
	case bi <= ti:
		return fmt.Errorf("block commit %s into %s on %s: the base is not below the top", top, base, target)
	case active != (ti == 0):
		return fmt.Errorf("block commit %s on %s: active is %v but the top is layer %d", top, target, active, ti)
	}
	e.setJob(target, &blockJob{kind: "commit", top: top, base: base, active: active, targetDisk: target})
	return nil
}

// BlockPull implements hypervisor.ChainOps.
func (h *Hypervisor) BlockPull(ctx context.Context, uuid, target string) error {
	if err := h.beginOp(ctx, "BlockPull"); err != nil {
		if errors.Is(err, ErrQEMUDied) {
			if serr := h.SetState(uuid, hypervisor.StateCrashed); serr != nil {
				return errors.Join(err, serr)
			}
		}
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if !running(e) {
		return fmt.Errorf("block pull on %s: the domain is not running", e.dom.Name)
	}
	if _, err := findDisk(e, target); err != nil {
		return err
	}
	if e.jobs[target] != nil {
		return fmt.Errorf("block pull on %s: a block job runs on %s", e.dom.Name, target)
	}
	e.setJob(target, &blockJob{kind: "pull", targetDisk: target})
	return nil
}

func (e *entry) setJob(target string, j *blockJob) {
	if e.jobs == nil {
		e.jobs = map[string]*blockJob{}
	}
	e.jobs[target] = j
}

// WaitBlockJob implements hypervisor.ChainOps: the job completes now
// (an active commit pivots to its base).
func (h *Hypervisor) WaitBlockJob(ctx context.Context, uuid, target string, w hypervisor.JobWait) error {
	if err := h.beginOp(ctx, "WaitBlockJob"); err != nil {
		if errors.Is(err, ErrQEMUDied) {
			return errors.Join(err, h.dieAtJobEnd(ctx, uuid, target))
		}
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	j := e.jobs[target]
	if j == nil {
		return nil
	}
	delete(e.jobs, target)
	d, err := findDisk(e, target)
	if err != nil {
		return err
	}
	switch j.kind {
	case "pull":
		d.BackingChain = nil
	case "commit":
		ti, bi := chainIndex(d, j.top), chainIndex(d, j.base)
		layers := append([]hypervisor.Layer{{Path: d.Source, Format: d.Format}}, d.BackingChain...)
		// Layers ti..bi-1 are merged into base; what was above them now
		// sits on base.
		kept := append(slices.Clone(layers[:ti]), layers[bi:]...)
		d.Source, d.Format = kept[0].Path, kept[0].Format
		d.BackingChain = kept[1:]
	}
	if w.Progress != nil {
		w.Progress(1, 1)
	}
	refreshXML(e)
	return nil
}

// dieAtJobEnd is QEMU dying as a pull ends, after it wrote the overlay's
// new header (no backing file) and before it flushed the metadata of the
// pulled clusters: the job is gone, the overlay's file claims to stand
// alone, and the domain is crashed.
func (h *Hypervisor) dieAtJobEnd(ctx context.Context, uuid, target string) error {
	var overlay string
	err := h.with(uuid, func(e *entry) {
		j := e.jobs[target]
		delete(e.jobs, target)
		if d, err := findDisk(e, target); err == nil && j != nil && j.kind == "pull" {
			if _, _, ok := qcow2Backing(d.Source); ok {
				overlay = d.Source
			}
		}
	})
	if err != nil {
		return err
	}
	if overlay != "" {
		if err := qemuimg.Default.Rebase(ctx, overlay, "", "", true); err != nil {
			return err
		}
	}
	return h.SetState(uuid, hypervisor.StateCrashed)
}

// SetDiskSources implements hypervisor.ChainOps: each disk gets the file
// and its backing chain as the file's qcow2 headers tell.
func (h *Hypervisor) SetDiskSources(ctx context.Context, uuid string, sources map[string]hypervisor.Layer) error {
	if err := h.beginOp(ctx, "SetDiskSources"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	for target := range sources {
		if _, err := findDisk(e, target); err != nil {
			return fmt.Errorf("%d of the %d disks to update are not in the definition: %w", 1, len(sources), err)
		}
	}
	for target, l := range sources {
		d, _ := findDisk(e, target)
		d.Source, d.SourceType = l.Path, "file"
		if l.Format != "" {
			d.Format = l.Format
		}
		d.BackingChain = probeChain(l.Path)
	}
	refreshXML(e)
	return nil
}

// probeChain reads the backing chain of a qcow2 file from the headers of
// the files on disk; a missing or non-qcow2 file has none.
func probeChain(path string) []hypervisor.Layer {
	var out []hypervisor.Layer
	seen := map[string]bool{path: true}
	for cur := path; ; {
		b, format, ok := qcow2Backing(cur)
		if !ok || b == "" || seen[b] {
			return out
		}
		if format == "" {
			format = "raw"
		}
		out = append(out, hypervisor.Layer{Path: b, Format: format})
		seen[b] = true
		cur = b
	}
}

// qcow2Backing reads a qcow2 header's backing file (resolved against the
// file's directory) and its format (header extension 0xe2792aca).
func qcow2Backing(path string) (backing, format string, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	hdr := make([]byte, 104)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr[:4]) != "QFI\xfb" {
		return "", "", false
	}
	version := binary.BigEndian.Uint32(hdr[4:])
	off, size := binary.BigEndian.Uint64(hdr[8:]), binary.BigEndian.Uint32(hdr[16:])
	if off == 0 || size == 0 || size > 4096 {
		return "", "", true
	}
	name := make([]byte, size)
	if _, err := f.ReadAt(name, int64(off)); err != nil {
		return "", "", false
	}
	backing = string(name)
	if !filepath.IsAbs(backing) {
		backing = filepath.Join(filepath.Dir(path), backing)
	}
	extStart := int64(72)
	if version >= 3 {
		extStart = int64(binary.BigEndian.Uint32(hdr[100:]))
	}
	for pos := extStart; pos < int64(off); {
		var ext [8]byte
		if _, err := f.ReadAt(ext[:], pos); err != nil {
			break
		}
		typ, n := binary.BigEndian.Uint32(ext[:4]), binary.BigEndian.Uint32(ext[4:])
		if typ == 0 {
			break
		}
		if typ == 0xe2792aca && n < 64 {
			v := make([]byte, n)
			if _, err := f.ReadAt(v, pos+8); err == nil {
				format = string(v)
			}
		}
		pos += 8 + int64((n+7)/8*8)
	}
	return backing, format, true
}

// BootFiles implements hypervisor.ChainOps: the stored definition's kernel,
// initrd, device tree and NVRAM files that exist.
func (h *Hypervisor) BootFiles(ctx context.Context, uuid string) ([]string, error) {
	if err := h.beginOp(ctx, "BootFiles"); err != nil {
		return nil, err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return nil, err
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(e.defXML); err != nil {
		return nil, fmt.Errorf("parse domain xml: %w", err)
	}
	var out []string
	if def.OS == nil {
		return out, nil
	}
	cands := []string{def.OS.Kernel, def.OS.Initrd, def.OS.DTB}
	if def.OS.NVRam != nil {
		cands = append(cands, def.OS.NVRam.NVRam)
	}
	for _, c := range cands {
		if c != "" && fileExists(c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// domainFromXML reads what the fake models of a definition.
func domainFromXML(doc string) (hypervisor.Domain, error) {
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return hypervisor.Domain{}, fmt.Errorf("parse domain xml: %w", err)
	}
	if def.Name == "" {
		return hypervisor.Domain{}, errors.New("domain xml has no name")
	}
	d := hypervisor.Domain{UUID: def.UUID, Name: def.Name, VCPUs: 1}
	if def.VCPU != nil && def.VCPU.Value > 0 {
		d.VCPUs = int(def.VCPU.Value)
	}
	if def.Memory != nil {
		d.MemoryBytes = uint64(def.Memory.Value) << 10
	}
	if def.Devices != nil {
		for _, x := range def.Devices.Disks {
			if x.Target == nil {
				continue
			}
			disk := hypervisor.Disk{Target: x.Target.Dev, Bus: x.Target.Bus, Device: x.Device}
			if disk.Device == "" {
				disk.Device = "disk"
			}
			if x.Driver != nil {
				disk.Format = x.Driver.Type
			}
			if x.Source != nil && x.Source.File != nil {
				disk.SourceType, disk.Source = "file", x.Source.File.File
				disk.BackingChain = probeChain(disk.Source)
			}
			d.Disks = append(d.Disks, disk)
		}
	}
	return d, nil
}

// DefineDomain implements hypervisor.ChainOps. A new domain without a uuid
// gets one; an existing one keeps its state and gets the new definition.
func (h *Hypervisor) DefineDomain(ctx context.Context, doc string) (string, error) {
	d, err := domainFromXML(doc)
	if err != nil {
		return "", err
	}
	if err := h.beginOp(ctx, "DefineDomain"); err != nil {
		return "", err
	}
	if d.UUID == "" {
		d.UUID = newUUID(h)
	}
	u, err := hypervisor.CanonicalUUID(d.UUID)
	if err != nil {
		h.mu.Unlock()
		return "", err
	}
	d.UUID, d.Persistent, d.State = u, true, hypervisor.StateShutoff
	for id, other := range h.domains {
		if id != u && other.dom.Name == d.Name {
			h.mu.Unlock()
			return "", fmt.Errorf("domain %s already exists with uuid %s", d.Name, id)
		}
	}
	if old, ok := h.domains[u]; ok {
		d.State = old.dom.State
	}
	h.mu.Unlock()
	h.PutDomain(d)
	return u, h.with(u, func(e *entry) { e.defXML, e.customDef = doc, true })
}

// newUUID returns a fresh uuid; h.mu is held.
func newUUID(h *Hypervisor) string {
	h.serial++
	return fmt.Sprintf("fa4e0000-0000-4000-8000-%012x", h.serial)
}

// UndefineDomain implements hypervisor.ChainOps; a running domain is refused.
func (h *Hypervisor) UndefineDomain(ctx context.Context, uuid string) error {
	if err := h.beginOp(ctx, "UndefineDomain"); err != nil {
		return err
	}
	e, err := h.find(uuid)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	if running(e) {
		h.mu.Unlock()
		return fmt.Errorf("undefine %s: the domain runs", e.dom.Name)
	}
	h.mu.Unlock()
	h.RemoveDomain(uuid)
	return nil
}

// AttachDisk implements hypervisor.ChainOps.
func (h *Hypervisor) AttachDisk(ctx context.Context, uuid string, nd hypervisor.NewDisk, live bool) error {
	if err := h.beginOp(ctx, "AttachDisk"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if _, err := findDisk(e, nd.Target); err == nil {
		return fmt.Errorf("attach disk %s: the target is in use", nd.Target)
	}
	bus := nd.Bus
	if bus == "" {
		bus = "virtio"
	}
	e.dom.Disks = append(e.dom.Disks, hypervisor.Disk{Target: nd.Target, Bus: bus, Device: "disk", SourceType: "file",
		Source: nd.Path, Format: nd.Format, BackingChain: probeChain(nd.Path)})
	refreshXML(e)
	return nil
}

// DetachDisk implements hypervisor.ChainOps; the disk's files stay.
func (h *Hypervisor) DetachDisk(ctx context.Context, uuid, target string, live bool) error {
	if err := h.beginOp(ctx, "DetachDisk"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if _, err := findDisk(e, target); err != nil {
		return err
	}
	e.dom.Disks = slices.DeleteFunc(e.dom.Disks, func(d hypervisor.Disk) bool { return d.Target == target })
	refreshXML(e)
	return nil
}

// StartDomain implements hypervisor.ChainOps; a running domain is fine.
func (h *Hypervisor) StartDomain(ctx context.Context, uuid string) error {
	if err := h.beginOp(ctx, "StartDomain"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if !running(e) {
		reprobe(e) // a starting QEMU opens the chains as the files say
	}
	from := e.dom.State
	e.dom.State = hypervisor.StateRunning
	h.notifyState(e.dom, from)
	return nil
}

// ResumeDomain implements hypervisor.ChainOps.
func (h *Hypervisor) ResumeDomain(ctx context.Context, uuid string) error {
	if err := h.beginOp(ctx, "ResumeDomain"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	e, err := h.find(uuid)
	if err != nil {
		return err
	}
	if e.dom.State == hypervisor.StatePaused {
		e.dom.State = hypervisor.StateRunning
		h.notifyState(e.dom, hypervisor.StatePaused)
	}
	return nil
}

// reprobe re-reads the chains of the disks whose active layer is a qcow2
// file on disk, as libvirt (running domains, at start) or qemu-img
// (stopped domains) does; disks with made-up paths keep their chain.
func reprobe(e *entry) {
	changed := false
	for i := range e.dom.Disks {
		d := &e.dom.Disks[i]
		if d.SourceType != "file" {
			continue
		}
		if _, _, ok := qcow2Backing(d.Source); !ok {
			continue
		}
		d.BackingChain, changed = probeChain(d.Source), true
	}
	if changed {
		refreshXML(e)
	}
}

// CreateTransient implements hypervisor.Transient: the domain runs at once
// and disappears when destroyed.
func (h *Hypervisor) CreateTransient(ctx context.Context, doc string) (string, error) {
	d, err := domainFromXML(doc)
	if err != nil {
		return "", err
	}
	if err := h.beginOp(ctx, "CreateTransient"); err != nil {
		return "", err
	}
	if d.UUID == "" {
		d.UUID = newUUID(h)
	}
	h.mu.Unlock()
	d.State, d.Persistent = hypervisor.StateRunning, false
	h.PutDomain(d)
	return hypervisor.CanonicalUUID(d.UUID)
}

// DestroyDomain implements hypervisor.Transient: a transient domain goes,
// a persistent one stops; an absent one is fine.
func (h *Hypervisor) DestroyDomain(ctx context.Context, uuid string) error {
	if err := h.beginOp(ctx, "DestroyDomain"); err != nil {
		return err
	}
	e, err := h.find(uuid)
	if errors.Is(err, hypervisor.ErrDomainNotFound) {
		h.mu.Unlock()
		return nil
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	from := e.dom.State
	e.dom.State = hypervisor.StateShutoff
	h.notifyState(e.dom, from)
	if e.dom.Persistent {
		h.mu.Unlock()
		return nil
	}
	h.mu.Unlock()
	h.RemoveDomain(uuid)
	return nil
}

// DomainsNamed implements hypervisor.Transient.
func (h *Hypervisor) DomainsNamed(ctx context.Context, prefix string) ([]string, error) {
	if err := h.beginOp(ctx, "DomainsNamed"); err != nil {
		return nil, err
	}
	defer h.mu.Unlock()
	var out []string
	for _, u := range h.order {
		if strings.HasPrefix(h.domains[u].dom.Name, prefix) {
			out = append(out, u)
		}
	}
	return out, nil
}
