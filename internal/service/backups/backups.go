package backups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

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
	Request agentapi.TakeBackupRequest `json:"request"`
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
	// The previous backup's merge may still run (it follows the backup's
	// success): wait for it, the VM is read again below.
	s.k.AwaitFollowUp(ctx, vm.ID)
	if vm.OfferingID == "" {
		return domain.Operation{}, fmt.Errorf("vm %s is not assigned to a backup offering: %w", vm.Name, domain.ErrConflict)
	}
	if err := s.k.RequireEnabled(ctx, vm.HostID); err != nil {
		return domain.Operation{}, err
	}
	// The host's inventory is read once per backup, here: the VM's real
	// state and disks decide both whether it may start and its plan.
	from := vm.HostID
	dom, vm, err := s.k.ReadVM(ctx, vm)
	if err != nil {
		return domain.Operation{}, err
	}
	if vm.HostID != from {
		// It was migrated outside knib: the backup runs on its new host.
		if err := s.k.RequireEnabled(ctx, vm.HostID); err != nil {
			return domain.Operation{}, err
		}
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
	if s.k.DependsOnStorage(ctx, vm) {
		return domain.Operation{}, fmt.Errorf("vm %s still runs on backup files (quick restore): finish `knib vm consolidate %s` first: %w", vm.Name, vm.Name, domain.ErrConflict)
	}
	if err := s.storages.CheckPlacement(ctx, vm); err != nil {
		return domain.Operation{}, fmt.Errorf("vm %s: %w", vm.Name, err)
	}
	return s.k.VMOperationThen(ctx, p, vm, "a backup", "backup.create", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, kernel.FollowUp, error) {
		res, merge, err := s.runBackup(ctx, vm, dom, isolated, quiesce, sched, progress)
		if err != nil {
			return nil, nil, err
		}
		return res, func(ctx context.Context) {
			if merge != nil && !merge(ctx) {
				return
			}
			if after != nil {
				if rerr := after(ctx, vm); rerr != nil {
					s.k.Log().Warn("after the backup", "vm", vm.Name, "err", rerr)
				}
			}
		}, nil
	})
}

// A backup is four steps, each a function below: plan (pure, in
// internal/chain), record the intent, execute on the agent, commit. The
// backup is complete then; the merges on primary storage it leaves (the
// previous delta, and the new one at the end of a chain) follow as a step
// of their own (the returned merge, see mergeAfter).
func (s *Service) runBackup(ctx context.Context, vm domain.VM, dom agentapi.Domain, isolated, quiesce bool, sched *domain.Schedule, progress kernel.Progress) (domain.OpResult, func(context.Context) bool, error) {
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return nil, nil, err
	}
	off, err := s.store.Offering(ctx, vm.OfferingID)
	if err != nil {
		return nil, nil, err
	}
	view, err := s.k.VMSettings(ctx, vm)
	if err != nil {
		return nil, nil, err
	}
	progress(1, "planning")
	b, req, err := s.plan(ctx, vm, dom, off, view, isolated, quiesce, sched)
	if err != nil {
		return nil, nil, err
	}
	if err := s.recordIntent(ctx, vm, &b, req); err != nil {
		return nil, nil, err
	}
	res, err := kernel.Run(ctx, a, agentapi.TakeBackup, req, view.Duration(settings.KeyKnibTimeout), progress, 5, 95)
	if err != nil {
		return nil, nil, s.backupFailed(ctx, vm, b, err)
	}
	crashpoint.Hit("backup.before-commit")
	if err := s.commit(ctx, vm, &b, req, res, off); err != nil {
		return nil, nil, s.backupFailed(ctx, vm, b, err)
	}
	s.k.Log().Info("backup done", "vm", vm.Name, "backup", b.ID, "size", b.Size, "freeze", res.Freeze, "phases", res.Phases)
	obs := s.k.Observe()
	phases := map[string]float64{}
	for phase, d := range res.Phases {
		obs.BackupPhase(phase, d)
		phases[phase] = d.Seconds()
	}
	obs.BackupPhase("freeze", res.Freeze)
	out := domain.BackupCreateResult{ID: b.ID, Type: string(b.Type), Freeze: res.Freeze.Seconds(), Phases: phases}
	if !req.DeferMerge {
		return out, nil, nil
	}
	return out, func(ctx context.Context) bool {
		return s.mergeAfter(ctx, vm, a, b, req, view.Duration(settings.KeyKnibTimeout))
	}, nil
}

