package restores

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/revert"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// consolidateAttempts bounds the retries of a failing consolidation.
const consolidateAttempts = 3

// RestoreOptions are the choices of a restore.
type RestoreOptions struct {
	Quick bool
	Host  string // host to restore onto (admin only): any enabled host of the backup's zone
	// AcceptDamaged restores backup files that no longer match their
	// recorded hashes (the result lists them; the backups stay NotValid).
	AcceptDamaged bool
	// From names a remote the backup's chain is fetched from first (its
	// files written back into the backup storage, each checked against its
	// recorded hash; files already there and intact are kept).
	From string
}

// restorable loads a backup the principal may restore and checks the
// options against it and its offering.
func (s *Service) restorable(ctx context.Context, p domain.Principal, id string, o RestoreOptions) (domain.Backup, error) {
	b, err := s.k.Backup(ctx, p, id)
	if err != nil {
		return b, err
	}
	if b.Status != domain.BackupBackedUp {
		return b, fmt.Errorf("backup %s is %s; only BackedUp backups can be restored: %w", b.ID, b.Status, domain.ErrConflict)
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return b, err
	}
	byID := map[string]domain.Backup{}
	for _, x := range all {
		byID[x.ID] = x
	}
	for _, id := range kernel.ChainAncestors(all, b.ID) {
		if byID[id].CompressionStatus == domain.FinalizingCompression {
			return b, fmt.Errorf("the compression of backup %s in this chain is being finalized; restore when it ends: %w", id, domain.ErrConflict)
		}
	}
	if o.From != "" {
		if o.Host != "" {
			return b, domain.Invalid("from", "a restore from a remote runs on the VM's own host; leave out --host")
		}
		if _, err := s.remotes.PlanFetch(ctx, b, o.From); err != nil {
			return b, err
		}
	} else if err := s.k.RefuseDamaged(ctx, b, o.AcceptDamaged); err != nil {
		return b, err
	}
	if o.Host != "" {
		if err := p.RequireAdmin("choosing the restore host"); err != nil {
			return b, err
		}
		// Any enabled host of the backup's zone with a connected agent.
		if _, err := s.targetHost(ctx, o.Host, s.zoneOf(ctx, b.HostID)); err != nil {
			return b, err
		}
	}
	if o.Quick {
		off, err := s.store.Offering(ctx, b.OfferingID)
		if err != nil {
			return b, err
		}
		if !off.AllowQuickRestore {
			return b, fmt.Errorf("offering %s does not allow quick restore: %w", off.Name, domain.ErrConflict)
		}
	}
	return b, nil
}

// RestoreBackup restores all disks of a backup onto its VM (seed:
// restoreBackup). The VM must be stopped, or deleted from libvirt (it is
// then defined again from the stored definition). The chain ends.
func (s *Service) RestoreBackup(ctx context.Context, p domain.Principal, id string, o RestoreOptions) (domain.Operation, error) {
	b, err := s.restorable(ctx, p, id, o)
	if err != nil {
		return domain.Operation{}, err
	}
	// The merge that follows a backup of the VM finishes first.
	s.k.AwaitFollowUp(ctx, b.VMID)
	// Decide on the VM's real state, not on the last inventory.
	if old, err := s.store.VM(ctx, b.VMID); err == nil {
		s.k.RefreshHost(ctx, old.HostID)
	}
	vm, err := s.store.VM(ctx, b.VMID)
	if err != nil {
		return domain.Operation{}, err
	}
	if snaps, err := s.store.Snapshots(ctx, vm.ID); err != nil {
		return domain.Operation{}, err
	} else if len(snaps) > 0 {
		return domain.Operation{}, fmt.Errorf("vm %s has %d VM snapshot(s); delete them before restoring a backup: %w", vm.Name, len(snaps), domain.ErrConflict)
	}
	switch vm.EffectiveState() {
	case domain.VMStopped, domain.VMMissing, domain.VMRestoreError:
	default:
		return domain.Operation{}, fmt.Errorf("vm %s is %s; stop it before restoring: %w", vm.Name, vm.EffectiveState(), domain.ErrConflict)
	}
	if o.Host != "" {
		to, err := s.targetHost(ctx, o.Host, s.zoneOf(ctx, b.HostID))
		if err != nil {
			return domain.Operation{}, err
		}
		if to.ID != vm.HostID {
			return s.k.VMOperation(ctx, p, vm, "a restore onto host "+to.Name, "backup.restore", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
				return s.runMove(ctx, vm, b, to, o.Quick, o.AcceptDamaged, progress)
			})
		}
	}
	if err := s.k.RequireEnabled(ctx, vm.HostID); err != nil {
		return domain.Operation{}, err
	}
	return s.k.VMOperation(ctx, p, vm, "a restore", "backup.restore", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		return s.runRestore(ctx, vm, b, o, progress)
	})
}

