package kernel

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/knib/knib/internal/agentapi"
)

// isSnapshotOverlay reports whether a file is a VM snapshot overlay of vmID.
func IsSnapshotOverlay(vmID string) func(string) bool {
	prefix := agentapi.SnapshotPrefix + vmID + "."
	return func(p string) bool { return strings.HasPrefix(filepath.Base(p), prefix) }
}

// snapshotFiles returns the frozen files of a VM's snapshots but one.
func (s *Kernel) SnapshotFiles(ctx context.Context, vmID, except string) ([]string, error) {
	snaps, err := s.store.Snapshots(ctx, vmID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sn := range snaps {
		if sn.ID == except {
			continue
		}
		for _, f := range sn.Files {
			out = append(out, f.Frozen)
		}
	}
	return out, nil
}

// repointSnapshots: after a merge of from into to on a disk, snapshots frozen
// on from find their state in to.
func (s *Kernel) RepointSnapshots(ctx context.Context, vmID, disk, from, to string) error {
	snaps, err := s.store.Snapshots(ctx, vmID)
	if err != nil {
		return fmt.Errorf("snapshots of vm %s: %w", vmID, err)
	}
	for _, sn := range snaps {
		changed := false
		for i, f := range sn.Files {
			if f.Frozen == from && (disk == "" || f.Disk == disk) {
				sn.Files[i].Frozen, changed = to, true
			}
		}
		if changed {
			if err := s.store.SaveSnapshot(ctx, sn); err != nil {
				return fmt.Errorf("re-point snapshot %s: %w", sn.ID, err)
			}
		}
	}
	return nil
}
