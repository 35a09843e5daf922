package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/fileperm"
	"github.com/knib/knib/internal/fsatomic"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
	"github.com/knib/knib/internal/revert"
)

// Every restore checks what it wrote against the backup before it reports
// success, by what a guest would see, whatever the formats and allocation
// (a file hash cannot: the restored file's layout differs from the
// backup's): by guest digests (guestdigest.go) or, when the backup has
// compressed clusters, with verifiedBy.

// verifiedBy: qemu-img compare reads both images through their backing
// chains and compares them.
const verifiedBy = "qemu-img compare"

// verifiedLabel says how a restored disk was checked: a quick restore's
// overlay is checked by construction (its backing file is the backup file).
func verifiedLabel(quick bool) string {
	if quick {
		return "overlay on the backup file"
	}
	return verifiedBy
}

func (a *Local) readManifest(dir string) (Manifest, string, error) {
	var m Manifest
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return m, "", fmt.Errorf("backup manifest: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, "", fmt.Errorf("backup manifest: %w", err)
	}
	xml, err := os.ReadFile(filepath.Join(dir, "domain.xml"))
	if err != nil {
		return m, "", fmt.Errorf("backup domain definition: %w", err)
	}
	return m, string(xml), nil
}

// openBackup finds a backup directory (relative to the storage root) and reads its manifest and stored domain definition; bases are the
// manifest's disks by target. Its errors are clean: nothing was changed.
func (a *Local) openBackup(root, rel string) (dir, storedXML string, bases map[string]ManifestDisk, err error) {
	if dir, err = inStorage(root, rel); err != nil {
		return "", "", nil, cleanError{err}
	}
	man, storedXML, err := a.readManifest(dir)
	if err != nil {
		return "", "", nil, cleanError{err}
	}
	bases = map[string]ManifestDisk{}
	for _, d := range man.Disks {
		bases[d.Target] = d
	}
	return dir, storedXML, bases, nil
}

// writeDisk writes a disk (prepareDisk) and puts it in place at once; it
// returns how the disk was verified.
func (a *Local) writeDisk(ctx context.Context, src, dest, format string, quick bool, trash *[]string) (string, error) {
	p, err := a.prepareDisk(ctx, src, dest, format, quick)
	if err != nil {
		return "", err
	}
	return p.verified, p.commit(trash)
}

// preparedDisk is a restored disk written and verified beside its
// destination, not yet in place: a restore of several disks prepares them
// all, and checks the backup files' hashes, before it replaces any.
type preparedDisk struct {
	part, dest, src string
	quick           bool
	// verified says how the content was checked against the backup.
	verified string
}

// prepareDisk writes a backup file's flattened content (or, quick, a thin
// overlay on it) beside dest, fsyncs it and checks it against the backup.
// On error nothing is left behind.
func (a *Local) prepareDisk(ctx context.Context, src, dest, format string, quick bool) (preparedDisk, error) {
	p := preparedDisk{part: dest + ".knib-restore.part", dest: dest, src: src, quick: quick}
	os.Remove(p.part)
	if err := a.perm.MkdirAll(filepath.Dir(dest)); err != nil {
		return p, err
	}
	var err error
	var want <-chan digestPair
	if quick {
		err = a.img.Create(ctx, p.part, "qcow2", 0, &qemuimg.Backing{Path: src, Format: "qcow2"})
	} else {
		// The backup's guest digest is taken while qemu-img reads the same
		// files: the verification below then reads back only the written
		// image, not the backup a second time.
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		want = a.startDigest(dctx, src, "qcow2")
		// No flush of its own (-t unsafe): the one fsync is below.
		err = a.img.Convert(ctx, qemuimg.ConvertOptions{Src: src, SrcFormat: "qcow2", Dst: p.part, DstFormat: format,
			ForceShare: true, DstCache: "unsafe", OutOfOrder: true})
	}
	if err == nil {
		// QEMU writes the restored disk (or the overlay): 0660 in its
		// group, whatever qemu-img's umask made of it.
		err = a.perm.Disk(p.part)
	}
	if err != nil {
		p.discard()
		return p, err
	}
	// The fsync and the check run side by side: the check reads what was
	// written (the page cache), the fsync puts it on disk; the disk counts
	// as written when both succeeded.
	synced := make(chan error, 1)
	go func() { synced <- syncFile(p.part) }()
	verr := a.checkPrepared(ctx, &p, want, format)
	if err := <-synced; err != nil {
		p.discard()
		return p, err
	}
	if verr != nil {
		p.discard()
		return p, verr
	}
	return p, nil
}

