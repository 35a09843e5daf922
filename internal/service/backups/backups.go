package backups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/chain"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// backupPlan is the intent recorded with a backup before any disk is touched.
type backupPlan struct {
	Decision chain.Decision             `json:"decision"`
	Request  agentapi.TakeBackupRequest `json:"request"`
}

// CreateBackup starts a backup of a VM and returns its operation.
func (s *Service) CreateBackup(ctx context.Context, p domain.Principal, ref string, isolated, quiesce bool) (domain.Operation, error) {
	return s.CreateScheduled(ctx, p, ref, isolated, quiesce, nil, nil)
}

// CreateScheduled starts a backup for a schedule; after, when set, runs once
// the backup succeeded (the schedule's retention).
func (s *Service) CreateScheduled(ctx context.Context, p domain.Principal, ref string, isolated, quiesce bool, sched *domain.Schedule, after func(ctx context.Context, vm domain.VM) error) (domain.Operation, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return domain.Operation{}, err
	}
	s.k.RefreshHost(ctx, vm.HostID)
	if vm, err = s.store.VM(ctx, vm.ID); err != nil {
		return domain.Operation{}, err
	}
	if vm.OfferingID == "" {
		return domain.Operation{}, fmt.Errorf("vm %s is not assigned to a backup offering: %w", vm.Name, domain.ErrConflict)
	}
	switch vm.EffectiveState() {
	case domain.VMRunning, domain.VMStopped:
	case domain.VMBackupError:
		return domain.Operation{}, fmt.Errorf("vm %s is in BackupError (%s); recovery runs by itself, or run `knib chain finish %s`: %w", vm.Name, vm.LastError, vm.Name, domain.ErrConflict)
	default:
		return domain.Operation{}, fmt.Errorf("vm %s is %s; backups need it Running or Stopped: %w", vm.Name, vm.EffectiveState(), domain.ErrConflict)
	}
	if err := s.k.RequireEnabled(ctx, vm.HostID); err != nil {
		return domain.Operation{}, err
	}
	if s.k.DependsOnStorage(ctx, vm) {
		return domain.Operation{}, fmt.Errorf("vm %s still runs on backup files (quick restore): finish `knib vm consolidate %s` first: %w", vm.Name, vm.Name, domain.ErrConflict)
	}
	if err := s.storages.CheckPlacement(ctx, vm); err != nil {
		return domain.Operation{}, fmt.Errorf("vm %s: %w", vm.Name, err)
	}
	return s.k.VMOperation(ctx, p, vm, "a backup", "backup.create", func(ctx context.Context, progress kernel.Progress) (any, error) {
		res, err := s.runBackup(ctx, vm, isolated, quiesce, sched, progress)
		if err == nil && after != nil {
			if rerr := after(ctx, vm); rerr != nil {
				s.log.Warn("after the backup", "vm", vm.Name, "err", rerr)
			}
		}
		return res, err
	})
}