func (s *Service) runRestore(ctx context.Context, vm domain.VM, b domain.Backup, o RestoreOptions, progress kernel.Progress) (domain.OpResult, error) {
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return nil, err
	}
	timeout := s.k.KnibTimeout(ctx, vm)
	root, release, err := s.holdBackup(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	// Fetched files are backup files: a failed fetch changes no disk.
	if err := s.fetch(ctx, a, root, b, o, timeout, progress); err != nil {
		return nil, err
	}
	r := revert.New(s.k.Log())
	defer r.Fail()
	if err := s.recordIntent(ctx, vm, r); err != nil {
		return nil, err
	}
	fail := func(err error) error {
		r.Success()
		return s.restoreFailed(ctx, vm.ID, "restore of backup "+b.ID+" failed: ", err)
	}
	refreshed := false
	// The chain ends: merge the VM's deltas first so the disks are its own
	// files. The agent reads the VM's disks itself, and the inventory is
	// refreshed once the restore changed them.
	if vm.State != domain.VMMissing {
		progress(2, "ending the backup chain")
		if err := s.k.EndChainUnrefreshed(ctx, vm, a, timeout); err != nil {
			s.k.RefreshHost(context.WithoutCancel(ctx), vm.HostID)
			return nil, fail(err)
		}
		// A restore that stops before its end shows the merged chain.
		defer func() {
			if !refreshed {
				s.k.RefreshHost(context.WithoutCancel(ctx), vm.HostID)
			}
		}()
	} else if err := s.store.SetChain(ctx, vm.ID, store.Chain{}); err != nil {
		return nil, err
	}
	verify, err := s.k.Verify(ctx, b, o.AcceptDamaged)
	if err != nil {
		return nil, fail(err)
	}
	req := agentapi.RestoreRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: vm.ID, Dir: b.Dir, Files: kernel.RestoreFiles(b), Quick: o.Quick,
		Verify: verify}
	res, err := kernel.Run(ctx, a, agentapi.Restore, req, timeout, progress, 5, 60)
	if err != nil {
		err = s.damaged(ctx, err, "a restore")
		if kernel.IsClean(err) {
			return nil, err
		}
		return nil, fail(err)
	}
	accepted, err := s.accepted(ctx, res.Damaged)
	if err != nil {
		return nil, err
	}
	r.Success()
	if err := s.store.SetVMWorkState(ctx, vm.ID, ""); err != nil {
		return nil, err
	}
	if err := s.store.SetVMError(ctx, vm.ID, ""); err != nil {
		return nil, err
	}
	s.k.RefreshHost(ctx, vm.HostID)
	refreshed = true
	out := domain.BackupRestoreResult{VM: res.Name, Backup: b.ID, Disks: restoredDisks(res.Disks), Defined: res.Defined, Quick: o.Quick, Damaged: accepted}
	if o.Quick {
		crashpoint.Hit("restore.before-consolidate")
		out.Consolidated = boolPtr(s.ConsolidateWithRetries(ctx, a, vm.ID, root, verify, timeout, progress, 60, 100))
	}
	s.k.Log().Info("restore done", "vm", res.Name, "backup", b.ID, "quick", o.Quick)
	return out, nil
}