// mergeAfter runs the merges a committed backup left (agentapi.MergeBackup)
// and reports whether the VM is free again. The VM stays BackingUp in the
// catalogue until they are done: a crash before leaves it to recovery
// (kernel.RecoverVM merges every delta and ends the chain; the backup
// stays BackedUp). A failure makes the VM BackupError and recovery runs at
// once, as for a failed backup.
func (s *Service) mergeAfter(ctx context.Context, vm domain.VM, a agentapi.Agent, b domain.Backup, req agentapi.TakeBackupRequest, timeout time.Duration) bool {
	crashpoint.Hit("backup.before-merge-task")
	res, err := kernel.Run(ctx, a, agentapi.MergeBackup, agentapi.MergeBackupRequestOf(req), timeout, nil, 0, 100)
	if err != nil {
		// The VM is the user's again once the backup reported success: it
		// may have been migrated outside knib meanwhile. The merge goes on
		// where it is now (idempotent: the agent checks the real chain).
		if _, cur, rerr := s.k.ReadVM(ctx, vm); rerr == nil && cur.HostID != vm.HostID {
			if a2, aerr := s.k.Agent(cur.HostID); aerr == nil {
				s.k.Log().Info("the VM moved during the merge; merging on its new host", "vm", vm.Name, "err", err)
				vm = cur
				// A VM migrated while the merge's flush had it paused
				// arrives paused: the merge there resumes it first.
				again := agentapi.MergeBackupRequestOf(req)
				again.ResumePaused = kernel.LeftPaused(err)
				res, err = kernel.Run(ctx, a2, agentapi.MergeBackup, again, timeout, nil, 0, 100)
			}
		}
	}
	if err == nil {
		s.k.Observe().BackupPhase(agentapi.PhaseMerge, res.Merge)
		if res.Domain.UUID != "" {
			if rerr := s.k.RecordDomain(ctx, res.Domain); rerr != nil {
				s.k.Log().Warn("record the VM's disks after the merge; the next inventory pass does", "vm", vm.Name, "err", rerr)
			}
		}
		if err = s.store.SetVMWorkState(ctx, vm.ID, ""); err == nil {
			s.k.Log().Info("backup merged", "vm", vm.Name, "backup", b.ID, "merge", res.Merge)
			return true
		}
	}
	s.k.Log().Warn("merge after the backup failed; recovering the vm (the backup stays)", "vm", vm.Name, "backup", b.ID, "err", err)
	if werr := s.store.SetVMWorkState(ctx, vm.ID, domain.VMBackupError); werr != nil {
		s.k.Log().Warn("record BackupError; recovery finds the VM BackingUp", "vm", vm.Name, "err", werr)
	}
	if rerr := s.k.RecoverVM(ctx, vm.ID); rerr != nil {
		s.k.Log().Warn("recovery after a failed merge did not finish", "vm", vm.Name, "err", rerr)
	}
	return false
}