func (s *Service) runBackup(ctx context.Context, vm domain.VM, isolated, quiesce bool, sched *domain.Schedule, progress kernel.Progress) (any, error) {
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return nil, err
	}
	off, err := s.store.Offering(ctx, vm.OfferingID)
	if err != nil {
		return nil, err
	}
	view, err := s.k.VMSettings(ctx, vm)
	if err != nil {
		return nil, err
	}
	chainSize := off.EffectiveChainSize(int(view.Int(settings.KeyBackupChainSize)))
	timeout := view.Duration(settings.KeyKnibTimeout)

	// Look at the real disks, not only at what we recorded.
	progress(1, "reading the VM's disks")
	doms, err := a.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	var real *agentapi.Domain
	for i := range doms {
		if doms[i].UUID == vm.ID {
			real = &doms[i]
		}
	}
	if real == nil {
		return nil, fmt.Errorf("vm %s is no longer defined on its host: %w", vm.Name, domain.ErrConflict)
	}
	cur := kernel.VMFromAgent(*real)
	if err := cur.CheckAssignable(); err != nil {
		return nil, err
	}

	chainState, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return nil, err
	}
	var head *chain.Backup
	headStorage := ""
	parentFiles := map[string]bool{}
	parentPaths := map[string]string{}
	if chainState.Head != "" {
		hb, err := s.store.Backup(ctx, chainState.Head)
		if err == nil {
			headStorage = hb.StorageID
			head = &chain.Backup{ID: hb.ID, ParentID: hb.ParentID, Type: hb.Type, Isolated: hb.Isolated, EndOfChain: hb.EndOfChain, Position: hb.Position, Status: hb.Status}
			for _, f := range hb.Files {
				parentFiles[f.Disk], parentPaths[f.Disk] = true, f.Path
			}
		}
	}
	dec := chain.Next(head, chainSize, isolated)
	var recorded []chain.Recorded
	for _, d := range chainState.Deltas {
		recorded = append(recorded, chain.Recorded{Target: d.Disk, Delta: d.Delta, Base: d.Base})
	}
	var realDisks []chain.RealDisk
	for _, d := range cur.BackedUpDisks() {
		rd := chain.RealDisk{Target: d.Target, Top: d.Source}
		for _, l := range d.BackingChain {
			rd.Backing = append(rd.Backing, l.Path)
		}
		realDisks = append(realDisks, rd)
	}
	plans := chain.PlanDisks(dec, parentFiles, recorded, realDisks, kernel.IsSnapshotOverlay(vm.ID))
	others, err := s.k.SnapshotFiles(ctx, vm.ID, "")
	if err != nil {
		return nil, err
	}

	now := s.clock.Now()
	b := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: vm.Name, AccountID: vm.AccountID, OfferingID: vm.OfferingID,
		HostID: vm.HostID, Type: dec.Type, Isolated: dec.Isolated, ParentID: dec.ParentID, Position: dec.Position,
		EndOfChain: dec.EndOfChain, Status: domain.BackupBackingUp, Created: now, Updated: now}
	b.Dir = path.Join("backups", vm.ID, b.ID)
	if sched != nil {
		b.ScheduleID = sched.ID
	}
	req := agentapi.TakeBackupRequest{BackupID: b.ID, DomainUUID: vm.ID, Dir: b.Dir, Quiesce: quiesce,
		MergeNewDelta: dec.EndOfChain || dec.Isolated, Others: others}
	allFull := true
	for _, pl := range plans {
		if pl.Reason != "" {
			s.log.Info("disk copied full in an incremental backup", "vm", vm.Name, "disk", pl.Target, "why", pl.Reason)
		}
		d := agentapi.BackupDiskPlan{Target: pl.Target, Full: pl.Full, Frozen: pl.Frozen, MergeInto: pl.MergeInto,
			Delta: pl.Delta, Layers: pl.Layers,
			NewDelta: filepath.Join(filepath.Dir(pl.Frozen), agentapi.DeltaPrefix+vm.ID+"."+pl.Target+"."+b.ID+".qcow2")}
		if !pl.Full {
			d.ParentFile = parentPaths[pl.Target]
			allFull = false
		}
		req.Disks = append(req.Disks, d)
	}
	if dec.Type == chain.Incremental && allFull {
		// Every disk changed outside knib: this is a new chain.
		b.Type, b.ParentID, b.Position = domain.BackupFull, "", 1
		b.EndOfChain = chainSize == 1
		req.MergeNewDelta = b.EndOfChain
	}
	for _, d := range cur.BackedUpDisks() {
		b.VirtualSize += d.VirtualSize
	}
	// A new chain goes to a storage chosen now; incrementals stay with their chain.
	tctx := ctx
	if b.Type == domain.BackupFull {
		st, err := s.storages.PlaceChain(ctx, vm, off)
		if err != nil {
			return nil, err
		}
		b.StorageID, tctx = st.ID, kernel.WithStorage(ctx, st.Path)
	} else {
		b.StorageID = headStorage
		tctx = s.k.OnStorage(ctx, b)
	}
	planJSON, err := json.Marshal(backupPlan{Decision: dec, Request: req})
	if err != nil {
		return nil, err
	}
	b.Plan = string(planJSON)
	// Intent first: the backup row and the VM state, before any disk changes.
	if err := s.store.CreateBackup(ctx, b); err != nil {
		return nil, err
	}
	if err := s.store.SetVMWorkState(ctx, vm.ID, domain.VMBackingUp); err != nil {
		return nil, err
	}
	s.log.Info("backup started", "vm", vm.Name, "backup", b.ID, "type", b.Type, "position", b.Position, "end_of_chain", b.EndOfChain, "isolated", b.Isolated)

	raw, err := s.k.RunTask(tctx, a, agentapi.KindTakeBackup, req, timeout, progress, 5, 95)
	if err != nil {
		return nil, s.backupFailed(ctx, vm, b, err)
	}
	var res agentapi.TakeBackupResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, s.backupFailed(ctx, vm, b, err)
	}
	crashpoint.Hit("backup.before-commit")
	b.Status, b.Updated, b.Size = domain.BackupBackedUp, s.clock.Now(), 0
	for _, f := range res.Files {
		b.Files = append(b.Files, domain.BackupFile{Disk: f.Disk, Path: f.Path, Full: f.Full, Size: f.Size, VirtualSize: f.VirtualSize, Hash: f.Hash})
		b.Size += f.Size
	}
	var newChain *store.Chain
	switch {
	case b.Isolated:
		// The chain is untouched.
	case b.EndOfChain:
		newChain = &store.Chain{}
	default:
		newChain = &store.Chain{Head: b.ID}
		for _, d := range req.Disks {
			newChain.Deltas = append(newChain.Deltas, domain.Delta{VMID: vm.ID, Disk: d.Target, BackupID: b.ID, Delta: d.NewDelta, Base: d.NewDeltaBase()})
		}
	}
	if err := s.store.SaveBackup(ctx, b, newChain); err != nil {
		return nil, err
	}
	// Compression first; validation follows it, or comes at once.
	if off.Compress {
		if err := s.k.Enqueue(ctx, jobs.StartCompression, b); err != nil {
			s.log.Warn("queue the compression", "backup", b.ID, "err", err)
		}
	} else if off.Validate {
		if err := s.k.Enqueue(ctx, jobs.BackupValidation, b); err != nil {
			s.log.Warn("queue the validation", "backup", b.ID, "err", err)
		}
	}
	// Snapshots frozen on a merged delta now find their state in its base.
	for _, d := range req.Disks {
		if d.MergeInto != "" {
			s.k.RepointSnapshots(ctx, vm.ID, d.Target, d.Delta, d.MergeInto)
		}
	}
	if err := s.store.SetVMWorkState(ctx, vm.ID, ""); err != nil {
		return nil, err
	}
	s.k.RefreshHost(ctx, vm.HostID)
	s.log.Info("backup done", "vm", vm.Name, "backup", b.ID, "size", b.Size, "freeze", res.Freeze)
	return backupResult{ID: b.ID, Type: string(b.Type), Freeze: res.Freeze.Seconds()}, nil
}