// checkPrepared checks a written disk (or overlay) against its backup file
// and sets p.verified.
func (a *Local) checkPrepared(ctx context.Context, p *preparedDisk, want <-chan digestPair, format string) error {
	if p.quick {
		// An empty overlay reads through to the backup file: its content is
		// the backup's by construction. Check the construction (backing file
		// and size, O(1)) instead of reading every byte, so that the time to
		// a running VM does not grow with the disk.
		if err := a.checkOverlay(ctx, p.part, p.src); err != nil {
			return fmt.Errorf("verify %s: %w", p.dest, err)
		}
		p.verified = verifiedLabel(true)
		return nil
	}
	same, ok, err := a.sameByDigest(ctx, want, p.part, format)
	p.verified = verifiedByDigest
	if err == nil && !ok {
		// Compressed clusters: qemu-img reads both images.
		same, err = a.img.Compare(ctx, p.src, p.part, true)
		p.verified = verifiedBy
	}
	if err != nil {
		return fmt.Errorf("verify %s: %w", p.dest, err)
	}
	if !same {
		return fmt.Errorf("verify %s: the written image differs from the backup", p.dest)
	}
	return nil
}

// prepareAll runs prepare(ctx, i) for i in [0, n) side by side and returns
// the first error; that error cancels the context of the others.
func (a *Local) prepareAll(ctx context.Context, n int, prepare func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := prepare(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// discard removes a prepared disk that will not be used.
func (p preparedDisk) discard() { os.Remove(p.part) }

// commit puts a prepared disk in place. A quick one moves the file it
// replaces aside and adds that file to trash, for the caller to free once
// the VM runs.
func (p preparedDisk) commit(trash *[]string) error {
	if p.quick {
		// The overlay's backing file, kept beside it until consolidation
		// pulled it in: a QEMU that dies as a pull ends can leave the
		// overlay's header without it (rejoinBacking).
		if err := fsatomic.WriteFile(backingNote(p.dest), []byte(p.src), 0o600); err != nil {
			return err
		}
		// Freeing a large old disk file takes seconds and slows everything
		// else on that file system, QEMU's start included: move it aside
		// and let the caller free it after the start.
		old := p.dest + ".knib-old"
		if err := os.Rename(p.dest, old); err == nil && trash != nil {
			*trash = append(*trash, old)
		}
	}
	return os.Rename(p.part, p.dest)
}

// checkOverlay verifies that overlay is an empty qcow2 whose backing file
// is backing, with the same virtual size.
func (a *Local) checkOverlay(ctx context.Context, overlay, backing string) error {
	infos, err := a.img.Info(ctx, overlay, qemuimg.InfoOptions{BackingChain: true, ForceShare: true})
	if err != nil {
		return err
	}
	if len(infos) < 2 || infos[0].FullBackingFilename != backing || infos[0].VirtualSize != infos[1].VirtualSize {
		return fmt.Errorf("overlay %s is not a thin overlay on %s", overlay, backing)
	}
	return nil
}

func (a *Local) restore(ctx context.Context, req agentapi.RestoreRequest, progress func(float64, string)) (any, error) {
	dir, storedXML, bases, err := a.openBackup(req.Storage, req.Dir)
	if err != nil {
		return nil, err
	}
	// The chain's files are hashed while they are copied (a quick restore
	// copies nothing: its consolidation checks them).
	var chk *check
	if !req.Quick {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chk = startCheck(cctx, req.Storage, req.Verify)
	}
	res := agentapi.RestoreResult{UUID: req.DomainUUID}
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	switch {
	case errors.Is(err, hypervisor.ErrDomainNotFound):
		// The VM was deleted: define it again from the stored definition,
		// with its disks pointing at their own files, not at old deltas.
		progress(5, "defining the VM from the backup")
		doc, err := a.rewriteDefinition(storedXML, func(def *libvirtxml.Domain) error {
			if def.UUID != req.DomainUUID {
				return fmt.Errorf("the backup belongs to domain %s, not %s", def.UUID, req.DomainUUID)
			}
			return pointDisks(def, func(target string) (string, string, bool) {
				b, ok := bases[target]
				return b.Path, b.Format, ok
			})
		})
		if err != nil {
			return nil, cleanError{err}
		}
		if err := a.restoreBootFiles(dir, storedXML); err != nil {
			return nil, cleanError{err}
		}
		if _, err := a.hv.DefineDomain(ctx, doc); err != nil {
			return nil, cleanError{err}
		}
		res.Defined = true
		if dom, err = a.hv.Domain(ctx, req.DomainUUID); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, cleanError{err}
	case dom.State != hypervisor.StateShutoff && dom.State != hypervisor.StateCrashed:
		return nil, cleanError{fmt.Errorf("the VM is %s; stop it before restoring", dom.State)}
	}
	res.Name = dom.Name
	// The disk files a quick restore replaced are freed once it returns,
	// after the VM started.
	var trash []string
	defer func() {
		if len(trash) > 0 {
			go removeFiles(trash)
		}
	}()
	attached := map[string]hypervisor.Disk{}
	for _, d := range dom.Disks {
		attached[d.Target] = d
	}
	// First every disk is written beside its destination; only when all
	// are written and the backup files proved intact does any replace the
	// VM's disk.
	type step struct {
		f          agentapi.RestoreFile
		src        string
		rd         agentapi.RestoredDisk
		cur        hypervisor.Disk
		isAttached bool
		format     string
		disk       preparedDisk
	}
	var steps []step
	discard := func() {
		for _, st := range steps {
			st.disk.discard()
		}
	}
	var targets []string
	for _, f := range req.Files {
		src, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return res, err
		}
		rd := agentapi.RestoredDisk{Target: f.Disk, Verified: verifiedLabel(req.Quick)}
		cur, isAttached := attached[f.Disk]
		format := "qcow2"
		switch {
		case isAttached && cur.SourceType == "file":
			if isDeltaOf(cur.Source, dom.UUID) {
				return res, fmt.Errorf("disk %s still runs on a backup delta; end the chain first", f.Disk)
			}
			rd.Path, format = cur.Source, cur.Format
		case isAttached:
			return res, fmt.Errorf("disk %s is not a file (%s)", f.Disk, cur.SourceType)
		default:
			b, ok := bases[f.Disk]
			if !ok {
				return res, fmt.Errorf("the backup's manifest has no file path for disk %s", f.Disk)
			}
			rd.Path, format = b.Path, b.Format
			if _, err := os.Stat(rd.Path); err == nil {
				rd.Path = freeName(strings.TrimSuffix(rd.Path, filepath.Ext(rd.Path)) + "-restored.qcow2")
			}
		}
		if req.Quick || format == "" {
			format = "qcow2"
		}
		steps = append(steps, step{f: f, src: src, rd: rd, cur: cur, isAttached: isAttached, format: format})
		targets = append(targets, f.Disk)
	}
	// The disks are written (and verified) side by side; the first error
	// stops the others.
	progress(10, "restoring "+strings.Join(targets, ", "))
	if err := a.prepareAll(ctx, len(steps), func(ctx context.Context, i int) error {
		st := &steps[i]
		var err error
		if st.disk, err = a.prepareDisk(ctx, st.src, st.rd.Path, st.format, req.Quick); err != nil {
			return fmt.Errorf("restore disk %s: %w", st.f.Disk, err)
		}
		st.rd.Verified = st.disk.verified
		return nil
	}); err != nil {
		discard()
		err = chk.or(err)
		if damageOf(err) != nil && res.Defined {
			if uerr := a.hv.UndefineDomain(context.WithoutCancel(ctx), req.DomainUUID); uerr != nil {
				return res, errors.Join(err, fmt.Errorf("undefine the VM defined for the restore: %w", uerr))
			}
		}
		return res, err
	}
	damaged, err := chk.result(req.Verify)
	if err != nil {
		discard()
		if damageOf(err) != nil {
			if res.Defined {
				// The VM was missing before: it is again.
				if uerr := a.hv.UndefineDomain(context.WithoutCancel(ctx), req.DomainUUID); uerr != nil {
					return res, errors.Join(err, fmt.Errorf("undefine the VM defined for the restore: %w", uerr))
				}
			}
			return res, cleanError{err}
		}
		return res, err
	}
	res.Damaged = damaged
	for i, st := range steps {
		f, rd, cur, isAttached, format := st.f, st.rd, st.cur, st.isAttached, st.format
		if err := st.disk.commit(&trash); err != nil {
			for _, rest := range steps[i+1:] {
				rest.disk.discard()
			}
			return res, fmt.Errorf("restore disk %s: %w", f.Disk, err)
		}
		if isAttached && req.Quick && cur.Format != "qcow2" {
			if err := a.hv.SetDiskSources(ctx, dom.UUID, map[string]hypervisor.Layer{f.Disk: {Path: rd.Path, Format: "qcow2"}}); err != nil {
				return res, err
			}
		}
		if !isAttached {
			if err := a.hv.AttachDisk(ctx, dom.UUID, hypervisor.NewDisk{Target: f.Disk, Bus: bases[f.Disk].Bus, Path: rd.Path, Format: format}, false); err != nil {
				return res, err
			}
			rd.Attached = true
		}
		res.Disks = append(res.Disks, rd)
	}
	if req.Quick {
		progress(95, "starting the VM")
		if err := a.hv.StartDomain(ctx, dom.UUID); err != nil {
			return res, err
		}
		res.Started = true
	}
	return res, nil
}

// rewriteDefinition parses a stored domain XML, lets edit change it, and
// returns the new XML.
func (a *Local) rewriteDefinition(doc string, edit func(*libvirtxml.Domain) error) (string, error) {
	var def libvirtxml.Domain
	if err := def.Unmarshal(doc); err != nil {
		return "", fmt.Errorf("stored domain definition: %w", err)
	}
	if err := edit(&def); err != nil {
		return "", err
	}
	return def.Marshal()
}

// keepDisks drops the disk devices of def whose target has no file in
// dests; other devices (cdroms, floppies) stay.
func keepDisks(def *libvirtxml.Domain, dests map[string]string) {
	kept := def.Devices.Disks[:0]
	for _, d := range def.Devices.Disks {
		if d.Target != nil && (d.Device == "" || d.Device == "disk") && dests[d.Target.Dev] == "" {
			continue
		}
		kept = append(kept, d)
	}
	def.Devices.Disks = kept
}

// pointDisks sets each disk's source to the file newSource gives for its
// target and drops the recorded backing chain.
func pointDisks(def *libvirtxml.Domain, newSource func(target string) (path, format string, ok bool)) error {
	if def.Devices == nil {
		return nil
	}
	for i := range def.Devices.Disks {
		d := &def.Devices.Disks[i]
		if d.Target == nil || (d.Device != "" && d.Device != "disk") {
			continue
		}
		path, format, ok := newSource(d.Target.Dev)
		if !ok {
			continue
		}
		d.Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}
		if d.Driver == nil {
			d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
		}
		if format != "" {
			d.Driver.Type = format
		}
		d.BackingStore = nil
	}
	return nil
}