// plan decides the backup from the chain head, the recorded deltas and the
// disks as the hypervisor shows them (dom), and places a new chain on a
// storage. It changes nothing.
func (s *Service) plan(ctx context.Context, vm domain.VM, dom agentapi.Domain, off domain.Offering, view settings.View, isolated, quiesce bool, sched *domain.Schedule) (domain.Backup, agentapi.TakeBackupRequest, error) {
	var req agentapi.TakeBackupRequest
	cur := kernel.VMFromAgent(dom)
	if err := cur.CheckAssignable(); err != nil {
		return domain.Backup{}, req, err
	}
	if err := kernel.CheckNoForeignSnapshots(vm.Name, dom); err != nil {
		return domain.Backup{}, req, err
	}
	chainSize := off.EffectiveChainSize(int(view.Int(settings.KeyBackupChainSize)))
	chainState, err := s.store.Chain(ctx, vm.ID)
	if err != nil {
		return domain.Backup{}, req, err
	}
	in := chain.BackupInput{ChainSize: chainSize, Isolated: isolated, ParentFiles: map[string]bool{}, IsSnapshot: kernel.IsSnapshotOverlay(vm.ID)}
	parentPaths := map[string]string{}
	headStorage := ""
	if chainState.Head != "" {
		hb, err := s.store.Backup(ctx, chainState.Head)
		if err != nil && !errors.Is(err, domain.ErrNotFound) {
			return domain.Backup{}, req, err
		}
		if err == nil {
			headStorage = hb.StorageID
			in.Head = &chain.Backup{ID: hb.ID, ParentID: hb.ParentID, Type: hb.Type, Isolated: hb.Isolated, EndOfChain: hb.EndOfChain, Position: hb.Position, Status: hb.Status}
			for _, f := range hb.Files {
				in.ParentFiles[f.Disk], parentPaths[f.Disk] = true, f.Path
			}
		}
	}
	for _, d := range chainState.Deltas {
		in.Recorded = append(in.Recorded, chain.Recorded{Target: d.Disk, Delta: d.Delta, Base: d.Base})
	}
	for _, d := range cur.BackedUpDisks() {
		rd := chain.RealDisk{Target: d.Target, Top: d.Source}
		for _, l := range d.BackingChain {
			rd.Backing = append(rd.Backing, l.Path)
		}
		in.Real = append(in.Real, rd)
	}
	pl := chain.PlanBackup(in)
	dec := pl.Decision
	others, err := s.k.SnapshotFiles(ctx, vm.ID, "")
	if err != nil {
		return domain.Backup{}, req, err
	}
	now := s.k.Clock().Now()
	b := domain.Backup{ID: domain.NewID(), VMID: vm.ID, VMName: vm.Name, AccountID: vm.AccountID, OfferingID: vm.OfferingID,
		HostID: vm.HostID, Type: dec.Type, Isolated: dec.Isolated, ParentID: dec.ParentID, Position: dec.Position,
		EndOfChain: dec.EndOfChain, Status: domain.BackupBackingUp, Created: now, Updated: now}
	b.Dir = path.Join("backups", vm.ID, b.ID)
	if sched != nil {
		b.ScheduleID = sched.ID
	}
	for _, d := range cur.BackedUpDisks() {
		b.VirtualSize += d.VirtualSize
	}
	// A new chain goes to a storage chosen now; incrementals stay with their chain.
	root := ""
	if b.Type == domain.BackupFull {
		st, err := s.storages.PlaceChain(ctx, vm, off)
		if err != nil {
			return domain.Backup{}, req, err
		}
		b.StorageID, root = st.ID, st.Path
	} else {
		b.StorageID = headStorage
		if root, err = s.k.StorageRoot(ctx, b); err != nil {
			return domain.Backup{}, req, err
		}
	}
	// The agent names the new deltas it creates (agentapi.DeltaPrefix).
	req = agentapi.TakeBackupRequest{InStorage: agentapi.InStorage{Storage: root}, BackupID: b.ID, DomainUUID: vm.ID, Dir: b.Dir,
		Quiesce: quiesce, MergeNewDelta: pl.MergeNewDelta, Others: others, DeferMerge: true}
	for _, p := range pl.Disks {
		if p.Reason != "" {
			s.k.Log().Info("disk copied full in an incremental backup", "vm", vm.Name, "disk", p.Target, "why", p.Reason)
		}
		d := agentapi.BackupDiskPlan{Target: p.Target, Full: p.Full, Frozen: p.Frozen, MergeInto: p.MergeInto, Delta: p.Delta, Layers: p.Layers}
		if !p.Full {
			d.ParentFile = parentPaths[p.Target]
		}
		req.Disks = append(req.Disks, d)
	}
	return b, req, nil
}

// recordIntent stores the backup BackingUp with its plan, and the VM
// BackingUp, before any disk changes: recovery finds both.
func (s *Service) recordIntent(ctx context.Context, vm domain.VM, b *domain.Backup, req agentapi.TakeBackupRequest) error {
	planJSON, err := json.Marshal(backupPlan{Request: req})
	if err != nil {
		return err
	}
	b.Plan = string(planJSON)
	if err := s.store.CreateBackup(ctx, *b); err != nil {
		return fmt.Errorf("record the backup intent of vm %s: %w", vm.Name, err)
	}
	if err := s.store.SetVMWorkState(ctx, vm.ID, domain.VMBackingUp); err != nil {
		// Nothing was touched: the intent goes as a failed backup.
		b.Status, b.Error, b.Updated = domain.BackupFailed, "the VM's BackingUp state could not be recorded: "+err.Error(), s.k.Clock().Now()
		if werr := s.store.SaveBackup(ctx, *b, nil); werr != nil {
			return errors.Join(fmt.Errorf("record the backup intent of vm %s: %w", vm.Name, err), werr)
		}
		return fmt.Errorf("record the backup intent of vm %s: %w", vm.Name, err)
	}
	s.k.Log().Info("backup started", "vm", vm.Name, "backup", b.ID, "type", b.Type, "position", b.Position, "end_of_chain", b.EndOfChain, "isolated", b.Isolated)
	return nil
}

