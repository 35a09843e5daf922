package lv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/hypervisor"
)

// snapshotDisks takes one atomic external disk-only snapshot of the listed
// disks (DISK_ONLY|ATOMIC|NO_METADATA, plus QUIESCE). Disks not listed are
// excluded explicitly, so libvirt never invents overlays for them.
func snapshotDisks(l *libvirt.Libvirt, dom libvirt.Domain, disks []hypervisor.DiskSnapshot, quiesce bool, took *time.Duration) error {
	live, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return fmt.Errorf("domain xml: %w", err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(live); err != nil {
		return fmt.Errorf("parse domain xml: %w", err)
	}
	want := map[string]string{}
	reuse := len(disks) > 0
	for _, d := range disks {
		want[d.Target] = d.File
		reuse = reuse && d.Reuse
	}
	snap := libvirtxml.DomainSnapshot{
		Name:   fmt.Sprintf("knib-%d", clock.Real{}.Now().UnixNano()),
		Memory: &libvirtxml.DomainSnapshotMemory{Snapshot: "no"},
		Disks:  &libvirtxml.DomainSnapshotDisks{},
	}
	found := 0
	if def.Devices != nil {
		for _, d := range def.Devices.Disks {
			if d.Target == nil {
				continue
			}
			file, ok := want[d.Target.Dev]
			if !ok {
				snap.Disks.Disks = append(snap.Disks.Disks, libvirtxml.DomainSnapshotDisk{Name: d.Target.Dev, Snapshot: "no"})
				continue
			}
			found++
			snap.Disks.Disks = append(snap.Disks.Disks, libvirtxml.DomainSnapshotDisk{
				Name:     d.Target.Dev,
				Snapshot: "external",
				Driver:   &libvirtxml.DomainDiskDriver{Type: "qcow2"},
				Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: file}},
			})
		}
	}
	if found != len(disks) {
		return fmt.Errorf("%d of the %d disks to snapshot are not attached", len(disks)-found, len(disks))
	}
	doc, err := snap.Marshal()
	if err != nil {
		return err
	}
	flags := libvirt.DomainSnapshotCreateDiskOnly | libvirt.DomainSnapshotCreateAtomic | libvirt.DomainSnapshotCreateNoMetadata
	if quiesce {
		flags |= libvirt.DomainSnapshotCreateQuiesce
	}
	if reuse {
		flags |= libvirt.DomainSnapshotCreateReuseExt
	}
	start := clock.Real{}.Now()
	_, err = l.DomainSnapshotCreateXML(dom, doc, uint32(flags))
	*took = clock.Since(clock.Real{}, start)
	if err != nil {
		return fmt.Errorf("create disk-only snapshot: %w", err)
	}
	return nil
}

// blockCommit starts committing top into base on a disk; active commits the
// active layer (and is pivoted by waitBlockJob).
func blockCommit(l *libvirt.Libvirt, dom libvirt.Domain, target, top, base string, active bool) error {
	var flags libvirt.DomainBlockCommitFlags
	if active {
		flags |= libvirt.DomainBlockCommitActive
	}
	if err := l.DomainBlockCommit(dom, target, libvirt.OptString{base}, libvirt.OptString{top}, 0, flags); err != nil {
		return fmt.Errorf("block commit %s into %s on %s: %w", top, base, target, err)
	}
	return nil
}

// blockPull starts pulling every backing file into the active layer.
// blockPull starts a block pull with the domain's vCPUs paused for the
// start of the job, then resumes them (a pause of milliseconds). QEMU 7.2
// (Debian 12) sometimes segfaults when a stream job starts while a guest
// that has just booted does I/O (4 of 10 pulls right after a start under
// load); a pull started while the VM was paused never did, in the same
// runs. A domain paused before stays paused.
func blockPull(l *libvirt.Libvirt, dom libvirt.Domain, target string) (err error) {
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return fmt.Errorf("state before the block pull on %s: %w", target, err)
	}
	if libvirt.DomainState(state) == libvirt.DomainRunning {
		if err := l.DomainSuspend(dom); err != nil {
			return fmt.Errorf("pause for the block pull on %s: %w", target, err)
		}
		defer func() {
			if rerr := l.DomainResume(dom); rerr != nil {
				err = errors.Join(err, fmt.Errorf("resume after starting the block pull on %s: %w", target, rerr))
			}
		}()
	}
	if err := l.DomainBlockPull(dom, target, 0, 0); err != nil {
		return fmt.Errorf("block pull on %s: %w", target, err)
	}
	return nil
}