// restoreBootFiles puts back boot files the stored definition names that are
// missing on this host, from the backup's boot/ directory.
func (a *Local) restoreBootFiles(dir, storedXML string) error {
	var def libvirtxml.Domain
	if err := def.Unmarshal(storedXML); err != nil {
		return err
	}
	if def.OS == nil {
		return nil
	}
	cands := []string{def.OS.Kernel, def.OS.Initrd, def.OS.DTB}
	if def.OS.NVRam != nil {
		cands = append(cands, def.OS.NVRam.NVRam)
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if _, err := os.Stat(c); err == nil {
			continue
		}
		saved := filepath.Join(dir, "boot", filepath.Base(c))
		if _, err := os.Stat(saved); err != nil {
			return fmt.Errorf("boot file %s is missing and not in the backup", c)
		}
		if err := a.perm.MkdirAll(filepath.Dir(c)); err != nil {
			return err
		}
		if err := a.copyFile(saved, c, fileperm.DiskMode); err != nil {
			return err
		}
	}
	return nil
}

// freeName returns path, or path with a -N suffix, that does not exist yet.
func freeName(path string) string {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return path
	}
	ext := filepath.Ext(path)
	stem := strings.TrimSuffix(path, ext)
	for i := 2; ; i++ {
		p := fmt.Sprintf("%s-%d%s", stem, i, ext)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
	}
}