// commit records what the agent wrote and the new chain head in one
// transaction, queues compression or validation, and records the VM's
// disks as the agent left them.
func (s *Service) commit(ctx context.Context, vm domain.VM, b *domain.Backup, req agentapi.TakeBackupRequest, res agentapi.TakeBackupResult, off domain.Offering) error {
	b.Status, b.Updated, b.Size = domain.BackupBackedUp, s.k.Clock().Now(), 0
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
		// The new deltas are the disks' tops the agent reports.
		newChain = &store.Chain{Head: b.ID}
		for _, d := range req.Disks {
			i := slices.IndexFunc(res.Chains, func(c agentapi.DiskChain) bool { return c.Target == d.Target })
			if i < 0 {
				return fmt.Errorf("the agent reported no chain for disk %s", d.Target)
			}
			c := res.Chains[i]
			if req.DeferMerge && d.MergeInto != "" && c.Base == d.Delta {
				// The previous delta is merged into MergeInto right after
				// (mergeAfter); the VM stays BackingUp until then.
				c.Base = d.MergeInto
			}
			newChain.Deltas = append(newChain.Deltas, domain.Delta{VMID: vm.ID, Disk: d.Target, BackupID: b.ID, Delta: c.Top, Base: c.Base})
		}
	}
	if err := s.store.SaveBackup(ctx, *b, newChain); err != nil {
		return fmt.Errorf("commit backup %s: %w", b.ID, err)
	}
	// Compression first; validation follows it, or comes at once.
	if off.Compress {
		if err := s.k.Enqueue(ctx, jobs.StartCompression, *b); err != nil {
			s.k.Log().Warn("queue the compression", "backup", b.ID, "err", err)
		}
	} else if off.Validate {
		if err := s.k.Enqueue(ctx, jobs.BackupValidation, *b); err != nil {
			s.k.Log().Warn("queue the validation", "backup", b.ID, "err", err)
		}
	}
	if s.afterCommit != nil {
		s.afterCommit(ctx, *b)
	}
	// Snapshots frozen on a merged delta now find their state in its base.
	for _, d := range req.Disks {
		if d.MergeInto != "" {
			if err := s.k.RepointSnapshots(ctx, vm.ID, d.Target, d.Delta, d.MergeInto); err != nil {
				return err
			}
		}
	}
	if req.DeferMerge {
		return nil // the VM stays BackingUp until mergeAfter
	}
	if err := s.store.SetVMWorkState(ctx, vm.ID, ""); err != nil {
		return err
	}
	if res.Domain.UUID != "" {
		if err := s.k.RecordDomain(ctx, res.Domain); err != nil {
			s.k.Log().Warn("record the VM's disks after the backup; the next inventory pass does", "vm", vm.Name, "err", err)
		}
	}
	return nil
}

// backupFailed records a failed backup. A failure that changed nothing makes
// the backup Failed; anything else makes it Error and the VM BackupError, and
// recovery runs at once.
func (s *Service) backupFailed(ctx context.Context, vm domain.VM, b domain.Backup, cause error) error {
	b.Updated, b.Error = s.k.Clock().Now(), cause.Error()
	if kernel.IsClean(cause) {
		b.Status = domain.BackupFailed
		if err := s.store.SaveBackup(ctx, b, nil); err != nil {
			return errors.Join(fmt.Errorf("backup failed, nothing was changed: %w", cause), fmt.Errorf("record the failure; recovery does: %w", err))
		}
		if err := s.store.SetVMWorkState(ctx, vm.ID, ""); err != nil {
			return errors.Join(fmt.Errorf("backup failed, nothing was changed: %w", cause), fmt.Errorf("clear the VM's state; recovery does: %w", err))
		}
		return fmt.Errorf("backup failed, nothing was changed: %w", cause)
	}
	b.Status = domain.BackupError
	if err := s.store.SaveBackup(ctx, b, nil); err != nil {
		// The backup stays BackingUp: recovery makes it Error.
		s.k.Log().Warn("record a failed backup; recovery does", "backup", b.ID, "err", err)
	}
	if err := s.store.SetVMWorkState(ctx, vm.ID, domain.VMBackupError); err != nil {
		s.k.Log().Warn("record BackupError; recovery finds the BackingUp backup", "vm", vm.Name, "err", err)
	}
	if err := s.k.RecoverVM(ctx, vm.ID); err != nil {
		return fmt.Errorf("backup failed (%v) and recovery did not finish: %v", cause, err)
	}
	return fmt.Errorf("backup failed; the VM was recovered and its chain ended: %w", cause)
}

