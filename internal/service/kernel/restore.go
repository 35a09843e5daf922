package kernel

import (
	"context"
	"fmt"
	"path"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

func RestoreFiles(b domain.Backup) []agentapi.RestoreFile {
	out := make([]agentapi.RestoreFile, 0, len(b.Files))
	for _, f := range b.Files {
		out = append(out, agentapi.RestoreFile{Disk: f.Disk, Path: f.Path})
	}
	return out
}

// SetBackupStatus changes a backup's status (Restoring and back).
func (s *Kernel) SetBackupStatus(ctx context.Context, id string, st domain.BackupStatus) error {
	if err := s.store.SetBackupStatus(ctx, id, st, s.clock.Now()); err != nil {
		return fmt.Errorf("backup %s: record status %s: %w", id, st, err)
	}
	return nil
}

// dependants returns the VMs whose disks still read files under a backup's
// directory (quick restores not consolidated yet).
func (s *Kernel) Dependants(ctx context.Context, b domain.Backup) ([]string, error) {
	root, err := s.StorageRoot(ctx, b)
	if err != nil {
		return nil, err
	}
	vms, err := s.store.ListVMs(ctx, store.VMFilter{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, vm := range vms {
		if vm.DependsOn(path.Join(root, b.Dir)) {
			out = append(out, vm.Name)
		}
	}
	return out, nil
}