// nextTarget returns the first free vdX device name.
func nextTarget(dom hypervisor.Domain) string {
	used := map[string]bool{}
	for _, d := range dom.Disks {
		used[d.Target] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t := "vd" + string(c)
		if !used[t] {
			return t
		}
	}
	return ""
}

func (a *Local) restoreVolume(ctx context.Context, req agentapi.RestoreVolumeRequest, progress func(float64, string)) (any, error) {
	src, err := inStorage(req.Storage, req.File)
	if err != nil {
		return nil, cleanError{err}
	}
	// Leave nothing half-made: each step registers its undo.
	r := revert.New(a.log)
	defer r.Fail()
	if req.Adopt != "" {
		defined, err := a.adopt(ctx, req.DomainUUID, req.Adopt)
		if err != nil {
			return nil, cleanError{err}
		}
		if defined {
			r.Add("undefine the adopted VM", func() error { return a.hv.UndefineDomain(context.WithoutCancel(ctx), req.DomainUUID) })
		}
	}
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	target := nextTarget(dom)
	if target == "" {
		return nil, cleanError{errors.New("the VM has no free vd* device name left")}
	}
	dir := ""
	for _, d := range dom.Disks {
		if d.SourceType == "file" && d.Source != "" {
			dir = filepath.Dir(d.Source)
			break
		}
	}
	if dir == "" {
		return nil, cleanError{errors.New("the VM has no file disk to place the new disk next to")}
	}
	running := dom.State == hypervisor.StateRunning
	if !running && dom.State != hypervisor.StateShutoff {
		return nil, cleanError{fmt.Errorf("the VM is %s: a volume restore needs it running or shut off", dom.State)}
	}
	// A quick restore is an overlay on the backup file, whether the VM runs
	// or not; a stopped VM is started on it below. It never turns into a
	// full copy.
	quick := req.Quick
	dest := freeName(filepath.Join(dir, req.Name+".qcow2"))
	progress(10, "writing "+dest)
	var chk *check
	if !quick {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chk = startCheck(cctx, req.Storage, req.Verify)
	}
	disk, err := a.prepareDisk(ctx, src, dest, "qcow2", quick)
	if err != nil {
		return nil, chk.or(err)
	}
	damaged, err := chk.result(req.Verify)
	if err != nil {
		disk.discard()
		if damageOf(err) != nil {
			return nil, cleanError{err}
		}
		return nil, err
	}
	if err := disk.commit(nil); err != nil {
		disk.discard()
		return nil, err
	}
	r.Add("remove the new disk", func() error { return os.Remove(dest) })
	progress(80, "attaching "+target)
	if err := a.hv.AttachDisk(ctx, dom.UUID, hypervisor.NewDisk{Target: target, Bus: "virtio", Path: dest, Format: "qcow2"}, running); err != nil {
		return nil, err
	}
	r.Add("detach the new disk", func() error { return a.hv.DetachDisk(context.WithoutCancel(ctx), dom.UUID, target, false) })
	started := running
	if quick && !running {
		progress(90, "starting the VM on the restored disk")
		if err := a.hv.StartDomain(ctx, dom.UUID); err != nil {
			return nil, fmt.Errorf("start the VM: %w", err)
		}
		started = true
	}
	r.Success()
	return agentapi.RestoreResult{UUID: dom.UUID, Name: dom.Name, Started: started, Damaged: damaged,
		Disks: []agentapi.RestoredDisk{{Target: target, Path: dest, Verified: disk.verified, Attached: true}}}, nil
}