// ConsolidateWithRetries block-pulls the VM's disks off the backup storage
// at root ("": the storage the VM's disks read, found from the catalogue),
// retrying; when it cannot finish, the VM keeps running on its overlays and
// is marked so that `knib vm consolidate` can resume.
//
// The backup files the overlays read are checked against their recorded
// hashes first (verify; the zero Verify: found from the VM's own backups).
// A damaged one stops the consolidation at once: the VM is marked
// RestoreError and keeps running on its overlays, and the backup becomes
// NotValid.
func (s *Service) ConsolidateWithRetries(ctx context.Context, a agentapi.Agent, vmID, root string, verify agentapi.Verify, timeout time.Duration, progress kernel.Progress, from, to float64) bool {
	incomplete := func(err error) bool {
		if werr := s.store.SetVMError(ctx, vmID, "consolidation incomplete: the VM runs on overlays backed by backup files ("+err.Error()+"); run `knib vm consolidate` to resume"); werr != nil {
			s.k.Log().Warn("record an incomplete consolidation", "vm", vmID, "err", werr)
		}
		return false
	}
	if root == "" || len(verify.Files) == 0 {
		vm, err := s.store.VM(ctx, vmID)
		if err != nil {
			return incomplete(err)
		}
		if root == "" {
			if root = s.k.StorageOfVM(ctx, vm); root == "" {
				return true // nothing reads backup files
			}
		}
		if len(verify.Files) == 0 {
			if verify, err = s.verifyOfVM(ctx, vm, root); err != nil {
				return incomplete(err)
			}
		}
	}
	var lastErr error
	for attempt := 1; attempt <= consolidateAttempts; attempt++ {
		progress(from, fmt.Sprintf("consolidating (attempt %d)", attempt))
		req := agentapi.ConsolidateRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: vmID, Verify: verify}
		_, err := kernel.Run(ctx, a, agentapi.Consolidate, req, timeout, progress, from, to)
		if ds := kernel.DamageOf(err); len(ds) > 0 {
			if rerr := s.k.RecordDamage(ctx, ds, "the consolidation after a quick restore"); rerr != nil {
				s.k.Log().Warn("record damaged backup files", "err", rerr)
			}
			msg := "consolidation stopped: " + agentapi.Damages(ds) + "; the VM keeps running on its overlays over these files"
			if werr := s.store.SetVMError(ctx, vmID, msg); werr != nil {
				s.k.Log().Warn("record a stopped consolidation", "vm", vmID, "err", werr)
			}
			if werr := s.store.SetVMWorkState(ctx, vmID, domain.VMRestoreError); werr != nil {
				s.k.Log().Warn("record a stopped consolidation", "vm", vmID, "err", werr)
			}
			return false
		}
		if err == nil {
			if err := s.store.SetVMError(ctx, vmID, ""); err != nil {
				return incomplete(err)
			}
			// A consolidation an earlier damage stopped is done now.
			if vm, err := s.store.VM(ctx, vmID); err == nil && vm.WorkState == domain.VMRestoreError {
				if err := s.store.SetVMWorkState(ctx, vmID, ""); err != nil {
					return incomplete(err)
				}
			}
			if vm, err := s.store.VM(ctx, vmID); err == nil {
				s.k.RefreshHost(ctx, vm.HostID)
			}
			return true
		}
		lastErr = err
		s.k.Log().Warn("consolidation failed", "vm", vmID, "attempt", attempt, "err", err)
	}
	return incomplete(lastErr)
}

// Consolidate resumes the consolidation of a quick-restored VM.
func (s *Service) Consolidate(ctx context.Context, p domain.Principal, ref string) (domain.Operation, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return domain.Operation{}, err
	}
	return s.k.VMOperation(ctx, p, vm, "consolidation", "vm.consolidate", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		a, err := s.k.Agent(vm.HostID)
		if err != nil {
			return nil, err
		}
		if !s.ConsolidateWithRetries(ctx, a, vm.ID, "", agentapi.Verify{}, s.k.KnibTimeout(ctx, vm), progress, 0, 100) {
			return nil, fmt.Errorf("consolidation of %s did not finish; the VM keeps running on its overlays", vm.Name)
		}
		return domain.VMConsolidateResult{VM: vm.Name, Consolidated: true}, nil
	})
}