type backupResult struct {
	ID     string  `json:"id"`
	Type   string  `json:"type"`
	Freeze float64 `json:"freeze_seconds"`
}

// backupFailed records a failed backup. A failure that changed nothing makes
// the backup Failed; anything else makes it Error and the VM BackupError, and
// recovery runs at once.
func (s *Service) backupFailed(ctx context.Context, vm domain.VM, b domain.Backup, cause error) error {
	b.Updated, b.Error = s.clock.Now(), cause.Error()
	if kernel.IsClean(cause) {
		b.Status = domain.BackupFailed
		s.store.SaveBackup(ctx, b, nil)
		s.store.SetVMWorkState(ctx, vm.ID, "")
		return fmt.Errorf("backup failed, nothing was changed: %w", cause)
	}
	b.Status = domain.BackupError
	s.store.SaveBackup(ctx, b, nil)
	s.store.SetVMWorkState(ctx, vm.ID, domain.VMBackupError)
	if err := s.k.RecoverVM(ctx, vm.ID); err != nil {
		return fmt.Errorf("backup failed (%v) and recovery did not finish: %v", cause, err)
	}
	return fmt.Errorf("backup failed; the VM was recovered and its chain ended: %w", cause)
}

// Backups lists the backups of the VMs the principal may see (one VM when
// ref is set), oldest first.
func (s *Service) Backups(ctx context.Context, p domain.Principal, ref string) ([]domain.Backup, error) {
	f := store.BackupFilter{}
	if ref != "" {
		vm, err := s.k.VM(ctx, p, ref)
		if err != nil {
			return nil, err
		}
		f.VMID = vm.ID
	}
	list, err := s.store.ListBackups(ctx, f)
	if err != nil || p.IsAdmin() {
		return list, err
	}
	out := list[:0]
	for _, b := range list {
		if s.k.CanSeeBackup(ctx, p, b) {
			out = append(out, b)
		}
	}
	return out, nil
}

// ChainHeads returns the ids of the VMs' chain heads.
func (s *Service) ChainHeads(ctx context.Context) (map[string]bool, error) {
	vms, err := s.store.ListVMs(ctx, store.VMFilter{})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, vm := range vms {
		if vm.ChainHead != "" {
			out[vm.ChainHead] = true
		}
	}
	return out, nil
}