// adopt defines here a stopped VM of another host of the zone from its
// inactive definition, when it is not defined here yet; it reports whether
// it defined it. Every file disk of the definition must exist on this host
// (shared primary storage): a VM is not moved onto disks it can't read.
func (a *Local) adopt(ctx context.Context, uuid, xml string) (bool, error) {
	if _, err := a.hv.Domain(ctx, uuid); err == nil {
		return false, nil // an earlier attempt defined it
	} else if !errors.Is(err, hypervisor.ErrDomainNotFound) {
		return false, err
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(xml); err != nil {
		return false, fmt.Errorf("the VM's definition: %w", err)
	}
	if d.UUID != uuid {
		return false, fmt.Errorf("the definition is of vm %s, not %s", d.UUID, uuid)
	}
	if d.Devices != nil {
		for _, disk := range d.Devices.Disks {
			if disk.Source == nil || disk.Source.File == nil || disk.Source.File.File == "" {
				continue
			}
			if _, err := os.Stat(disk.Source.File.File); err != nil {
				return false, fmt.Errorf("this host does not see disk %s of the VM (a VM moves between hosts only on shared primary storage): %w", disk.Source.File.File, err)
			}
		}
	}
	got, err := a.hv.DefineDomain(ctx, xml)
	if err != nil {
		return false, err
	}
	if got != uuid {
		return true, fmt.Errorf("defining the VM gave uuid %s, want %s", got, uuid)
	}
	a.log.Info("vm defined on this host for a volume restore", "vm", d.Name, "uuid", uuid)
	return true, nil
}

// definition answers a VM's inactive definition.
func (a *Local) definition(ctx context.Context, req agentapi.DefinitionRequest, progress func(float64, string)) (any, error) {
	xml, err := a.hv.DomainXML(ctx, req.DomainUUID, true)
	if err != nil {
		return nil, err
	}
	return agentapi.DefinitionResult{XML: xml}, nil
}

func (a *Local) createVM(ctx context.Context, req agentapi.CreateVMRequest, progress func(float64, string)) (any, error) {
	_, storedXML, bases, err := a.openBackup(req.Storage, req.Dir)
	if err != nil {
		return nil, err
	}
	res := agentapi.RestoreResult{Name: req.Name}
	dests := map[string]string{}
	// Leave nothing half-made: each step registers its undo.
	r := revert.New(a.log)
	defer r.Fail()
	var chk *check
	if !req.Quick {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		chk = startCheck(cctx, req.Storage, req.Verify)
	}
	for i, f := range req.Files {
		progress(10+70*float64(i)/float64(len(req.Files)), "writing "+f.Disk)
		src, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return nil, err
		}
		b, ok := bases[f.Disk]
		if !ok {
			return nil, fmt.Errorf("the backup's manifest has no file path for disk %s", f.Disk)
		}
		destDir := filepath.Dir(b.Path)
		if req.OwnDiskDir {
			destDir = filepath.Join(a.diskDir(), req.Name)
			if err := a.perm.MkdirAll(destDir); err != nil {
				return nil, err
			}
		}
		dest := freeName(filepath.Join(destDir, req.Name+"-"+f.Disk+".qcow2"))
		verified, err := a.writeDisk(ctx, src, dest, "qcow2", req.Quick, nil)
		if err != nil {
			err = chk.or(fmt.Errorf("disk %s: %w", f.Disk, err))
			if damageOf(err) != nil {
				r.Fail()
				if rerr := r.Err(); rerr != nil {
					return nil, errors.Join(err, rerr)
				}
			}
			return nil, err
		}
		r.Add("remove "+dest, func() error { return removeIfExists(dest) })
		dests[f.Disk] = dest
		res.Disks = append(res.Disks, agentapi.RestoredDisk{Target: f.Disk, Path: dest, Verified: verified})
	}
	// The new disks are new files; the VM is defined only from intact
	// backup files (the reverter removes the files otherwise).
	damaged, err := chk.result(req.Verify)
	if err != nil {
		if damageOf(err) != nil {
			r.Fail()
			if rerr := r.Err(); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
			return nil, cleanError{err}
		}
		return nil, err
	}
	res.Damaged = damaged
	doc, err := a.rewriteDefinition(storedXML, func(def *libvirtxml.Domain) error {
		def.Name, def.UUID = req.Name, ""
		if def.Devices != nil {
			// Log files of serial ports and consoles get the new VM's own.
			for _, p := range serialFiles(def) {
				if req.OwnDiskDir {
					*p = filepath.Join(a.diskDir(), req.Name, filepath.Base(*p))
				} else {
					*p = filepath.Join(filepath.Dir(*p), req.Name+"-"+filepath.Base(*p))
				}
			}
			for i := range def.Devices.Interfaces {
				def.Devices.Interfaces[i].MAC = nil // libvirt assigns new addresses
			}
			// Disks not in the backup are dropped: the new VM gets only
			// what the backup holds.
			keepDisks(def, dests)
		}
		return pointDisks(def, func(target string) (string, string, bool) {
			p, ok := dests[target]
			return p, "qcow2", ok
		})
	})
	if err != nil {
		return nil, err
	}
	progress(85, "defining "+req.Name)
	uuid, err := a.hv.DefineDomain(ctx, doc)
	if err != nil {
		return nil, err
	}
	r.Add("undefine "+req.Name, func() error { return a.hv.UndefineDomain(context.WithoutCancel(ctx), uuid) })
	res.UUID, res.Defined = uuid, true
	if req.Start || req.Quick {
		progress(95, "starting "+req.Name)
		if err := a.hv.StartDomain(ctx, uuid); err != nil {
			return nil, err
		}
		res.Started = true
	}
	r.Success()
	return res, nil
}

