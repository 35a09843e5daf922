package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/hypervisor"
)

// reconcile brings a VM's disks back to a consistent chain: every knib delta
// of the VM that is not kept is merged down, left-over delta files are
// removed, and partial backup directories are deleted. It only trusts what it
// sees: the chains libvirt reports and the files on disk.
func (a *Local) reconcile(ctx context.Context, req agentapi.ReconcileRequest, progress func(float64, string)) (any, error) {
	res := agentapi.ReconcileResult{Merged: []string{}, Removed: []string{}, Repoint: map[string]string{}}
	keep := map[string]bool{}
	for _, k := range req.Keep {
		keep[k] = true
	}
	// Snapshots' frozen files are never merged away nor merged into: their
	// content is a snapshot's state.
	frozen := map[string]bool{}
	for _, o := range req.Others {
		frozen[o] = true
	}
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, err
	}
	running := dom.State == hypervisor.StateRunning
	branches, err := a.otherBranches(ctx, dom, req.Others)
	if err != nil {
		return nil, err
	}
	for _, d := range dom.Disks {
		if d.SourceType != "file" || (d.Device != "" && d.Device != "disk") {
			continue
		}
		progress(10, "checking "+d.Target)
		// A quick restore moved the disk's previous file aside to free it
		// after the start; a crash in between leaves it: free it now.
		if old := d.Source + ".knib-old"; d.Source != "" {
			if err := os.Remove(old); err == nil {
				res.Removed = append(res.Removed, old)
			}
		}
		if d.Problem != "" {
			return res, fmt.Errorf("disk %s cannot be read: %s", d.Target, d.Problem)
		}
		if running {
			if err := a.finishBlockJob(ctx, req.DomainUUID, d.Target); err != nil {
				return nil, fmt.Errorf("disk %s: finish block job: %w", d.Target, err)
			}
		}
		merged, err := a.reconcileDisk(ctx, req.DomainUUID, d.Target, keep, frozen, running, func(from, to string) error {
			res.Repoint[from] = to
			return a.rebaseBranches(ctx, branches, from, to)
		})
		res.Merged = append(res.Merged, merged...)
		if err != nil {
			return res, fmt.Errorf("disk %s: %w", d.Target, err)
		}
	}
	removed, err := a.removeUnreferenced(ctx, req.DomainUUID, req.Others, nil)
	res.Removed = append(res.Removed, removed...)
	if err != nil {
		return res, err
	}
	for _, rel := range req.RemoveDirs {
		p, err := inStorage(req.Storage, rel)
		if err != nil {
			return res, err
		}
		if !strings.HasPrefix(rel, "backups"+string(filepath.Separator)) {
			return res, fmt.Errorf("refusing to remove %q: not a backup directory", rel)
		}
		if _, err := os.Stat(p); err == nil {
			if err := os.RemoveAll(p); err != nil {
				return res, err
			}
			res.Removed = append(res.Removed, p)
		}
	}
	res.Chains, err = a.chains(ctx, req.DomainUUID)
	return res, err
}

func (a *Local) reconcileDisk(ctx context.Context, uuid, target string, keep, frozen map[string]bool, running bool, moved func(from, to string) error) ([]string, error) {
	var merged []string
	ls, err := a.layers(ctx, uuid, target)
	if err != nil {
		return nil, err
	}
	chain := paths(ls)
	for _, p := range chain {
		if _, err := os.Stat(p); err != nil {
			return merged, fmt.Errorf("file %s of the chain is missing: %w", p, err)
		}
	}
	drop := func(p string) bool { return isDeltaOf(p, uuid) && !keep[p] && !frozen[p] }
	// Deltas on top: merge them all into the first file below that stays.
	j := 0
	for j < len(chain) && drop(chain[j]) {
		j++
	}
	if j == len(chain) {
		return merged, fmt.Errorf("every file of the chain is a knib delta; no base to merge into")
	}
	if j > 0 && !frozen[chain[j]] {
		if err := a.mergeTop(ctx, uuid, target, chain[0], chain[j], running); err != nil {
			return merged, err
		}
		for _, p := range chain[:j] {
			removeIfExists(p)
			merged = append(merged, p)
			if err := moved(p, chain[j]); err != nil {
				return merged, err
			}
		}
	}
	// Deltas deeper in the chain, below a file that stays.
	merged2 := map[string]bool{}
	for {
		ls, err = a.layers(ctx, uuid, target)
		if err != nil {
			return merged, err
		}
		chain = paths(ls)
		i := -1
		for k := 1; k < len(chain)-1; k++ {
			if drop(chain[k]) && !frozen[chain[k+1]] && !merged2[chain[k]] {
				i = k
				break
			}
		}
		if i < 0 {
			return merged, nil
		}
		if err := a.mergeLayer(ctx, uuid, target, chain[i], chain[i+1], running); err != nil {
			return merged, err
		}
		merged = append(merged, chain[i])
		merged2[chain[i]] = true
		if err := moved(chain[i], chain[i+1]); err != nil {
			return merged, err
		}
	}
}

// deleteFiles removes backup directories from the storage.
func (a *Local) deleteFiles(ctx context.Context, req agentapi.DeleteFilesRequest, progress func(float64, string)) (any, error) {
	removed := []string{}
	for i, rel := range req.Dirs {
		if !strings.HasPrefix(rel, "backups"+string(filepath.Separator)) {
			return nil, fmt.Errorf("refusing to remove %q: not a backup directory", rel)
		}
		p, err := inStorage(req.Storage, rel)
		if err != nil {
			return nil, err
		}
		progress(100*float64(i)/float64(len(req.Dirs)), "removing "+rel)
		if err := os.RemoveAll(p); err != nil {
			return nil, err
		}
		removed = append(removed, rel)
		// Remove the VM directory when it became empty.
		os.Remove(filepath.Dir(p))
	}
	return agentapi.DeleteFilesResult{Removed: removed}, nil
}