// RestoreVolume makes a new disk from one disk of a backup and attaches it
// to a VM, running or stopped, the same or another (seed:
// restoreVolumeFromBackupAndAttachToVM).
func (s *Service) RestoreVolume(ctx context.Context, p domain.Principal, id, disk, vmRef string, o RestoreOptions) (domain.Operation, error) {
	b, err := s.restorable(ctx, p, id, o)
	if err != nil {
		return domain.Operation{}, err
	}
	var file *domain.BackupFile
	for i := range b.Files {
		if b.Files[i].Disk == disk {
			file = &b.Files[i]
		}
	}
	if file == nil {
		return domain.Operation{}, domain.Invalid("disk", "backup %s has no disk %q", b.ID, disk)
	}
	vm, err := s.k.VM(ctx, p, vmRef)
	if err != nil {
		return domain.Operation{}, err
	}
	if vm.State == domain.VMMissing {
		return domain.Operation{}, fmt.Errorf("vm %s is not defined on its host: %w", vm.Name, domain.ErrConflict)
	}
	if vm.HostID != b.HostID && s.zoneOf(ctx, vm.HostID) != s.zoneOf(ctx, b.HostID) {
		return domain.Operation{}, fmt.Errorf("vm %s is in another zone than the backup's storage: %w", vm.Name, domain.ErrConflict)
	}
	// --host (the seed's restoreVolume row 6): a stopped VM starts on the
	// restored disk on that host of its zone.
	var moveTo *domain.Host
	if o.Host != "" {
		to, err := s.targetHost(ctx, o.Host, s.zoneOf(ctx, vm.HostID))
		if err != nil {
			return domain.Operation{}, err
		}
		if to.ID != vm.HostID {
			if !o.Quick {
				return domain.Operation{}, domain.Invalid("host", "--host applies to a quick restore, which starts the stopped VM on that host")
			}
			if vm.EffectiveState() != domain.VMStopped {
				return domain.Operation{}, fmt.Errorf("vm %s is %s; only a stopped VM starts on another host: %w", vm.Name, vm.EffectiveState(), domain.ErrConflict)
			}
			moveTo = &to
		}
	}
	return s.k.VMOperation(ctx, p, vm, "a volume restore", "backup.restore-volume", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		if moveTo != nil {
			return s.restoreVolumeOnto(ctx, vm, b, *file, disk, *moveTo, o, progress)
		}
		a, err := s.k.Agent(vm.HostID)
		if err != nil {
			return nil, err
		}
		timeout := s.k.KnibTimeout(ctx, vm)
		root, release, err := s.holdBackup(ctx, b)
		if err != nil {
			return nil, err
		}
		defer release()
		if err := s.fetch(ctx, a, root, b, o, timeout, progress); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("%s-%s-restore-%s", vm.Name, disk, b.ID[:8])
		verify, err := s.k.Verify(ctx, b, o.AcceptDamaged, disk)
		if err != nil {
			return nil, err
		}
		req := agentapi.RestoreVolumeRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: vm.ID, File: file.Path, Name: name, Quick: o.Quick,
			Verify: verify}
		res, err := kernel.Run(ctx, a, agentapi.RestoreVolume, req,
			timeout, progress, 0, 60)
		if err != nil {
			return nil, s.damaged(ctx, err, "a volume restore")
		}
		accepted, err := s.accepted(ctx, res.Damaged)
		if err != nil {
			return nil, err
		}
		out := domain.BackupRestoreVolumeResult{VM: vm.Name, Backup: b.ID, Disks: restoredDisks(res.Disks), Damaged: accepted,
			Started: res.Started && vm.EffectiveState() != domain.VMRunning}
		if o.Quick && res.Started {
			out.Consolidated = boolPtr(s.ConsolidateWithRetries(ctx, a, vm.ID, root, verify, timeout, progress, 60, 100))
		}
		s.k.RefreshHost(ctx, vm.HostID)
		return out, nil
	})
}

