package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/fileperm"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/qemuimg"
)

// cleanError marks a failure that changed nothing on any disk.
type cleanError struct{ error }

func (e cleanError) Unwrap() error { return e.error }

func (a *Local) takeBackup(ctx context.Context, req agentapi.TakeBackupRequest, progress func(float64, string)) (any, error) {
	dir, err := inStorage(req.Storage, req.Dir)
	if err != nil {
		return nil, cleanError{err}
	}
	// The agent names the deltas it creates on primary storage.
	for i, d := range req.Disks {
		if d.NewDelta == "" {
			req.Disks[i].NewDelta = DeltaPath(d.Frozen, req.DomainUUID, d.Target, req.BackupID)
		}
	}
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, cleanError{err}
	}
	running := dom.State == hypervisor.StateRunning
	res := agentapi.TakeBackupResult{}

	// 1. Snapshot: a new delta on top of every disk.
	progress(2, "creating the new deltas")
	res.Phases = map[string]time.Duration{}
	began := a.now()
	freeze, err := a.snapshot(ctx, dom, req, running)
	if err != nil {
		return nil, err
	}
	res.Freeze = freeze
	res.Phases[agentapi.PhaseSnapshot] = a.since(began)
	crashpoint.Hit("backup.after-snapshot")

	// 2. Copy the frozen layers to backup storage.
	if err := a.perm.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("backup directory: %w", err)
	}
	began = a.now()
	var fsync time.Duration
	for i, d := range req.Disks {
		progress(5+80*float64(i)/float64(len(req.Disks)), "copying "+d.Target)
		f, err := a.copyDisk(ctx, req, d, dir, &fsync)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", d.Target, err)
		}
		res.Files = append(res.Files, f)
	}
	res.Phases[agentapi.PhaseCopy] = a.since(began) - fsync
	res.Phases[agentapi.PhaseFsync] = fsync
	progress(86, "saving the domain definition")
	if err := a.saveDomainFiles(ctx, req, dir, res.Files, baseDisks(dom, req)); err != nil {
		return nil, err
	}

	if !req.DeferMerge {
		merged, err := a.mergeBackup(ctx, agentapi.MergeBackupRequestOf(req), running, progress)
		if err != nil {
			return nil, err
		}
		res.Phases[agentapi.PhaseMerge] = merged
	}
	chains, err := a.chains(ctx, req.DomainUUID)
	if err != nil {
		return nil, err
	}
	res.Chains = chains
	after, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, err
	}
	res.Domain = domainToAPI(after)
	return res, nil
}

// mergeBackupTask runs the merges a committed backup left to do
// (agentapi.MergeBackup).
func (a *Local) mergeBackupTask(ctx context.Context, req agentapi.MergeBackupRequest, progress func(float64, string)) (any, error) {
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, err
	}
	if req.ResumePaused && dom.State == hypervisor.StatePaused {
		// The merge paused the VM on the host it left (a flush) and could
		// not resume it there: it runs again, then the merge goes on live.
		a.log.Info("resuming a VM a merge's flush left paused on the host it left", "vm", dom.Name)
		if err := a.hv.ResumeDomain(ctx, dom.UUID); err != nil {
			return nil, err
		}
		if dom, err = a.hv.Domain(ctx, req.DomainUUID); err != nil {
			return nil, err
		}
	}
	running := dom.State == hypervisor.StateRunning
	took, err := a.mergeBackup(ctx, req, running, progress)
	if err != nil && running {
		// The merge follows the backup, so the VM may be stopped outside
		// knib meanwhile: the merge goes on without QEMU (every step
		// checks the real chain first).
		if now, derr := a.hv.Domain(ctx, req.DomainUUID); derr == nil && now.State != hypervisor.StateRunning && now.State != hypervisor.StatePaused {
			a.log.Info("the VM stopped during the merge; merging offline", "vm", req.DomainUUID, "err", err)
			took, err = a.mergeBackup(ctx, req, false, progress)
		}
	}
	if err != nil {
		return nil, err
	}
	res := agentapi.MergeBackupResult{Merge: took}
	if res.Chains, err = a.chains(ctx, req.DomainUUID); err != nil {
		return nil, err
	}
	after, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return nil, err
	}
	res.Domain = domainToAPI(after)
	return res, nil
}