// waitBlockJob waits until no block job runs on the disk, pivoting an active
// commit once it is ready, and flushes the domain after a job that ran: one
// it saw, or the one the caller started (w.Started), which a small disk
// finishes before the first look.
func waitBlockJob(ctx context.Context, l *libvirt.Libvirt, dom libvirt.Domain, target string, w hypervisor.JobWait) error {
	pivoted, seen := false, w.Started
	// Polls start at 5 ms and back off to 100 ms: a job on a small or
	// almost empty layer (the delta a restore or a consolidation merges)
	// ends within milliseconds, and a long one costs a poll per 100 ms.
	every := 5 * time.Millisecond
	for {
		found, typ, _, cur, end, err := l.DomainGetBlockJobInfo(dom, target, 0)
		if err != nil {
			return fmt.Errorf("block job info of %s: %w", target, err)
		}
		if found == 0 {
			if !seen {
				return nil
			}
			return flushDomain(l, dom, target)
		}
		seen = true
		if w.Progress != nil {
			w.Progress(cur, end)
		}
		if typ == int32(libvirt.DomainBlockJobTypeActiveCommit) && end > 0 && cur == end && !pivoted {
			if err := l.DomainBlockJobAbort(dom, target, libvirt.DomainBlockJobAbortPivot); err == nil {
				pivoted, every = true, 5*time.Millisecond
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the block job on %s: %w", target, ctx.Err())
		case <-time.After(every):
		}
		every = min(2*every, 100*time.Millisecond)
	}
}

// flushDomain makes QEMU write the cached metadata of every image of a
// running domain, by pausing it (QEMU flushes all block devices when the
// VM stops) and resuming it at once. QEMU writes the image header a
// finished job changes (a pull drops the backing file, a pivot makes the
// base the active layer) at once, but keeps the L2 tables of the clusters
// the job wrote in its cache until the next flush: were QEMU to die before
// that, the image would read zeros where the job's data went. A paused
// domain is left paused (whoever paused it resumes it); a domain that is
// no longer running yields an error, as a QEMU that died would.
func flushDomain(l *libvirt.Libvirt, dom libvirt.Domain, target string) error {
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return fmt.Errorf("state after the block job on %s: %w", target, err)
	}
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning:
	case libvirt.DomainPaused:
		return nil
	default:
		return fmt.Errorf("the domain stopped after the block job on %s ended (state %d)", target, state)
	}
	if err := l.DomainSuspend(dom); err != nil {
		return fmt.Errorf("flush after the block job on %s: pause: %w", target, err)
	}
	if err := l.DomainResume(dom); err != nil {
		return fmt.Errorf("flush after the block job on %s: resume: %w: %w", target, err, hypervisor.ErrLeftPaused)
	}
	return nil
}

