package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
)

// isKnibFileOf reports whether path is a knib overlay (backup delta or VM
// snapshot overlay) of the VM.
func isKnibFileOf(path, uuid string) bool {
	b := filepath.Base(path)
	return strings.HasPrefix(b, agentapi.DeltaPrefix+uuid+".") || strings.HasPrefix(b, agentapi.SnapshotPrefix+uuid+".")
}

func snapshotDisks(dom hypervisor.Domain) []hypervisor.Disk {
	var out []hypervisor.Disk
	for _, d := range dom.Disks {
		if d.SourceType == "file" && (d.Device == "" || d.Device == "disk") {
			out = append(out, d)
		}
	}
	return out
}

func (a *Local) snapshotCreate(ctx context.Context, req agentapi.SnapshotCreateRequest, progress func(float64, string)) (any, error) {
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	disks := snapshotDisks(dom)
	res := agentapi.SnapshotCreateResult{}
	overlay := func(d hypervisor.Disk) string {
		return filepath.Join(filepath.Dir(d.Source), agentapi.SnapshotPrefix+dom.UUID+"."+d.Target+"."+req.SnapshotID+".qcow2")
	}
	done := 0
	for _, d := range disks {
		if d.Source == overlay(d) && len(d.BackingChain) > 0 {
			done++
			res.Files = append(res.Files, agentapi.SnapshotFile{Disk: d.Target, Frozen: d.BackingChain[0].Path})
		}
	}
	if done == len(disks) && done > 0 {
		return res, nil // taken already
	}
	if done != 0 {
		return nil, fmt.Errorf("only %d of %d disks have the snapshot's overlay", done, len(disks))
	}
	progress(20, "creating the overlays")
	if dom.State == hypervisor.StateRunning {
		var snaps []hypervisor.DiskSnapshot
		for _, d := range disks {
			snaps = append(snaps, hypervisor.DiskSnapshot{Target: d.Target, File: overlay(d)})
		}
		if err := a.hv.SnapshotDisks(ctx, dom.UUID, snaps, false); err != nil {
			return nil, cleanError{err}
		}
	} else {
		sources := map[string]hypervisor.Layer{}
		for _, d := range disks {
			err := a.img.Create(ctx, overlay(d), "qcow2", 0, &qemuimg.Backing{Path: d.Source, Format: d.Format})
			if err == nil {
				err = a.perm.Disk(overlay(d))
			}
			if err != nil {
				for _, c := range disks {
					os.Remove(overlay(c))
				}
				return nil, cleanError{err}
			}
			sources[d.Target] = hypervisor.Layer{Path: overlay(d), Format: "qcow2"}
		}
		if err := a.hv.SetDiskSources(ctx, dom.UUID, sources); err != nil {
			for _, c := range disks {
				os.Remove(overlay(c))
			}
			return nil, cleanError{err}
		}
	}
	res.Files = nil
	for _, d := range disks {
		res.Files = append(res.Files, agentapi.SnapshotFile{Disk: d.Target, Frozen: d.Source})
	}
	return res, nil
}

// chainOf returns a file and its backing chain, top to bottom.
func (a *Local) chainOf(ctx context.Context, file string) ([]string, error) {
	infos, err := a.img.Info(ctx, file, qemuimg.InfoOptions{BackingChain: true, ForceShare: true})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, in := range infos {
		out = append(out, in.Filename)
	}
	return out, nil
}

// graph maps every file of the VM's current chains and of the given other
// files' chains to its backing file ("" at the bottom).
func (a *Local) graph(ctx context.Context, dom hypervisor.Domain, others []string) (map[string]string, error) {
	parent := map[string]string{}
	add := func(chain []string) {
		for i, f := range chain {
			if i+1 < len(chain) {
				parent[f] = chain[i+1]
			} else if _, ok := parent[f]; !ok {
				parent[f] = ""
			}
		}
	}
	for _, d := range snapshotDisks(dom) {
		add(append([]string{d.Source}, layerPaths(d)...))
	}
	for _, o := range others {
		if _, err := os.Stat(o); err != nil {
			continue
		}
		chain, err := a.chainOf(ctx, o)
		if err != nil {
			return nil, err
		}
		add(chain)
	}
	return parent, nil
}