// Backups lists one page of backups, oldest first: of one VM when ref is
// set (any VM the principal may see), else of the principal's account (an
// admin: all). The cursor is nil on the last page.
func (s *Service) Backups(ctx context.Context, p domain.Principal, ref string, page store.Page) ([]domain.Backup, *store.Cursor, error) {
	f := store.BackupFilter{Page: page.OneMore()}
	if ref != "" {
		vm, err := s.k.VM(ctx, p, ref)
		if err != nil {
			return nil, nil, err
		}
		f.VMID = vm.ID
	} else if !p.IsAdmin() {
		f.AccountID = p.AccountID
	}
	list, err := s.store.ListBackups(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	list, next := store.Cut(page, list, store.BackupCursor)
	return list, next, nil
}

// ChainHeads returns which of the backups are the head of their VM's
// chain, reading each of their VMs once.
func (s *Service) ChainHeads(ctx context.Context, list ...domain.Backup) (map[string]bool, error) {
	out := map[string]bool{}
	seen := map[string]bool{}
	for _, b := range list {
		if seen[b.VMID] {
			continue
		}
		seen[b.VMID] = true
		vm, err := s.store.VM(ctx, b.VMID)
		if errors.Is(err, domain.ErrNotFound) {
			continue // a VM forgotten by the catalogue heads no chain
		}
		if err != nil {
			return nil, err
		}
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
	order, byVM, err := s.groupByVM(ctx, p, ids)
	if err != nil {
		return domain.Operation{}, err
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
		vm, plan, err := s.planVM(ctx, vmID, byVM[vmID])
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		release, err := s.k.LockVM(ctx, vm, "a backup deletion")
		if err != nil {
			releaseAll()
			return domain.Operation{}, err
		}
		releases = append(releases, release)
		plans[vmID] = plan
	}
	op, err := s.k.Start(ctx, p, "backup.delete", "", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
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
		return domain.BackupDeleteResult{Deleted: done}, nil
	})
	if err != nil {
		releaseAll() // the operation was not recorded: nothing runs
	}
	return op, err
}

// VMDeletePlan is what deleting backups does to one VM's chains.
type VMDeletePlan struct {
	VM   domain.VM
	Plan chain.DeletePlan
}

// PlanDeleteBackups says what DeleteBackups would do with ids, VM by VM,
// and refuses what it would refuse, changing nothing (a dry run: the
// console shows it before asking for confirmation).
func (s *Service) PlanDeleteBackups(ctx context.Context, p domain.Principal, ids []string) ([]VMDeletePlan, error) {
	order, byVM, err := s.groupByVM(ctx, p, ids)
	if err != nil {
		return nil, err
	}
	out := make([]VMDeletePlan, 0, len(order))
	for _, vmID := range order {
		vm, plan, err := s.planVM(ctx, vmID, byVM[vmID])
		if err != nil {
			return nil, err
		}
		out = append(out, VMDeletePlan{VM: vm, Plan: plan})
	}
	return out, nil
}

// groupByVM checks that the principal may see every backup of ids and
// groups them by VM, in the order the VMs first appear.
func (s *Service) groupByVM(ctx context.Context, p domain.Principal, ids []string) ([]string, map[string][]string, error) {
	if len(ids) == 0 {
		return nil, nil, domain.Invalid("ids", "give at least one backup id")
	}
	byVM := map[string][]string{}
	var order []string
	for _, id := range ids {
		b, err := s.k.Backup(ctx, p, id)
		if err != nil {
			return nil, nil, err
		}
		if _, ok := byVM[b.VMID]; !ok {
			order = append(order, b.VMID)
		}
		if !slices.Contains(byVM[b.VMID], id) {
			byVM[b.VMID] = append(byVM[b.VMID], id)
		}
	}
	return order, byVM, nil
}

// planVM plans deleting ids among one VM's backups under the chain rules
// and refuses what may not go now.
func (s *Service) planVM(ctx context.Context, vmID string, ids []string) (domain.VM, chain.DeletePlan, error) {
	vm, err := s.store.VM(ctx, vmID)
	if err != nil {
		return vm, chain.DeletePlan{}, err
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vmID})
	if err != nil {
		return vm, chain.DeletePlan{}, err
	}
	// An Error backup belongs to the VM's failed work while the VM is
	// in BackupError: recovery (or chain finish) reads it first.
	for _, b := range all {
		if b.Status == domain.BackupError && slices.Contains(ids, b.ID) && vm.WorkState == domain.VMBackupError {
			return vm, chain.DeletePlan{}, fmt.Errorf("backup %s is Error and vm %s is in BackupError; recovery runs by itself, or run `knib chain finish %s`, then delete it: %w",
				b.ID, vm.Name, vm.Name, domain.ErrConflict)
		}
	}
	plan, err := chain.PlanDelete(kernel.ToChain(all), vm.ChainHead, ids)
	if err != nil {
		if errors.Is(err, chain.ErrBusy) {
			return vm, chain.DeletePlan{}, fmt.Errorf("%v: %w", err, domain.ErrConflict)
		}
		return vm, chain.DeletePlan{}, domain.Invalid("ids", "%v", err)
	}
	for _, id := range append(append([]string{}, plan.MarkRemoved...), plan.Expunge...) {
		b, err := s.store.Backup(ctx, id)
		if err != nil {
			return vm, chain.DeletePlan{}, err
		}
		if err := deletable(b); err != nil {
			return vm, chain.DeletePlan{}, err
		}
		if users, err := s.k.Dependants(ctx, b); err != nil || len(users) > 0 {
			if err != nil {
				return vm, chain.DeletePlan{}, err
			}
			return vm, chain.DeletePlan{}, fmt.Errorf("backup %s: VM %s still runs on its files (quick restore not consolidated): %w", id, strings.Join(users, ", "), domain.ErrConflict)
		}
	}
	return vm, plan, nil
}