// serialFiles returns the file paths serial ports and consoles write to
// (file sources and log files).
func serialFiles(def *libvirtxml.Domain) []*string {
	var out []*string
	add := func(src *libvirtxml.DomainChardevSource, log *libvirtxml.DomainChardevLog) {
		if src != nil && src.File != nil && src.File.Path != "" {
			out = append(out, &src.File.Path)
		}
		if log != nil && log.File != "" {
			out = append(out, &log.File)
		}
	}
	for i := range def.Devices.Serials {
		add(def.Devices.Serials[i].Source, def.Devices.Serials[i].Log)
	}
	for i := range def.Devices.Consoles {
		add(def.Devices.Consoles[i].Source, def.Devices.Consoles[i].Log)
	}
	return out
}

// consolidate pulls backing files that live on backup storage into the VM's
// disks (block pull), so the VM no longer depends on the backup storage.
func (a *Local) consolidate(ctx context.Context, req agentapi.ConsolidateRequest, progress func(float64, string)) (any, error) {
	if req.Storage == "" {
		return nil, cleanError{errors.New("consolidation: the task names no backup storage")}
	}
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, err
	}
	if dom.State == hypervisor.StateCrashed {
		// QEMU died since the quick restore started the VM (it ran, and
		// nobody stopped it), maybe as a pull ended: the overlays get their
		// backup files back before it starts again.
		a.log.Warn("qemu died before consolidation; starting the VM again", "vm", dom.Name)
		for _, d := range dom.Disks {
			if err := a.rejoinBacking(ctx, d); err != nil {
				return nil, err
			}
		}
		if err := a.hv.StartDomain(ctx, dom.UUID); err != nil {
			return nil, fmt.Errorf("start the VM again after qemu died: %w", err)
		}
		if dom, err = a.hv.Domain(ctx, req.DomainUUID); err != nil {
			return nil, err
		}
	}
	if dom.State != hypervisor.StateRunning {
		return nil, fmt.Errorf("the VM is %s; consolidation runs while it runs", dom.State)
	}
	var todo []hypervisor.Disk
	for _, d := range dom.Disks {
		if dependsOnStorage(req.Storage, d) {
			todo = append(todo, d)
		}
	}
	res := agentapi.ConsolidateResult{Disks: []string{}}
	if len(todo) > 0 {
		// The overlays read these backup files: they must be intact before
		// their data is pulled into the VM's disks. A damaged one stops
		// here; the VM keeps running on its overlays.
		progress(0, "checking the backup files")
		if _, err := verifyNow(ctx, req.Storage, agentapi.Verify{Files: req.Verify.Files}); err != nil {
			if damageOf(err) != nil {
				return res, cleanError{err}
			}
			return res, err
		}
	}
	for i, disk := range todo {
		target := disk.Target
		base := 100 * float64(i) / float64(len(todo))
		span := 100 / float64(len(todo))
		progress(base, "consolidating "+target)
		for restarts := 0; ; restarts++ {
			err := a.pullDisk(ctx, dom.UUID, target, func(cur, end uint64) {
				if end > 0 {
					progress(base+span*float64(cur)/float64(end), fmt.Sprintf("consolidating %s: %d/%d MiB", target, cur>>20, end>>20))
				}
			})
			if err == nil {
				break
			}
			// QEMU 7.2 (Debian 12) sometimes dies with a segfault around
			// the start of a stream job on a guest that has just booted.
			// The VM was running and nobody stopped it: start it again
			// on the same overlays (whatever was pulled is in them) and
			// pull again, rather than leave it down.
			now, derr := a.settledState(ctx, dom.UUID)
			if derr != nil || now.State != hypervisor.StateCrashed {
				return res, err
			}
			// The overlay gets its backup file back first, whether the VM
			// starts again now or at the next consolidation: one that
			// lost it would start standing alone on zeros.
			if rerr := a.rejoinBacking(ctx, disk); rerr != nil {
				return res, errors.Join(err, rerr)
			}
			if restarts >= consolidateRestarts {
				return res, err
			}
			a.log.Warn("qemu died during the block pull; starting the VM again", "vm", dom.Name, "disk", target, "err", err)
			if serr := a.hv.StartDomain(ctx, dom.UUID); serr != nil {
				return res, errors.Join(err, fmt.Errorf("start the VM again after qemu died: %w", serr))
			}
		}
		after, err := a.hv.Domain(ctx, dom.UUID)
		if err != nil {
			return res, err
		}
		for _, d := range after.Disks {
			if d.Target == target && dependsOnStorage(req.Storage, d) {
				return res, fmt.Errorf("disk %s still depends on backup storage after the block pull", target)
			}
		}
		if err := os.Remove(backingNote(disk.Source)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, err
		}
		res.Disks = append(res.Disks, target)
	}
	// The pulled data was flushed when each pull ended; a QEMU that died
	// since lost none of it, and the VM that ran is started again.
	if now, err := a.hv.Domain(ctx, dom.UUID); err != nil {
		return res, err
	} else if now.State == hypervisor.StateCrashed {
		a.log.Warn("qemu died after consolidation; starting the VM again", "vm", dom.Name)
		if err := a.hv.StartDomain(ctx, dom.UUID); err != nil {
			return res, fmt.Errorf("start the VM again after qemu died: %w", err)
		}
	}
	return res, nil
}