// DeleteBackups deletes backups (a batch may span VMs) with the chain rules:
// a backup others depend on is only marked Removed, its files go with its
// last dependant; deleting a chain head merges its deltas and ends the chain;
// failed backups leave the catalogue only.
func (s *Service) DeleteBackups(ctx context.Context, p domain.Principal, ids []string, forced bool) (domain.Operation, error) {
	if len(ids) == 0 {
		return domain.Operation{}, domain.Invalid("ids", "give at least one backup id")
	}
	byVM := map[string][]string{}
	var order []string
	for _, id := range ids {
		b, err := s.k.Backup(ctx, p, id)
		if err != nil {
			return domain.Operation{}, err
		}
		if _, ok := byVM[b.VMID]; !ok {
			order = append(order, b.VMID)
		}
		if !slices.Contains(byVM[b.VMID], id) {
			byVM[b.VMID] = append(byVM[b.VMID], id)
		}
	}
	// Plan everything first: bad input changes nothing.
	var releases []func()
	releaseAll := func() {
		for _, r := range releases {
			r()
		}
	}
	plans := map[string]chain.DeletePlan{}
	for _, vmID := range order {
		vm, err := s.store.VM(ctx, vmID)
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vmID})
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		plan, err := chain.PlanDelete(kernel.ToChain(all), vm.ChainHead, byVM[vmID])
		if err != nil {
			releaseAll()
			if errors.Is(err, chain.ErrBusy) {
				return domain.Operation{}, fmt.Errorf("%v: %w", err, domain.ErrConflict)
			}
			return domain.Operation{}, domain.Invalid("ids", "%v", err)
		}
		for _, id := range append(append([]string{}, plan.MarkRemoved...), plan.Expunge...) {
			b, err := s.store.Backup(ctx, id)
			if err != nil {
				releaseAll()
				return domain.Operation{}, err
			}
			if b.CompressionStatus == domain.Compressing || b.CompressionStatus == domain.FinalizingCompression {
				releaseAll()
				return domain.Operation{}, fmt.Errorf("backup %s is being compressed (%s); delete it when that ends: %w", id, b.CompressionStatus, domain.ErrConflict)
			}
			if users, err := s.k.Dependants(ctx, b); err != nil || len(users) > 0 {
				releaseAll()
				if err != nil {
					return domain.Operation{}, err
				}
				return domain.Operation{}, fmt.Errorf("backup %s: VM %s still runs on its files (quick restore not consolidated): %w", id, strings.Join(users, ", "), domain.ErrConflict)
			}
		}
		release, err := s.k.LockVM(ctx, vm, "a backup deletion")
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		releases = append(releases, release)
		plans[vmID] = plan
	}
	return s.k.Start(ctx, p, "backup.delete", "", func(ctx context.Context, progress kernel.Progress) (any, error) {
		defer releaseAll()
		var done []string
		for i, vmID := range order {
			progress(100*float64(i)/float64(len(order)), "deleting backups of "+vmID)
			ids, err := s.ApplyDelete(ctx, vmID, plans[vmID], forced)
			done = append(done, ids...)
			if err != nil {
				return nil, err
			}
		}
		return map[string][]string{"deleted": done}, nil
	})
}

func (s *Service) ApplyDelete(ctx context.Context, vmID string, plan chain.DeletePlan, forced bool) ([]string, error) {
	vm, err := s.store.VM(ctx, vmID)
	if err != nil {
		return nil, err
	}
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return nil, err
	}
	timeout := s.k.KnibTimeout(ctx, vm)
	var done []string
	if plan.MergeHead {
		if err := s.k.EndChain(ctx, vm, a, timeout); err != nil {
			return done, fmt.Errorf("merge the chain head's deltas: %w", err)
		}
	}
	for _, id := range plan.CatalogueOnly {
		if err := s.store.ExpungeBackup(ctx, id); err != nil {
			return done, err
		}
		done = append(done, id)
	}
	for _, id := range plan.MarkRemoved {
		b, err := s.store.Backup(ctx, id)
		if err != nil {
			return done, err
		}
		b.Status, b.Updated = domain.BackupRemoved, s.clock.Now()
		if err := s.store.SaveBackup(ctx, b, nil); err != nil {
			return done, err
		}
		done = append(done, id)
	}
	if len(plan.Expunge) > 0 {
		var gone []domain.Backup
		for _, id := range plan.Expunge {
			b, err := s.store.Backup(ctx, id)
			if err != nil {
				return done, err
			}
			gone = append(gone, b)
		}
		if err := s.k.DeleteDirs(ctx, a, s.k.StorageDirs(ctx, gone), timeout); err != nil && !forced {
			return done, fmt.Errorf("delete backup files: %w", err)
		}
		for _, id := range plan.Expunge {
			if err := s.store.ExpungeBackup(ctx, id); err != nil {
				return done, err
			}
			done = append(done, id)
		}
	}
	return done, nil
}

// FinishChain ends a VM's backup chain on demand (seed: finishBackupChain):
// it also recovers a VM in BackupError.
func (s *Service) FinishChain(ctx context.Context, p domain.Principal, ref string) (domain.Operation, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return domain.Operation{}, err
	}
	return s.k.VMOperation(ctx, p, vm, "finishing the chain", "chain.finish", func(ctx context.Context, progress kernel.Progress) (any, error) {
		progress(10, "merging the deltas on primary storage")
		if err := s.k.RecoverVM(ctx, vm.ID); err != nil {
			return nil, err
		}
		return map[string]string{"vm": vm.Name, "chain": "ended"}, nil
	})
}