// deletable refuses a backup whose files a job is reading or rewriting: a
// compression (its copies are swapped in) or a validation (the validation
// VM's overlays read its files).
func deletable(b domain.Backup) error {
	if b.CompressionStatus == domain.Compressing || b.CompressionStatus == domain.FinalizingCompression {
		return fmt.Errorf("backup %s is being compressed (%s); delete it when that ends: %w", b.ID, b.CompressionStatus, domain.ErrConflict)
	}
	if b.ValidationStatus == domain.Validating {
		return fmt.Errorf("backup %s is being validated (a validation VM reads its files); delete it when that ends: %w", b.ID, domain.ErrConflict)
	}
	return nil
}

// ApplyDelete carries out a deletion plan for one VM. When the files
// cannot be deleted and forced is false, the backups asked for become
// Error (with the reason; deleting them again retries) and the removed
// ancestors they would have taken along stay Removed; forced expunges
// them from the catalogue anyway.
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
		b.Status, b.Updated = domain.BackupRemoved, s.k.Clock().Now()
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
			if err := deletable(b); err != nil {
				return done, err // a job started since the plan was made
			}
			gone = append(gone, b)
		}
		byRoot, err := s.k.StorageDirs(ctx, gone)
		if err != nil {
			return done, err
		}
		if err := s.k.DeleteDirs(ctx, a, byRoot, timeout); err != nil && !forced {
			return done, s.deleteFailed(ctx, gone, err)
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

// deleteFailed records a deletion whose files could not be deleted: each
// backup asked for (not Removed) becomes Error with the reason; the Removed
// ancestors stay as they are and go with it when it is deleted again.
func (s *Service) deleteFailed(ctx context.Context, gone []domain.Backup, cause error) error {
	cause = fmt.Errorf("delete backup files: %w", cause)
	errs := []error{cause}
	for _, b := range gone {
		if b.Status == domain.BackupRemoved {
			continue
		}
		b.Status, b.Error, b.Updated = domain.BackupError, cause.Error()+" (delete it again, or with --forced)", s.k.Clock().Now()
		if err := s.store.SaveBackup(ctx, b, nil); err != nil {
			errs = append(errs, fmt.Errorf("record backup %s as Error: %w", b.ID, err))
		}
	}
	return errors.Join(errs...)
}

// FinishChain ends a VM's backup chain on demand (seed: finishBackupChain):
// it also recovers a VM in BackupError.
func (s *Service) FinishChain(ctx context.Context, p domain.Principal, ref string) (domain.Operation, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return domain.Operation{}, err
	}
	return s.k.VMOperation(ctx, p, vm, "finishing the chain", "chain.finish", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		progress(10, "merging the deltas on primary storage")
		if err := s.k.RecoverVM(ctx, vm.ID); err != nil {
			return nil, err
		}
		return domain.ChainFinishResult{VM: vm.Name, Chain: "ended"}, nil
	})
}