// mergeBackup merges the previous deltas (one delta per disk remains), then
// the new ones too at the end of a chain or for an isolated backup, and
// removes left-over deltas. Idempotent: every merge checks the real chain.
func (a *Local) mergeBackup(ctx context.Context, req agentapi.MergeBackupRequest, running bool, progress func(float64, string)) (time.Duration, error) {
	crashpoint.Hit("backup.before-merge")
	began := a.now()
	dom, err := a.hv.Domain(ctx, req.DomainUUID)
	if err != nil {
		return 0, err
	}
	others := req.Others
	branches, err := a.otherBranches(ctx, dom, others)
	if err != nil {
		return 0, err
	}
	for _, d := range req.Disks {
		if d.MergeInto == "" {
			continue
		}
		progress(90, "merging the previous delta of "+d.Target)
		if err := a.mergeLayer(ctx, req.DomainUUID, d.Target, d.Delta, d.MergeInto, running); err != nil {
			return 0, fmt.Errorf("merge previous delta of %s: %w", d.Target, err)
		}
		if err := a.rebaseBranches(ctx, branches, d.Delta, d.MergeInto); err != nil {
			return 0, err
		}
	}
	// End of chain or isolated: merge the new delta back as well.
	if req.MergeNewDelta {
		for _, d := range req.Disks {
			progress(95, "merging the new delta of "+d.Target)
			if err := a.mergeTop(ctx, req.DomainUUID, d.Target, d.NewDelta, d.NewDeltaBase(), running); err != nil {
				return 0, fmt.Errorf("merge new delta of %s: %w", d.Target, err)
			}
		}
	}
	took := a.since(began)
	// Deltas of earlier backups that left the chain outside knib (disk moved,
	// replaced or reverted) are left-overs now.
	var dirs []string
	for _, d := range req.Disks {
		dirs = append(dirs, filepath.Dir(d.Frozen))
	}
	if removed, err := a.removeUnreferenced(ctx, req.DomainUUID, others, dirs); err == nil && len(removed) > 0 {
		a.log.Info("removed left-over deltas", "vm", req.DomainUUID, "files", removed)
	}
	return took, nil
}

// snapshot puts NewDelta on top of every disk, unless that happened already.
func (a *Local) snapshot(ctx context.Context, dom hypervisor.Domain, req agentapi.TakeBackupRequest, running bool) (time.Duration, error) {
	tops := map[string]string{}
	formats := map[string]string{}
	for _, d := range dom.Disks {
		tops[d.Target], formats[d.Target] = d.Source, d.Format
	}
	done := 0
	for _, d := range req.Disks {
		switch tops[d.Target] {
		case d.NewDelta:
			done++
		case d.Frozen:
		default:
			return 0, cleanError{fmt.Errorf("disk %s: top is %q, planned %q: the chain changed since the backup was planned", d.Target, tops[d.Target], d.Frozen)}
		}
	}
	if done == len(req.Disks) {
		return 0, nil
	}
	if done != 0 {
		return 0, fmt.Errorf("only %d of %d disks have their new delta", done, len(req.Disks))
	}
	if running {
		// The new deltas are created first: the snapshot (and the file
		// system freeze of a quiesced one) then only switches the disks
		// over to them.
		snaps := make([]hypervisor.DiskSnapshot, 0, len(req.Disks))
		removeAll := func() {
			for _, c := range req.Disks {
				os.Remove(c.NewDelta)
			}
		}
		for _, d := range req.Disks {
			err := a.img.Create(ctx, d.NewDelta, "qcow2", 0, &qemuimg.Backing{Path: d.Frozen, Format: formats[d.Target]})
			if err == nil {
				err = a.perm.Disk(d.NewDelta)
			}
			if err != nil {
				removeAll()
				return 0, cleanError{fmt.Errorf("create delta for %s: %w", d.Target, err)}
			}
			snaps = append(snaps, hypervisor.DiskSnapshot{Target: d.Target, File: d.NewDelta, Reuse: true})
		}
		if ts, ok := a.hv.(hypervisor.TimedSnapshotter); ok {
			// The hypervisor times its snapshot call alone.
			took, err := ts.SnapshotDisksTimed(ctx, req.DomainUUID, snaps, req.Quiesce)
			if err != nil {
				removeAll()
				return 0, cleanError{fmt.Errorf("disk-only snapshot: %w", err)}
			}
			return took, nil
		}
		start := a.now()
		if err := a.hv.SnapshotDisks(ctx, req.DomainUUID, snaps, req.Quiesce); err != nil {
			removeAll()
			return 0, cleanError{fmt.Errorf("disk-only snapshot: %w", err)}
		}
		return a.since(start), nil
	}
	// Stopped VM: create the overlays with qemu-img and point the domain at them.
	sources := map[string]hypervisor.Layer{}
	for _, d := range req.Disks {
		err := a.img.Create(ctx, d.NewDelta, "qcow2", 0, &qemuimg.Backing{Path: d.Frozen, Format: formats[d.Target]})
		if err == nil {
			err = a.perm.Disk(d.NewDelta)
		}
		if err != nil {
			for _, c := range req.Disks {
				os.Remove(c.NewDelta)
			}
			return 0, cleanError{fmt.Errorf("create delta for %s: %w", d.Target, err)}
		}
		sources[d.Target] = hypervisor.Layer{Path: d.NewDelta, Format: "qcow2"}
	}
	if err := a.hv.SetDiskSources(ctx, req.DomainUUID, sources); err != nil {
		for _, c := range req.Disks {
			os.Remove(c.NewDelta)
		}
		return 0, cleanError{fmt.Errorf("point the domain at the new deltas: %w", err)}
	}
	return 0, nil
}