// rejoinBacking points a disk's overlay at its first backing file again
// after QEMU died under its block pull. QEMU writes a finished pull's new
// header (no backing file) before the metadata of the clusters it pulled;
// dying in between leaves an overlay that claims to stand alone but reads
// zeros where the pulled data went. Every cluster the overlay does hold is
// as new as the backup file's (pulled from it, or written by the guest
// since), and backup files never change, so the overlay on its backing
// file again reads exactly what the VM had; the pull then runs again.
func (a *Local) rejoinBacking(ctx context.Context, d hypervisor.Disk) error {
	var back hypervisor.Layer
	if raw, err := os.ReadFile(backingNote(d.Source)); err == nil && len(raw) > 0 {
		back = hypervisor.Layer{Path: string(raw), Format: "qcow2"}
	} else if len(d.BackingChain) > 0 {
		back = d.BackingChain[0]
	} else {
		return nil
	}
	infos, err := a.img.Info(ctx, d.Source, qemuimg.InfoOptions{ForceShare: true})
	if err != nil {
		return fmt.Errorf("read the overlay of %s: %w", d.Target, err)
	}
	if infos[0].BackingFilename != "" {
		return nil
	}
	format := back.Format
	if format == "" {
		format = "qcow2"
	}
	a.log.Warn("the overlay lost its backing file with qemu; setting it again", "disk", d.Target, "overlay", d.Source, "backing", back.Path)
	if err := a.img.Rebase(ctx, d.Source, back.Path, format, true); err != nil {
		return fmt.Errorf("set the backing file of %s again: %w", d.Target, err)
	}
	return nil
}