// restoreVolumeOnto is a quick volume restore that starts a stopped VM on
// another host of its zone: its definition (same uuid, same disks, which
// that host must see: shared primary storage) is defined there with the
// overlay attached, the VM starts there, its old definition goes, and the
// overlay is consolidated while it runs. The move is recorded first
// (store.VMMove): recovery rolls it forward when the target has the VM.
func (s *Service) restoreVolumeOnto(ctx context.Context, vm domain.VM, b domain.Backup, file domain.BackupFile, disk string, to domain.Host, o RestoreOptions, progress kernel.Progress) (domain.OpResult, error) {
	source, err := s.k.Agent(vm.HostID)
	if err != nil {
		return nil, err
	}
	target, err := s.k.Agent(to.ID)
	if err != nil {
		return nil, err
	}
	timeout := s.k.KnibTimeout(ctx, vm)
	def, err := kernel.Run(ctx, source, agentapi.Definition, agentapi.DefinitionRequest{DomainUUID: vm.ID}, timeout, nil, 0, 5)
	if err != nil {
		return nil, fmt.Errorf("read the VM's definition on host %s: %w", s.k.HostName(ctx, vm.HostID), err)
	}
	root, release, err := s.holdBackup(ctx, b)
	if err != nil {
		return nil, err
	}
	defer release()
	verify, err := s.k.Verify(ctx, b, o.AcceptDamaged, disk)
	if err != nil {
		return nil, err
	}
	m := store.VMMove{VMID: vm.ID, FromHost: vm.HostID, ToHost: to.ID, BackupID: b.ID, Quick: true, Created: s.k.Clock().Now()}
	if err := s.store.RecordVMMove(ctx, m); err != nil {
		return nil, err
	}
	r := revert.New(s.k.Log())
	defer r.Fail()
	r.Add("forget the move record", func() error { return s.store.FinishVMMove(context.WithoutCancel(ctx), vm.ID) })
	name := fmt.Sprintf("%s-%s-restore-%s", vm.Name, disk, b.ID[:8])
	req := agentapi.RestoreVolumeRequest{InStorage: agentapi.InStorage{Storage: root}, DomainUUID: vm.ID, File: file.Path, Name: name, Quick: true,
		Adopt: def.XML, Verify: verify}
	res, err := kernel.Run(ctx, target, agentapi.RestoreVolume, req, timeout, progress, 5, 60)
	if err != nil {
		err = s.damaged(ctx, err, "a volume restore onto another host")
		if kernel.IsClean(err) {
			return nil, err // nothing changed: the reverter takes the intent back
		}
		r.Success() // recovery decides: forward if the target has the VM
		return nil, s.restoreFailed(ctx, vm.ID, "volume restore of backup "+b.ID+" onto host "+to.Name+" failed: ", err)
	}
	r.Success()
	accepted, err := s.accepted(ctx, res.Damaged)
	if err != nil {
		return nil, err
	}
	if err := s.finishMove(ctx, m, vm.Name); err != nil {
		return nil, s.restoreFailed(ctx, vm.ID, "volume restore of backup "+b.ID+" onto host "+to.Name+": ", err)
	}
	out := domain.BackupRestoreVolumeResult{VM: vm.Name, Backup: b.ID, Disks: restoredDisks(res.Disks), Damaged: accepted, Host: to.Name, Started: res.Started}
	out.Consolidated = boolPtr(s.ConsolidateWithRetries(ctx, target, vm.ID, root, verify, timeout, progress, 60, 100))
	s.k.Log().Info("volume restored; the VM runs on another host", "vm", vm.Name, "backup", b.ID, "host", to.Name)
	return out, nil
}

var (
	vmNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	namespaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)
)

// UserVMName is the name of a VM that a user (not an admin) creates: it
// lives in the account's namespace, ACCOUNT.NAME, so that names never
// collide across accounts and a refusal reveals nothing about another
// account's VMs (libvirt names are unique per host, so without a namespace
// "name taken" would tell one tenant what another named its VM). A name
// that already carries the prefix is kept. Admins name VMs freely.
func UserVMName(p domain.Principal, name string) (string, error) {
	if p.IsAdmin() {
		return name, nil
	}
	if !namespaceRE.MatchString(p.AccountName) {
		return "", domain.Invalid("name", "account %q cannot prefix VM names (letters, digits, dashes and underscores only); ask an admin to create the VM", p.AccountName)
	}
	prefix := p.AccountName + "."
	if !strings.HasPrefix(name, prefix) {
		name = prefix + name
	}
	if !vmNameRE.MatchString(name) {
		return "", domain.Invalid("name", "%q is too long with the account prefix (at most 64 characters)", name)
	}
	return name, nil
}