// setDiskSources points disks of the stored definition at other files (for
// stopped domains): each target gets the file and format, and the recorded
// backing chain is dropped so libvirt probes it again.
func setDiskSources(l *libvirt.Libvirt, dom libvirt.Domain, sources map[string]hypervisor.Layer) error {
	inactive, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)
	if err != nil {
		return fmt.Errorf("domain xml: %w", err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(inactive); err != nil {
		return fmt.Errorf("parse domain xml: %w", err)
	}
	done := 0
	if def.Devices != nil {
		for i := range def.Devices.Disks {
			d := &def.Devices.Disks[i]
			if d.Target == nil {
				continue
			}
			src, ok := sources[d.Target.Dev]
			if !ok {
				continue
			}
			if d.Source == nil {
				d.Source = &libvirtxml.DomainDiskSource{}
			}
			d.Source.File = &libvirtxml.DomainDiskSourceFile{File: src.Path}
			d.Source.Block, d.Source.Volume, d.Source.Network = nil, nil, nil
			if d.Driver == nil {
				d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
			}
			if src.Format != "" {
				d.Driver.Type = src.Format
			}
			d.BackingStore = nil
			done++
		}
	}
	if done != len(sources) {
		return fmt.Errorf("%d of the %d disks to update are not in the definition", len(sources)-done, len(sources))
	}
	doc, err := def.Marshal()
	if err != nil {
		return err
	}
	if _, err := l.DomainDefineXML(doc); err != nil {
		return fmt.Errorf("redefine domain: %w", err)
	}
	return nil
}

// bootFiles lists the external boot files of the stored definition that
// exist on this host: kernel, initrd, device tree and UEFI NVRAM.
func bootFiles(l *libvirt.Libvirt, dom libvirt.Domain) ([]string, error) {
	inactive, err := l.DomainGetXMLDesc(dom, libvirt.DomainXMLInactive|libvirt.DomainXMLSecure)
	if err != nil {
		return nil, fmt.Errorf("domain xml: %w", err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(inactive); err != nil {
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
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			out = append(out, c)
		}
	}
	return out, nil
}

var _ hypervisor.ChainOps = (*Hypervisor)(nil)

// SnapshotDisks implements hypervisor.ChainOps.
func (h *Hypervisor) SnapshotDisks(ctx context.Context, uuid string, disks []hypervisor.DiskSnapshot, quiesce bool) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	var took time.Duration
	return do(ctx, func() error { return snapshotDisks(l, d, disks, quiesce, &took) })
}

// SnapshotDisksTimed implements hypervisor.TimedSnapshotter: the time of
// the libvirt snapshot call alone (the domain's XML is read before).
func (h *Hypervisor) SnapshotDisksTimed(ctx context.Context, uuid string, disks []hypervisor.DiskSnapshot, quiesce bool) (time.Duration, error) {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return 0, err
	}
	var took time.Duration
	done := make(chan struct{})
	err = do(ctx, func() error {
		defer close(done)
		return snapshotDisks(l, d, disks, quiesce, &took)
	})
	if err != nil {
		return 0, err
	}
	<-done
	return took, nil
}

// BlockCommit implements hypervisor.ChainOps.
func (h *Hypervisor) BlockCommit(ctx context.Context, uuid, target, top, base string, active bool) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return do(ctx, func() error { return blockCommit(l, d, target, top, base, active) })
}

// BlockPull implements hypervisor.ChainOps.
func (h *Hypervisor) BlockPull(ctx context.Context, uuid, target string) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return do(ctx, func() error { return blockPull(l, d, target) })
}

// WaitBlockJob implements hypervisor.ChainOps.
func (h *Hypervisor) WaitBlockJob(ctx context.Context, uuid, target string, w hypervisor.JobWait) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return waitBlockJob(ctx, l, d, target, w)
}

// SetDiskSources implements hypervisor.ChainOps.
func (h *Hypervisor) SetDiskSources(ctx context.Context, uuid string, sources map[string]hypervisor.Layer) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return do(ctx, func() error { return setDiskSources(l, d, sources) })
}

// BootFiles implements hypervisor.ChainOps.
func (h *Hypervisor) BootFiles(ctx context.Context, uuid string) ([]string, error) {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var out []string
	err = do(ctx, func() error {
		var err error
		out, err = bootFiles(l, d)
		return err
	})
	return out, err
}

// DefineDomain implements hypervisor.ChainOps.
func (h *Hypervisor) DefineDomain(ctx context.Context, doc string) (string, error) {
	l, err := h.conn()
	if err != nil {
		return "", err
	}
	var d libvirt.Domain
	err = do(ctx, func() error {
		var err error
		d, err = l.DomainDefineXML(doc)
		return err
	})
	if err != nil {
		return "", lvError("define domain", err)
	}
	return hypervisor.FormatUUID(d.UUID), nil
}

// AttachDisk implements hypervisor.ChainOps.
func (h *Hypervisor) AttachDisk(ctx context.Context, uuid string, nd hypervisor.NewDisk, live bool) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	bus := nd.Bus
	if bus == "" {
		bus = "virtio"
	}
	disk := libvirtxml.DomainDisk{
		Device: "disk",
		Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: nd.Format},
		Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: nd.Path}},
		Target: &libvirtxml.DomainDiskTarget{Dev: nd.Target, Bus: bus},
	}
	doc, err := disk.Marshal()
	if err != nil {
		return err
	}
	flags := libvirt.DomainDeviceModifyConfig
	if live {
		flags |= libvirt.DomainDeviceModifyLive
	}
	return do(ctx, func() error {
		if err := l.DomainAttachDeviceFlags(d, doc, uint32(flags)); err != nil {
			return lvError("attach disk "+nd.Target, err)
		}
		return nil
	})
}

