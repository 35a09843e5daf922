package restores

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// damaged records the damaged backup files a failed restore task found
// (the backups become NotValid) and returns the task's error, which names
// them.
func (s *Service) damaged(ctx context.Context, err error, by string) error {
	ds := kernel.DamageOf(err)
	if len(ds) == 0 {
		return err
	}
	if rerr := s.k.RecordDamage(ctx, ds, by); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// accepted records the damaged files a restore with accept_damaged wrote
// anyway and lists them for the operation's result.
func (s *Service) accepted(ctx context.Context, ds []agentapi.Damage) ([]string, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	if err := s.k.RecordDamage(ctx, ds, "a restore that restored them anyway (accept_damaged)"); err != nil {
		return nil, err
	}
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	s.k.Log().Warn("damaged backup files restored on request", "files", strings.Join(out, "; "))
	return out, nil
}

// verifyOfVM finds the backup files a quick-restored VM's overlays read
// (under root) among the VM's own backups, with their recorded hashes: the
// check of a consolidation resumed without its restore at hand.
func (s *Service) verifyOfVM(ctx context.Context, vm domain.VM, root string) (agentapi.Verify, error) {
	var v agentapi.Verify
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vm.ID})
	if err != nil {
		return v, fmt.Errorf("the backups of %s: %w", vm.Name, err)
	}
	byPath := map[string]agentapi.ChainFile{}
	for _, b := range all {
		for _, f := range b.Files {
			byPath[f.Path] = agentapi.ChainFile{BackupID: b.ID, Disk: f.Disk, Path: f.Path, Hash: f.Hash}
		}
	}
	prefix := filepath.Clean(root) + string(filepath.Separator)
	for _, d := range vm.Disks {
		for _, l := range d.BackingChain {
			if rel, ok := strings.CutPrefix(l.Path, prefix); ok {
				if f, ok := byPath[rel]; ok {
					v.Files = append(v.Files, f)
				}
			}
		}
	}
	return v, nil
}