// CreateVMFromBackup defines a new VM from a backup with a new name, uuid,
// MAC addresses and disk files; the original VM is untouched (seed:
// createVMFromBackup).
func (s *Service) CreateVMFromBackup(ctx context.Context, p domain.Principal, id, name string, o RestoreOptions, start bool) (domain.Operation, error) {
	b, err := s.restorable(ctx, p, id, o)
	if err != nil {
		return domain.Operation{}, err
	}
	if !vmNameRE.MatchString(name) {
		return domain.Operation{}, domain.Invalid("name", "want 1 to 64 letters, digits, dots, dashes or underscores, got %q", name)
	}
	if name, err = UserVMName(p, name); err != nil {
		return domain.Operation{}, err
	}
	s.k.RefreshHost(ctx, b.HostID)
	if old, err := s.store.VM(ctx, name); err == nil && old.State != domain.VMMissing {
		return domain.Operation{}, fmt.Errorf("a VM named %s exists already: %w", name, domain.ErrConflict)
	}
	hostID := b.HostID
	if o.Host != "" {
		to, err := s.targetHost(ctx, o.Host, s.zoneOf(ctx, b.HostID))
		if err != nil {
			return domain.Operation{}, err
		}
		hostID = to.ID
	}
	return s.k.Start(ctx, p, "backup.create-vm", "", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		a, err := s.k.Agent(hostID)
		if err != nil {
			return nil, err
		}
		h, err := s.store.Host(ctx, hostID)
		if err != nil {
			return nil, err
		}
		view, err := s.k.Settings(ctx, settings.Target{Host: h.ID, Zone: h.ZoneID, Account: b.AccountID})
		if err != nil {
			return nil, err
		}
		timeout := view.Duration(settings.KeyKnibTimeout)
		root, release, err := s.holdBackup(ctx, b)
		if err != nil {
			return nil, err
		}
		defer release()
		if err := s.fetch(ctx, a, root, b, o, timeout, progress); err != nil {
			return nil, err
		}
		verify, err := s.k.Verify(ctx, b, o.AcceptDamaged)
		if err != nil {
			return nil, err
		}
		res, err := kernel.Run(ctx, a, agentapi.CreateVM, agentapi.CreateVMRequest{InStorage: agentapi.InStorage{Storage: root}, Dir: b.Dir,
			Files: kernel.RestoreFiles(b), Name: name, Quick: o.Quick, Start: start, OwnDiskDir: hostID != b.HostID, Verify: verify},
			timeout, progress, 0, 60)
		if err != nil {
			return nil, s.damaged(ctx, err, "a create-vm")
		}
		accepted, err := s.accepted(ctx, res.Damaged)
		if err != nil {
			return nil, err
		}
		s.k.RefreshHost(ctx, hostID)
		owner := b.AccountID
		if !p.IsAdmin() {
			owner = p.AccountID
		}
		if err := s.store.SetVMOwner(ctx, res.UUID, owner); err != nil {
			s.k.Log().Warn("owner of the new VM", "vm", name, "err", err)
		}
		out := domain.BackupCreateVMResult{VM: name, ID: res.UUID, Backup: b.ID, Disks: restoredDisks(res.Disks), Started: res.Started, Damaged: accepted}
		if o.Quick {
			release, err := s.holdNewVM(ctx, res.UUID, name)
			if err != nil {
				return nil, fmt.Errorf("the new VM %s runs on overlays over the backup files; run `knib vm consolidate %s`: %w", name, name, err)
			}
			out.Consolidated = boolPtr(s.ConsolidateWithRetries(ctx, a, res.UUID, root, verify, timeout, progress, 60, 100))
			release()
		}
		return out, nil
	})
}

// holdNewVM holds a VM that create-vm made on overlays while it is
// consolidated, as every other restore holds its VM: recovery resumes the
// consolidation of a quick-restored VM that nobody holds, and two block
// pulls of one disk at once fail. While recovery holds it (it consolidates
// it then), holdNewVM waits; the consolidation that follows finds nothing
// left to pull. A VM the catalogue does not have (its host's refresh
// failed) is consolidated without a hold, as before.
func (s *Service) holdNewVM(ctx context.Context, id, name string) (func(), error) {
	for {
		release, err := s.k.LockVM(ctx, domain.VM{ID: id, Name: name}, "consolidation of a new VM")
		switch {
		case err == nil:
			return release, nil
		case errors.Is(err, domain.ErrNotFound):
			s.k.Log().Warn("new VM not in the catalogue yet; consolidating it without a hold", "vm", name)
			return func() {}, nil
		case !errors.Is(err, domain.ErrConflict):
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for vm %s: %w", name, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}
