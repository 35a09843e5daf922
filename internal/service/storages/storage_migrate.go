package storages

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/revert"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// MigrateStorage moves backups (whole chains: every backup of a VM on the
// source) from one storage to another of the same zone, optionally of one
// VM only (seed: secondary storage migration for backups). Per VM: the moves
// are recorded, an agent of the zone copies and verifies the files into the
// target (hashes, backing chains inside the target), the catalogue switches
// in one transaction, then the source files go. Refused while a VM runs on
// those files or a job works on them; the VMs are locked meanwhile.
// Interrupted moves are finished or rolled back by Reconcile.
func (s *Service) MigrateStorage(ctx context.Context, p domain.Principal, fromRef, toRef, vmRef string) (domain.Operation, error) {
	if err := p.RequireAdmin("migrating backup storages"); err != nil {
		return domain.Operation{}, err
	}
	if err := domain.ValidateRef("from", fromRef); err != nil {
		return domain.Operation{}, err
	}
	if err := domain.ValidateRef("to", toRef); err != nil {
		return domain.Operation{}, err
	}
	from, err := s.store.Storage(ctx, fromRef)
	if err != nil {
		return domain.Operation{}, err
	}
	to, err := s.store.Storage(ctx, toRef)
	if err != nil {
		return domain.Operation{}, err
	}
	if from.ID == to.ID {
		return domain.Operation{}, domain.Invalid("to", "source and target are the same storage")
	}
	if from.ZoneID != to.ZoneID {
		return domain.Operation{}, fmt.Errorf("storages %s and %s are in different zones; backups move within a zone: %w", from.Name, to.Name, domain.ErrConflict)
	}
	if !to.Enabled {
		return domain.Operation{}, fmt.Errorf("storage %s is disabled: %w", to.Name, domain.ErrConflict)
	}
	vmID := ""
	if vmRef != "" {
		vm, err := s.k.VM(ctx, p, vmRef)
		if err != nil {
			return domain.Operation{}, err
		}
		vmID = vm.ID
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vmID})
	if err != nil {
		return domain.Operation{}, err
	}
	byVM := map[string][]domain.Backup{}
	var order []string
	for _, b := range all {
		if b.StorageID != from.ID {
			continue
		}
		switch b.Status {
		case domain.BackupBackedUp, domain.BackupRemoved:
		case domain.BackupFailed, domain.BackupError:
			continue // catalogue only: no files to move
		default:
			return domain.Operation{}, fmt.Errorf("backup %s is %s; migrate when that ends: %w", b.ID, b.Status, domain.ErrConflict)
		}
		if b.CompressionStatus == domain.Compressing || b.CompressionStatus == domain.FinalizingCompression {
			return domain.Operation{}, fmt.Errorf("backup %s is being compressed; migrate when that ends: %w", b.ID, domain.ErrConflict)
		}
		if running, err := s.store.Jobs(ctx, store.JobFilter{BackupID: b.ID, Executing: true}); err != nil {
			return domain.Operation{}, err
		} else if len(running) > 0 {
			return domain.Operation{}, fmt.Errorf("a %s job runs on backup %s; migrate when it ends: %w", running[0].Type, b.ID, domain.ErrConflict)
		}
		if users, err := s.k.Dependants(ctx, b); err != nil {
			return domain.Operation{}, err
		} else if len(users) > 0 {
			return domain.Operation{}, fmt.Errorf("backup %s: VM %s still runs on its files (quick restore not consolidated): %w", b.ID, strings.Join(users, ", "), domain.ErrConflict)
		}
		if _, ok := byVM[b.VMID]; !ok {
			order = append(order, b.VMID)
		}
		byVM[b.VMID] = append(byVM[b.VMID], b)
	}
	if len(order) == 0 {
		return domain.Operation{}, fmt.Errorf("storage %s holds no backups to migrate: %w", from.Name, domain.ErrConflict)
	}
	var releases []func()
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	for _, id := range order {
		vm, err := s.store.VM(ctx, id)
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		release, err := s.k.LockVM(ctx, vm, "a backup storage migration")
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		releases = append(releases, release)
	}
	opID := domain.NewID()
	return s.k.StartID(ctx, p, opID, "storage.migrate", vmID, func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		defer releaseAll()
		var moved []string
		for i, id := range order {
			span := 100 / float64(len(order))
			ids, err := s.moveChains(ctx, opID, from, to, byVM[id], progress, float64(i)*span, float64(i+1)*span)
			moved = append(moved, ids...)
			if err != nil {
				return domain.StorageMigrateResult{Moved: moved}, err
			}
		}
		return domain.StorageMigrateResult{From: from.Name, To: to.Name, Moved: moved}, nil
	})
}

