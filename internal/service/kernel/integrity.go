package kernel

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// ChainFiles lists the files a restore of b reads for the given disks (all
// of b's when none are given), with their recorded hashes: for each disk,
// b's file, then its parent's file of that disk, down to the full copy the
// chain starts with. all holds the VM's backups.
func ChainFiles(all []domain.Backup, b domain.Backup, disks ...string) []agentapi.ChainFile {
	byID := map[string]domain.Backup{}
	for _, x := range all {
		byID[x.ID] = x
	}
	byID[b.ID] = b
	var out []agentapi.ChainFile
	for _, f := range b.Files {
		if len(disks) > 0 && !slices.Contains(disks, f.Disk) {
			continue
		}
		cur, file := b, f
		for range len(all) + 1 {
			out = append(out, agentapi.ChainFile{BackupID: cur.ID, Disk: file.Disk, Path: file.Path, Hash: file.Hash})
			if file.Full {
				break
			}
			parent, ok := byID[cur.ParentID]
			if !ok {
				break
			}
			i := slices.IndexFunc(parent.Files, func(p domain.BackupFile) bool { return p.Disk == file.Disk })
			if i < 0 {
				break
			}
			cur, file = parent, parent.Files[i]
		}
	}
	return out
}

// Verify is the integrity check of a restore of b (agentapi.Verify): the
// chain's files and their hashes, unless the check is switched off
// (backup.restore.verify.hashes).
func (s *Kernel) Verify(ctx context.Context, b domain.Backup, accept bool, disks ...string) (agentapi.Verify, error) {
	v := agentapi.Verify{AcceptDamaged: accept}
	view, err := s.Settings(ctx, settings.Target{})
	if err != nil {
		return v, err
	}
	if !view.Bool(settings.KeyRestoreVerifyHashes) {
		return v, nil
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return v, err
	}
	v.Files = ChainFiles(all, b, disks...)
	return v, nil
}

// RefuseDamaged refuses a restore of b when b or a backup below it in its
// chain is known damaged (NotValid by hash), unless accept.
func (s *Kernel) RefuseDamaged(ctx context.Context, b domain.Backup, accept bool) error {
	if accept {
		return nil
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return err
	}
	byID := map[string]domain.Backup{b.ID: b}
	for _, x := range all {
		byID[x.ID] = x
	}
	for _, id := range ChainAncestors(all, b.ID) {
		if x := byID[id]; x.Damaged() {
			return fmt.Errorf("backup %s is damaged (%s); restore what is there with --accept-damaged: %w",
				x.ID, strings.TrimPrefix(x.ValidationReason, domain.DamagedReason), domain.ErrConflict)
		}
	}
	return nil
}

// RecordDamage marks each backup with a damaged file NotValid, the files
// and both hashes in the reason; by names the read path that found it.
func (s *Kernel) RecordDamage(ctx context.Context, ds []agentapi.Damage, by string) error {
	byBackup := map[string][]agentapi.Damage{}
	var order []string
	for _, d := range ds {
		if _, ok := byBackup[d.BackupID]; !ok {
			order = append(order, d.BackupID)
		}
		byBackup[d.BackupID] = append(byBackup[d.BackupID], d)
	}
	for _, id := range order {
		var files []string
		for _, d := range byBackup[id] {
			files = append(files, fmt.Sprintf("file %s hashes to %s, recorded %s", d.Path, d.Found, d.Recorded))
		}
		reason := domain.DamagedReason + strings.Join(files, "; ") + " (found by " + by + ")"
		if err := s.store.SetValidation(ctx, id, domain.NotValid, reason, nil, false, nil); err != nil {
			return fmt.Errorf("mark backup %s damaged: %w", id, err)
		}
		s.log.Warn("damaged backup", "backup", id, "reason", reason)
	}
	return nil
}