// copyDisk writes the backup file of one disk (idempotent: a finished file is
// kept) and hashes it.
func (a *Local) copyDisk(ctx context.Context, req agentapi.TakeBackupRequest, d agentapi.BackupDiskPlan, dir string, fsync *time.Duration) (agentapi.BackupFile, error) {
	rel := filepath.Join(req.Dir, d.Target+".qcow2")
	dst := filepath.Join(dir, d.Target+".qcow2")
	f := agentapi.BackupFile{Disk: d.Target, Path: rel, Full: d.Full}
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		part := dst + ".part"
		os.Remove(part)
		if d.Full {
			err := a.img.Convert(ctx, qemuimg.ConvertOptions{Src: d.Frozen, Dst: part, DstFormat: "qcow2", ForceShare: true,
				DstCache: "unsafe", OutOfOrder: true}) // synced once below
			if err != nil {
				os.Remove(part)
				return f, err
			}
		} else {
			parent, err := inStorage(req.Storage, d.ParentFile)
			if err != nil {
				return f, err
			}
			// A relative backing path resolves wherever the storage is mounted.
			relParent, err := filepath.Rel(dir, parent)
			if err != nil {
				return f, err
			}
			layers := d.Layers
			if len(layers) == 0 {
				layers = []string{d.Frozen}
			}
			if err := a.copyLayers(ctx, layers, relParent, part); err != nil {
				os.Remove(part)
				return f, err
			}
		}
		crashpoint.Hit("backup.during-copy")
		if err := a.perm.File(part); err != nil {
			os.Remove(part)
			return f, err
		}
		// The file is complete: it is hashed and inspected while it is
		// synced (one fsync per file; the hash reads the page cache).
		var wg sync.WaitGroup
		var hashErr, infoErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Hash, hashErr = HashFile(part)
			if hashErr == nil {
				f.VirtualSize, infoErr = a.virtualSize(ctx, part)
			}
		}()
		synced := a.now()
		err := syncFile(part)
		*fsync += a.since(synced)
		wg.Wait()
		if err = errors.Join(err, hashErr, infoErr); err != nil {
			return f, err
		}
		if err := os.Rename(part, dst); err != nil {
			return f, err
		}
		st, err := os.Stat(dst)
		if err != nil {
			return f, err
		}
		f.Size = st.Size()
		return f, nil
	} else if err != nil {
		return f, err
	}
	// A file finished by an earlier attempt.
	var err error
	if f.VirtualSize, err = a.virtualSize(ctx, dst); err != nil {
		return f, err
	}
	st, err := os.Stat(dst)
	if err != nil {
		return f, err
	}
	f.Size = st.Size()
	if f.Hash, err = HashFile(dst); err != nil {
		return f, err
	}
	return f, nil
}

