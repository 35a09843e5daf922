package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
)

// layers returns a disk's files top to bottom with their formats.
func (a *Local) layers(ctx context.Context, uuid, target string) ([]hypervisor.Layer, error) {
	dom, err := a.hv.Domain(ctx, uuid)
	if err != nil {
		return nil, err
	}
	for _, d := range dom.Disks {
		if d.Target == target {
			return append([]hypervisor.Layer{{Path: d.Source, Format: d.Format}}, d.BackingChain...), nil
		}
	}
	return nil, fmt.Errorf("disk %s is not attached to the domain", target)
}

func paths(ls []hypervisor.Layer) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Path
	}
	return out
}

// finishBlockJob waits for a block job left on the disk (for example by a
// process killed during a merge) and pivots a finished active commit.
func (a *Local) finishBlockJob(ctx context.Context, uuid, target string) error {
	return a.hv.WaitBlockJob(ctx, uuid, target, hypervisor.JobWait{})
}

// mergeLayer merges layer (not the top) into base, the file below it, and
// points the file above it at base. Idempotent: a layer no longer in the
// chain is only removed from disk.
func (a *Local) mergeLayer(ctx context.Context, uuid, target, layer, base string, running bool) error {
	if running {
		if err := a.finishBlockJob(ctx, uuid, target); err != nil {
			return err
		}
	}
	ls, err := a.layers(ctx, uuid, target)
	if err != nil {
		return err
	}
	chain := paths(ls)
	i := slices.Index(chain, layer)
	if i < 0 {
		return removeIfExists(layer)
	}
	if i == 0 {
		return fmt.Errorf("%s is the active layer, not a middle one", layer)
	}
	if i+1 >= len(chain) || chain[i+1] != base {
		// Without the libvirt view (stopped VM) trust the image header.
		if running {
			return fmt.Errorf("%s is not backed by %s", layer, base)
		}
	}
	if running {
		if err := a.hv.BlockCommit(ctx, uuid, target, layer, base, false); err != nil {
			return err
		}
		crashpoint.Hit("backup.during-merge")
		if err := a.hv.WaitBlockJob(ctx, uuid, target, hypervisor.JobWait{Started: true}); err != nil {
			return err
		}
		after, err := a.layers(ctx, uuid, target)
		if err != nil {
			return err
		}
		if slices.Contains(paths(after), layer) {
			return fmt.Errorf("block commit of %s ended but the file is still in the chain", layer)
		}
	} else {
		if err := a.img.Commit(ctx, layer, base, false); err != nil {
			return err
		}
		crashpoint.Hit("backup.during-merge")
		baseFormat := ""
		if i+1 < len(ls) && chain[i+1] == base {
			baseFormat = ls[i+1].Format
		} else {
			// The definition's chain stops short of base: ask the image.
			infos, err := a.img.Info(ctx, base, qemuimg.InfoOptions{ForceShare: true})
			if err != nil || len(infos) == 0 {
				return fmt.Errorf("inspect %s: %w", base, err)
			}
			baseFormat = infos[0].Format
		}
		if err := a.img.Rebase(ctx, chain[i-1], base, baseFormat, true); err != nil {
			return err
		}
		// The definition may still name the old chain (a VM snapshotted
		// running, then stopped): it names the top alone again, and the
		// chain is read from the images' headers.
		if err := a.hv.SetDiskSources(ctx, uuid, map[string]hypervisor.Layer{target: ls[0]}); err != nil {
			return err
		}
	}
	return removeIfExists(layer)
}

// mergeTop merges the active layer top into base and makes base the disk's
// active file again. Idempotent.
func (a *Local) mergeTop(ctx context.Context, uuid, target, top, base string, running bool) error {
	if running {
		if err := a.finishBlockJob(ctx, uuid, target); err != nil {
			return err
		}
	}
	ls, err := a.layers(ctx, uuid, target)
	if err != nil {
		return err
	}
	chain := paths(ls)
	if chain[0] != top {
		if chain[0] == base {
			return removeIfExists(top)
		}
		return fmt.Errorf("disk %s: top is %s, expected %s or %s", target, chain[0], top, base)
	}
	k := slices.Index(chain, base)
	if k < 1 {
		return fmt.Errorf("disk %s: %s is not below %s", target, base, top)
	}
	baseFormat := ls[k].Format
	if running {
		if err := a.hv.BlockCommit(ctx, uuid, target, top, base, true); err != nil {
			return err
		}
		if err := a.hv.WaitBlockJob(ctx, uuid, target, hypervisor.JobWait{Started: true}); err != nil {
			return err
		}
		after, err := a.layers(ctx, uuid, target)
		if err != nil {
			return err
		}
		if after[0].Path != base {
			return fmt.Errorf("active commit of %s ended with %s on top, not %s", top, after[0].Path, base)
		}
	} else {
		if err := a.img.Commit(ctx, top, base, false); err != nil {
			return err
		}
		if err := a.hv.SetDiskSources(ctx, uuid, map[string]hypervisor.Layer{target: {Path: base, Format: baseFormat}}); err != nil {
			return err
		}
	}
	return removeIfExists(top)
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// deltaDirs returns the directories holding any file of the domain's disks.
func deltaDirs(dom hypervisor.Domain) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dom.Disks {
		for _, p := range append([]string{d.Source}, layerPaths(d)...) {
			if p == "" {
				continue
			}
			dir := filepath.Dir(p)
			if !seen[dir] {
				seen[dir] = true
				out = append(out, dir)
			}
		}
	}
	return out
}

func layerPaths(d hypervisor.Disk) []string {
	out := make([]string, 0, len(d.BackingChain))
	for _, l := range d.BackingChain {
		out = append(out, l.Path)
	}
	return out
}