func children(parent map[string]string, f string) []string {
	var out []string
	for c, p := range parent {
		if p == f {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func (a *Local) snapshotRevert(ctx context.Context, req agentapi.SnapshotRevertRequest, progress func(float64, string)) (any, error) {
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	if dom.State != hypervisor.StateShutoff && dom.State != hypervisor.StateCrashed {
		return nil, cleanError{fmt.Errorf("the VM is %s; stop it before reverting", dom.State)}
	}
	sources := map[string]hypervisor.Layer{}
	var created []string
	for _, f := range req.Files {
		infos, err := a.img.Info(ctx, f.Frozen, qemuimg.InfoOptions{ForceShare: true})
		if err != nil || len(infos) == 0 {
			return nil, cleanError{fmt.Errorf("snapshot file of %s: %w", f.Disk, err)}
		}
		ov := filepath.Join(filepath.Dir(f.Frozen), agentapi.SnapshotPrefix+dom.UUID+"."+f.Disk+"."+req.SnapshotID+"-"+req.Suffix+".qcow2")
		err = a.img.Create(ctx, ov, "qcow2", 0, &qemuimg.Backing{Path: f.Frozen, Format: infos[0].Format})
		if err == nil {
			err = a.perm.Disk(ov)
		}
		if err != nil {
			os.Remove(ov)
			for _, c := range created {
				os.Remove(c)
			}
			return nil, cleanError{err}
		}
		created = append(created, ov)
		sources[f.Disk] = hypervisor.Layer{Path: ov, Format: "qcow2"}
	}
	progress(50, "pointing the disks at the snapshot")
	if err := a.hv.SetDiskSources(ctx, dom.UUID, sources); err != nil {
		for _, c := range created {
			os.Remove(c)
		}
		return nil, cleanError{err}
	}
	progress(80, "removing the discarded overlays")
	removed, err := a.removeUnreferenced(ctx, dom.UUID, req.Keep, nil)
	if err != nil {
		return nil, err
	}
	return agentapi.SnapshotRevertResult{Removed: removed}, nil
}

// removeUnreferenced removes the VM's knib files (backup deltas, snapshot
// overlays) that neither its current chains nor the chains of keep (VM
// snapshots' frozen files) use, in the directories of its disks and in
// extraDirs. The file name proves the file is knib's and the VM's.
func (a *Local) removeUnreferenced(ctx context.Context, uuid string, keep, extraDirs []string) ([]string, error) {
	dom, err := a.hv.Domain(ctx, uuid)
	if err != nil {
		return nil, err
	}
	parent, err := a.graph(ctx, dom, keep)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, dir := range append(deltaDirs(dom), extraDirs...) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			if _, used := parent[p]; used || !isKnibFileOf(p, uuid) {
				continue
			}
			if err := os.Remove(p); err == nil {
				removed = append(removed, p)
			}
		}
	}
	return removed, nil
}

func (a *Local) snapshotDelete(ctx context.Context, req agentapi.SnapshotDeleteRequest, progress func(float64, string)) (any, error) {
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	running := dom.State == hypervisor.StateRunning
	parent, err := a.graph(ctx, dom, req.Others)
	if err != nil {
		return nil, cleanError{err}
	}
	res := agentapi.SnapshotDeleteResult{Repoint: map[string]string{}}
	// Decide before touching anything: a frozen file with two or more
	// children is a branch point and stays.
	for _, f := range req.Files {
		if len(children(parent, f.Frozen)) > 1 {
			return res, nil
		}
	}
	keep := map[string]bool{}
	for _, k := range req.Keep {
		keep[k] = true
	}
	current := map[string][]string{}
	for _, d := range snapshotDisks(dom) {
		current[d.Target] = append([]string{d.Source}, layerPaths(d)...)
	}
	for _, f := range req.Files {
		kids := children(parent, f.Frozen)
		if len(kids) == 0 {
			// The frozen file is a top, or nothing uses it any more.
			chain := current[f.Disk]
			if !slices.Contains(chain, f.Frozen) && isKnibFileOf(f.Frozen, dom.UUID) {
				removeIfExists(f.Frozen)
			}
			continue
		}
		c := kids[0]
		progress(50, "merging "+filepath.Base(c)+" into "+filepath.Base(f.Frozen))
		if keep[c] {
			res.EndChain = true
		}
		chain := current[f.Disk]
		i := slices.Index(chain, c)
		fmtInfo, err := a.img.Info(ctx, f.Frozen, qemuimg.InfoOptions{ForceShare: true})
		if err != nil || len(fmtInfo) == 0 {
			return res, fmt.Errorf("inspect %s: %w", f.Frozen, err)
		}
		format := fmtInfo[0].Format
		switch {
		case i >= 0 && running:
			if err := a.hv.BlockCommit(ctx, dom.UUID, f.Disk, c, f.Frozen, i == 0); err != nil {
				return res, err
			}
			if err := a.hv.WaitBlockJob(ctx, dom.UUID, f.Disk, hypervisor.JobWait{Started: true}); err != nil {
				return res, err
			}
		case i >= 0:
			if err := a.img.Commit(ctx, c, f.Frozen, false); err != nil {
				return res, err
			}
			if i == 0 {
				if err := a.hv.SetDiskSources(ctx, dom.UUID, map[string]hypervisor.Layer{f.Disk: {Path: f.Frozen, Format: format}}); err != nil {
					return res, err
				}
			} else if err := a.img.Rebase(ctx, chain[i-1], f.Frozen, format, true); err != nil {
				return res, err
			}
		default:
			if err := a.img.Commit(ctx, c, f.Frozen, false); err != nil {
				return res, err
			}
		}
		// Files of other branches that were backed by c now back onto the frozen file.
		for _, gc := range children(parent, c) {
			if slices.Contains(chain, gc) {
				continue // the current chain was handled above
			}
			if err := a.img.Rebase(ctx, gc, f.Frozen, format, true); err != nil {
				return res, err
			}
		}
		removeIfExists(c)
		res.Repoint[c] = f.Frozen
	}
	res.Merged = true
	return res, nil
}