// virtualSize is the guest-visible size of an image.
func (a *Local) virtualSize(ctx context.Context, path string) (int64, error) {
	info, err := a.img.Info(ctx, path, qemuimg.InfoOptions{})
	if err != nil || len(info) == 0 {
		return 0, err
	}
	return info[0].VirtualSize, nil
}

func syncFile(path string) error {
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	return fh.Sync()
}

// Manifest is the manifest.json stored with every backup, so that backup
// storage can be read without the database.
type Manifest struct {
	BackupID string                `json:"backup_id"`
	VMUUID   string                `json:"vm_uuid"`
	Files    []agentapi.BackupFile `json:"files"`
	// Parents maps each incremental file to its parent file (relative paths).
	Parents   map[string]string `json:"parents"`
	BootFiles []string          `json:"boot_files"`
	// Disks are the VM's disk files below knib's deltas at backup time: where
	// a restore writes by default.
	Disks   []ManifestDisk `json:"disks"`
	Created time.Time      `json:"created"`
}

// ManifestDisk is one disk's own file (below any knib delta) at backup time.
type ManifestDisk struct {
	Target string `json:"target"`
	Bus    string `json:"bus"`
	Path   string `json:"path"`
	Format string `json:"format"`
}

// baseDisks returns each backed-up disk's first file that is not a knib delta.
func baseDisks(dom hypervisor.Domain, req agentapi.TakeBackupRequest) []ManifestDisk {
	want := map[string]bool{}
	for _, d := range req.Disks {
		want[d.Target] = true
	}
	var out []ManifestDisk
	for _, d := range dom.Disks {
		if !want[d.Target] {
			continue
		}
		for _, l := range append([]hypervisor.Layer{{Path: d.Source, Format: d.Format}}, d.BackingChain...) {
			if !isDeltaOf(l.Path, dom.UUID) {
				out = append(out, ManifestDisk{Target: d.Target, Bus: d.Bus, Path: l.Path, Format: l.Format})
				break
			}
		}
	}
	return out
}

// saveDomainFiles writes domain.xml, the boot files it names and the manifest.
func (a *Local) saveDomainFiles(ctx context.Context, req agentapi.TakeBackupRequest, dir string, files []agentapi.BackupFile, disks []ManifestDisk) error {
	xml, err := a.hv.DomainXML(ctx, req.DomainUUID, true)
	if err != nil {
		return fmt.Errorf("domain XML: %w", err)
	}
	if err := a.writeFileAtomic(filepath.Join(dir, "domain.xml"), []byte(xml)); err != nil {
		return err
	}
	boot, err := a.hv.BootFiles(ctx, req.DomainUUID)
	if err != nil {
		return err
	}
	m := Manifest{BackupID: req.BackupID, VMUUID: req.DomainUUID, Files: files, Parents: map[string]string{}, Disks: disks, Created: a.now().UTC()}
	if len(boot) > 0 {
		if err := a.perm.MkdirAll(filepath.Join(dir, "boot")); err != nil {
			return err
		}
	}
	for _, b := range boot {
		dst := filepath.Join(dir, "boot", filepath.Base(b))
		if err := a.copyFile(b, dst, fileperm.FileMode); err != nil {
			return fmt.Errorf("boot file %s: %w", b, err)
		}
		m.BootFiles = append(m.BootFiles, filepath.Join(req.Dir, "boot", filepath.Base(b)))
	}
	for _, d := range req.Disks {
		if !d.Full {
			m.Parents[filepath.Join(req.Dir, d.Target+".qcow2")] = d.ParentFile
		}
	}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return a.writeFileAtomic(filepath.Join(dir, "manifest.json"), append(raw, '\n'))
}

