package kernel

import (
	"context"
	"fmt"
	"path"
	"sort"
	"time"

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
	dir := path.Join(root, b.Dir)
	vms, err := s.store.ListVMs(ctx, store.VMFilter{UsingPath: dir})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, vm := range vms {
		if vm.DependsOn(dir) {
			out = append(out, vm.Name)
		}
	}
	return out, nil
}

// StorageRoot is the root, on the hosts, of the backup storage a backup's
// files are in. Agent tasks on those files name it in their request; a
// backup whose storage can't be resolved is an error, never a fallback to
// some other storage.
func (s *Kernel) StorageRoot(ctx context.Context, b domain.Backup) (string, error) {
	if b.StorageID == "" {
		return "", fmt.Errorf("backup %s has no backup storage recorded: %w", b.ID, domain.ErrConflict)
	}
	st, err := s.store.Storage(ctx, b.StorageID)
	if err != nil {
		return "", fmt.Errorf("backup %s: its storage %s: %w", b.ID, b.StorageID, err)
	}
	return st.Path, nil
}

// StorageDirs groups backup directories by the root of their storage.
func (s *Kernel) StorageDirs(ctx context.Context, backups []domain.Backup) (map[string][]string, error) {
	out := map[string][]string{}
	for _, b := range backups {
		root, err := s.StorageRoot(ctx, b)
		if err != nil {
			return nil, err
		}
		out[root] = append(out[root], b.Dir)
	}
	return out, nil
}

// deleteDirs removes backup directories, storage by storage.
func (s *Kernel) DeleteDirs(ctx context.Context, a agentapi.Agent, byRoot map[string][]string, timeout time.Duration) error {
	roots := make([]string, 0, len(byRoot))
	for r := range byRoot {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	for _, r := range roots {
		req := agentapi.DeleteFilesRequest{InStorage: agentapi.InStorage{Storage: r}, Dirs: byRoot[r]}
		if _, err := Run(ctx, a, agentapi.DeleteFiles, req, timeout, nil, 0, 100); err != nil {
			return err
		}
	}
	return nil
}

// storageOfVM returns the root of the storage a VM's disks still read
// (quick restore not consolidated), or "".
func (s *Kernel) StorageOfVM(ctx context.Context, vm domain.VM) string {
	list, err := s.store.ListStorages(ctx, "")
	if err != nil {
		return ""
	}
	for _, st := range list {
		if vm.DependsOn(st.Path) {
			return st.Path
		}
	}
	return ""
}

// StorageRoots lists every directory that holds backups: the storages' and
// the hosts' own storage directories (for a pass over many VMs, read once).
func (s *Kernel) StorageRoots(ctx context.Context) ([]string, error) {
	list, err := s.store.ListStorages(ctx, "")
	if err != nil {
		return nil, err
	}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, st := range list {
		out = append(out, st.Path)
	}
	for _, h := range hosts {
		if h.StoragePath != "" {
			out = append(out, h.StoragePath)
		}
	}
	return out, nil
}

// dependsOnStorage reports whether a VM still runs on backup files of any
// storage (or of its host's own storage directory).
func (s *Kernel) DependsOnStorage(ctx context.Context, vm domain.VM) bool {
	if h, err := s.store.Host(ctx, vm.HostID); err == nil && vm.DependsOn(h.StoragePath) {
		return true
	}
	return s.StorageOfVM(ctx, vm) != ""
}