// StartDomain implements hypervisor.ChainOps.
func (h *Hypervisor) StartDomain(ctx context.Context, uuid string) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return do(ctx, func() error {
		state, _, err := l.DomainGetState(d, 0)
		if err != nil {
			return lvError("domain state", err)
		}
		if libvirt.DomainState(state) == libvirt.DomainRunning {
			return nil
		}
		if err := l.DomainCreate(d); err != nil {
			return lvError("start domain", err)
		}
		return nil
	})
}

// ResumeDomain implements hypervisor.ChainOps.
func (h *Hypervisor) ResumeDomain(ctx context.Context, uuid string) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return do(ctx, func() error {
		state, _, err := l.DomainGetState(d, 0)
		if err != nil {
			return lvError("domain state", err)
		}
		if libvirt.DomainState(state) != libvirt.DomainPaused {
			return nil
		}
		if err := l.DomainResume(d); err != nil {
			return lvError("resume domain", err)
		}
		return nil
	})
}

// UndefineDomain implements hypervisor.ChainOps.
func (h *Hypervisor) UndefineDomain(ctx context.Context, uuid string) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	return do(ctx, func() error {
		if err := l.DomainUndefineFlags(d, libvirt.DomainUndefineNvram|libvirt.DomainUndefineSnapshotsMetadata|libvirt.DomainUndefineCheckpointsMetadata); err != nil {
			return lvError("undefine domain", err)
		}
		return nil
	})
}

// DetachDisk implements hypervisor.ChainOps.
func (h *Hypervisor) DetachDisk(ctx context.Context, uuid, target string, live bool) error {
	l, d, err := h.lookup(ctx, uuid)
	if err != nil {
		return err
	}
	flags := libvirt.DomainDeviceModifyConfig
	if live {
		flags |= libvirt.DomainDeviceModifyLive
	}
	return do(ctx, func() error {
		doc, err := l.DomainGetXMLDesc(d, 0)
		if err != nil {
			return lvError("domain xml", err)
		}
		var def libvirtxml.Domain
		if err := def.Unmarshal(doc); err != nil {
			return err
		}
		if def.Devices != nil {
			for _, disk := range def.Devices.Disks {
				if disk.Target != nil && disk.Target.Dev == target {
					x, err := disk.Marshal()
					if err != nil {
						return err
					}
					if err := l.DomainDetachDeviceFlags(d, x, uint32(flags)); err != nil {
						return lvError("detach disk "+target, err)
					}
					return nil
				}
			}
		}
		return fmt.Errorf("disk %s is not attached", target)
	})
}

var _ hypervisor.Transient = (*Hypervisor)(nil)

// CreateTransient implements hypervisor.Transient.
func (h *Hypervisor) CreateTransient(ctx context.Context, doc string) (string, error) {
	l, err := h.conn()
	if err != nil {
		return "", err
	}
	var d libvirt.Domain
	err = do(ctx, func() error {
		var err error
		d, err = l.DomainCreateXML(doc, 0)
		return err
	})
	if err != nil {
		return "", lvError("create transient domain", err)
	}
	return hypervisor.FormatUUID(d.UUID), nil
}

// DestroyDomain implements hypervisor.Transient.
func (h *Hypervisor) DestroyDomain(ctx context.Context, uuid string) error {
	l, d, err := h.lookup(ctx, uuid)
	if errors.Is(err, hypervisor.ErrDomainNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return do(ctx, func() error {
		if err := l.DomainDestroy(d); err != nil {
			if code, ok := errCode(err); ok && (code == libvirt.ErrOperationInvalid || code == libvirt.ErrNoDomain) {
				return nil
			}
			return lvError("destroy domain", err)
		}
		return nil
	})
}

// DomainsNamed implements hypervisor.Transient.
func (h *Hypervisor) DomainsNamed(ctx context.Context, prefix string) ([]string, error) {
	l, err := h.conn()
	if err != nil {
		return nil, err
	}
	var out []string
	err = do(ctx, func() error {
		doms, _, err := l.ConnectListAllDomains(1, 0)
		if err != nil {
			return err
		}
		for _, d := range doms {
			if strings.HasPrefix(d.Name, prefix) {
				out = append(out, hypervisor.FormatUUID(d.UUID))
			}
		}
		return nil
	})
	return out, err
}