// chains reports each disk's top and the file below it.
func (a *Local) chains(ctx context.Context, uuid string) ([]agentapi.DiskChain, error) {
	dom, err := a.hv.Domain(ctx, uuid)
	if err != nil {
		return nil, err
	}
	var out []agentapi.DiskChain
	for _, d := range dom.Disks {
		c := agentapi.DiskChain{Target: d.Target, Top: d.Source}
		if len(d.BackingChain) > 0 {
			c.Base = d.BackingChain[0].Path
		}
		out = append(out, c)
	}
	return out, nil
}

// isDeltaOf reports whether path is a knib delta of the VM.
func isDeltaOf(path, uuid string) bool {
	return strings.HasPrefix(filepath.Base(path), agentapi.DeltaPrefix+uuid+".")
}

// copyLayers writes the writes held by layers (top to bottom) as one qcow2
// file whose backing file is parent. With one layer it is one convert; with
// VM snapshot overlays above the delta, each layer is converted on top of the
// previous one and the pieces are committed into the bottom one.
func (a *Local) copyLayers(ctx context.Context, layers []string, parent, dst string) error {
	var pieces []string
	defer func() {
		for _, p := range pieces[min(1, len(pieces)):] {
			os.Remove(p)
		}
	}()
	backing := parent
	for i := len(layers) - 1; i >= 0; i-- {
		piece := dst
		if i < len(layers)-1 {
			piece = fmt.Sprintf("%s.%d", dst, i)
		}
		// No flush here: the backup file is synced once when it is complete.
		err := a.img.Convert(ctx, qemuimg.ConvertOptions{Src: layers[i], Dst: piece, DstFormat: "qcow2", ForceShare: true,
			BackingFile: backing, BackingFormat: "qcow2", DstCache: "unsafe", OutOfOrder: true})
		if err != nil {
			return err
		}
		pieces = append(pieces, piece)
		backing = filepath.Base(piece)
	}
	if len(pieces) > 1 {
		if err := a.img.Commit(ctx, pieces[len(pieces)-1], pieces[0], false); err != nil {
			return fmt.Errorf("collapse the snapshot layers: %w", err)
		}
	}
	return nil
}

// otherBranches maps each file to the files of other branches (VM snapshot
// chains off the current chains) backed by it. It is computed before any
// merge, while every backing file still exists.
func (a *Local) otherBranches(ctx context.Context, dom hypervisor.Domain, others []string) (map[string][]string, error) {
	if len(others) == 0 {
		return nil, nil
	}
	parent, err := a.graph(ctx, dom, others)
	if err != nil {
		return nil, err
	}
	onCurrent := map[string]bool{}
	for _, d := range dom.Disks {
		for _, p := range append([]string{d.Source}, layerPaths(d)...) {
			onCurrent[p] = true
		}
	}
	out := map[string][]string{}
	for f, p := range parent {
		if p != "" && !onCurrent[f] {
			out[p] = append(out[p], f)
		}
	}
	return out, nil
}

// rebaseBranches points the other-branch files that were backed by from at
// to (their content is unchanged: from was merged into to).
func (a *Local) rebaseBranches(ctx context.Context, branches map[string][]string, from, to string) error {
	kids := branches[from]
	if len(kids) == 0 {
		return nil
	}
	infos, err := a.img.Info(ctx, to, qemuimg.InfoOptions{ForceShare: true})
	if err != nil || len(infos) == 0 {
		return fmt.Errorf("inspect %s: %w", to, err)
	}
	for _, k := range kids {
		if err := a.img.Rebase(ctx, k, to, infos[0].Format, true); err != nil {
			return fmt.Errorf("rebase %s onto %s: %w", k, to, err)
		}
	}
	branches[to] = append(branches[to], kids...)
	delete(branches, from)
	return nil
}

// DeltaPath is the file of the delta a backup puts on a disk, next to the
// disk's current top: knib-delta.<vm uuid>.<disk>.<backup id>.qcow2. The name
// alone tells recovery which VM and backup a left-over file belongs to.
func DeltaPath(frozen, vmUUID, target, backupID string) string {
	return filepath.Join(filepath.Dir(frozen), agentapi.DeltaPrefix+vmUUID+"."+target+"."+backupID+".qcow2")
}
