package kernel

import (
	"context"
	"sort"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// storageKey carries the backup storage root agent tasks work in.
type storageKey struct{}

// withStorage makes the agent tasks run under ctx work in the storage at
// root (TaskRequest.Storage).
func WithStorage(ctx context.Context, root string) context.Context {
	return context.WithValue(ctx, storageKey{}, root)
}

// storageFrom is the storage root of ctx ("" for the agent's own).
func StorageFrom(ctx context.Context) string {
	r, _ := ctx.Value(storageKey{}).(string)
	return r
}

// onStorage returns ctx for tasks on a backup's files: they work in the
// backup's storage. A backup without storage (not upgraded) uses the agent's.
func (s *Kernel) OnStorage(ctx context.Context, b domain.Backup) context.Context {
	if b.StorageID == "" {
		return ctx
	}
	st, err := s.store.Storage(ctx, b.StorageID)
	if err != nil {
		s.log.Warn("backup storage", "backup", b.ID, "storage", b.StorageID, "err", err)
		return ctx
	}
	return WithStorage(ctx, st.Path)
}

// storageDirs groups backup directories by the root of their storage ("" for
// the agent's own).
func (s *Kernel) StorageDirs(ctx context.Context, backups []domain.Backup) map[string][]string {
	out := map[string][]string{}
	for _, b := range backups {
		root := StorageFrom(s.OnStorage(ctx, b))
		out[root] = append(out[root], b.Dir)
	}
	return out
}

// deleteDirs removes backup directories, storage by storage.
func (s *Kernel) DeleteDirs(ctx context.Context, a agentapi.Agent, byRoot map[string][]string, timeout time.Duration) error {
	roots := make([]string, 0, len(byRoot))
	for r := range byRoot {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	for _, r := range roots {
		tctx := ctx
		if r != "" {
			tctx = WithStorage(ctx, r)
		}
		if _, err := s.RunTask(tctx, a, agentapi.KindDeleteFiles, agentapi.DeleteFilesRequest{Dirs: byRoot[r]}, timeout, nil, 0, 100); err != nil {
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

// dependsOnStorage reports whether a VM still runs on backup files of any
// storage (or of its host's own storage directory).
func (s *Kernel) DependsOnStorage(ctx context.Context, vm domain.VM) bool {
	if h, err := s.store.Host(ctx, vm.HostID); err == nil && vm.DependsOn(h.StoragePath) {
		return true
	}
	return s.StorageOfVM(ctx, vm) != ""
}