// moveChains moves the backups of one VM (parents before children).
func (s *Service) moveChains(ctx context.Context, opID string, from, to domain.Storage, backups []domain.Backup, progress kernel.Progress, p0, p1 float64) ([]string, error) {
	sort.SliceStable(backups, func(i, j int) bool { return backups[i].Created.Before(backups[j].Created) })
	a, _, err := s.zoneAgent(ctx, from.ZoneID)
	if err != nil {
		return nil, err
	}
	timeout := s.k.GlobalTimeout(ctx)
	if vm, err := s.store.VM(ctx, backups[0].VMID); err == nil {
		timeout = s.k.KnibTimeout(ctx, vm)
	}
	now := s.k.Clock().Now()
	moves := make([]store.StorageMove, len(backups))
	req := agentapi.StorageCopyRequest{InStorage: agentapi.InStorage{Storage: to.Path}, From: from.Path}
	ids := make([]string, len(backups))
	for i, b := range backups {
		ids[i] = b.ID
		moves[i] = store.StorageMove{BackupID: b.ID, VMID: b.VMID, From: from.ID, To: to.ID, OperationID: opID, Created: now}
		cb := agentapi.StorageCopyBackup{ID: b.ID, Dir: b.Dir}
		for _, f := range b.Files {
			cb.Files = append(cb.Files, agentapi.StorageCopyFile{Disk: f.Disk, Path: f.Path, Hash: f.Hash})
		}
		req.Backups = append(req.Backups, cb)
	}
	// Intent first. Until the catalogue switches, a failure drops the
	// partial copy and then the intent (an undo that fails leaves the rest
	// to reconciliation, which retries).
	if err := s.store.StartStorageMoves(ctx, moves); err != nil {
		return nil, err
	}
	r := revert.New(s.k.Log())
	defer r.Fail()
	bg := context.WithoutCancel(ctx)
	r.Add("forget the storage moves", func() error {
		for _, b := range backups {
			if err := s.store.EndStorageMove(bg, b.ID); err != nil {
				return err
			}
		}
		return nil
	})
	r.Add("remove the partial copy", func() error {
		return s.k.DeleteDirs(bg, a, map[string][]string{to.Path: dirsOf(backups)}, timeout)
	})
	progress(p0, fmt.Sprintf("copying %d backup(s) of %s to %s", len(backups), backups[0].VMName, to.Name))
	crashpoint.Hit("storage.migrate.before-copy")
	res, err := kernel.Run(ctx, a, agentapi.StorageCopy, req, timeout, progress, p0, p0+(p1-p0)*0.9)
	if ds := kernel.DamageOf(err); len(ds) > 0 {
		if rerr := s.k.RecordDamage(ctx, ds, "a storage migration"); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if err != nil {
		r.Fail()
		if rerr := r.Err(); rerr != nil {
			return nil, fmt.Errorf("copy to %s: %w (and the partial copy could not be removed: %v; reconciliation retries)", to.Name, err, rerr)
		}
		return nil, fmt.Errorf("copy to %s: %w; nothing was moved", to.Name, err)
	}
	for _, b := range backups {
		if h := res.Hashes[b.ID]; len(h) > 0 {
			files := make([]domain.BackupFile, 0, len(b.Files))
			for _, f := range b.Files {
				if nh, ok := h[f.Disk]; ok {
					f.Hash = nh
				}
				files = append(files, f)
			}
			if err := s.store.SetCompression(ctx, b.ID, b.CompressionStatus, b.Size, b.UncompressedSize, files); err != nil {
				return nil, err
			}
		}
	}
	crashpoint.Hit("storage.migrate.before-switch")
	if err := s.store.SwitchStorageMoves(ctx, ids); err != nil {
		return nil, err
	}
	r.Success() // the catalogue names the target now
	s.k.Log().Info("backups moved", "vm", backups[0].VMName, "count", len(ids), "from", from.Name, "to", to.Name, "rebased", len(res.Rebased))
	crashpoint.Hit("storage.migrate.after-switch")
	progress(p0+(p1-p0)*0.95, "removing the source files")
	if err := s.k.DeleteDirs(ctx, a, map[string][]string{from.Path: dirsOf(backups)}, timeout); err != nil {
		// The backups are on the target already; reconciliation removes the rest.
		s.k.Log().Warn("remove migrated backups from the source", "storage", from.Name, "err", err)
		return ids, nil
	}
	for _, id := range ids {
		if err := s.store.EndStorageMove(ctx, id); err != nil {
			// The move stays recorded as switched: reconciliation ends it.
			s.k.Log().Warn("end a storage move; reconciliation does", "backup", id, "err", err)
		}
	}
	return ids, nil
}

func dirsOf(backups []domain.Backup) []string {
	out := make([]string, len(backups))
	for i, b := range backups {
		out[i] = b.Dir
	}
	return out
}

// recoverStorageMoves finishes moves an interruption left behind: a move
// still copying is rolled back (the catalogue names the source; the partial
// copy goes), a switched one loses its source files. Moves of operations
// still running are left alone.
func (s *Service) RecoverStorageMoves(ctx context.Context) {
	moves, err := s.store.StorageMoves(ctx)
	if err != nil {
		s.k.Log().Warn("reconcile storage moves", "err", err)
		return
	}
	timeout := s.k.GlobalTimeout(ctx)
	for _, m := range moves {
		if op, err := s.store.Operation(ctx, m.OperationID); err == nil && (op.State == domain.OpPending || op.State == domain.OpRunning) {
			continue
		}
		b, err := s.store.Backup(ctx, m.BackupID)
		if errors.Is(err, domain.ErrNotFound) {
			if err := s.store.EndStorageMove(ctx, m.BackupID); err != nil {
				s.k.Log().Warn("reconcile storage moves: end the move of a deleted backup", "backup", m.BackupID, "err", err)
			}
			continue
		}
		if err != nil {
			continue
		}
		stID := m.To // copying: remove the partial copy
		if m.State == store.MoveSwitched {
			stID = m.From // switched: remove the source
		}
		st, err := s.store.Storage(ctx, stID)
		if err != nil {
			s.k.Log().Warn("reconcile storage move", "backup", b.ID, "err", err)
			continue
		}
		a, _, err := s.zoneAgent(ctx, st.ZoneID)
		if err != nil {
			continue // retried at the next round
		}
		if err := s.k.DeleteDirs(ctx, a, map[string][]string{st.Path: {b.Dir}}, timeout); err != nil {
			s.k.Log().Warn("reconcile storage move", "backup", b.ID, "err", err)
			continue
		}
		if err := s.store.EndStorageMove(ctx, m.BackupID); err != nil {
			s.k.Log().Warn("reconcile storage move: end it; the next round does", "backup", b.ID, "err", err)
			continue
		}
		s.k.Log().Info("interrupted storage move reconciled", "backup", b.ID, "state", m.State, "removed_from", st.Name)
	}
}