// settledState reads a domain after a failed block job call: libvirt may
// report a QEMU that just died as running for a moment, so a running
// domain is read again a few times before it counts as running.
func (a *Local) settledState(ctx context.Context, uuid string) (hypervisor.Domain, error) {
	for i := 0; ; i++ {
		d, err := a.hv.Domain(ctx, uuid)
		if err != nil || d.State != hypervisor.StateRunning || i == 20 {
			return d, err
		}
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-a.clk.After(100 * time.Millisecond):
		}
	}
}

// backingNote is the file beside a quick-restore overlay that names its
// backup file until consolidation pulled it in.
func backingNote(overlay string) string { return overlay + ".knib-backing" }

// consolidateRestarts bounds how often a consolidation starts a VM again
// whose QEMU died during a block pull.
const consolidateRestarts = 2

// pullDisk pulls one disk's backing files into its active layer and waits
// for the job to end.
func (a *Local) pullDisk(ctx context.Context, uuid, target string, progress func(cur, end uint64)) error {
	if err := a.hv.WaitBlockJob(ctx, uuid, target, hypervisor.JobWait{}); err != nil {
		return err
	}
	if err := a.hv.BlockPull(ctx, uuid, target); err != nil {
		return err
	}
	return a.hv.WaitBlockJob(ctx, uuid, target, hypervisor.JobWait{Started: true, Progress: progress})
}

// dependsOnStorage reports whether a disk's chain reaches into the backup
// storage at root.
func dependsOnStorage(root string, d hypervisor.Disk) bool {
	if root == "" {
		return false
	}
	root = filepath.Clean(root) + string(filepath.Separator)
	return slices.ContainsFunc(d.BackingChain, func(l hypervisor.Layer) bool { return strings.HasPrefix(l.Path, root) })
}

// removeFiles deletes files, ignoring errors: what it frees is no longer
// referenced by anything.
func removeFiles(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}
