package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/fileperm"
	"github.com/knib/knib/internal/guestagent"
	"github.com/knib/knib/internal/hypervisor"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/qemuimg"
	"github.com/knib/knib/internal/settings"
)

// Config is what an agent needs to know about its host.
type Config struct {
	// Name is the host name the agent registers under.
	Name string
	// StoragePath is the backup storage directory as mounted on this host.
	StoragePath string
	// PropertiesFile is the agent configuration file; absent is fine.
	PropertiesFile string
	// DiskDir is where this host puts the disks of VMs restored here from
	// another host (DefaultDiskDir when empty): <DiskDir>/<vm uuid>/.
	DiskDir string
}

// Hypervisor is what the agent needs from the local hypervisor.
type Hypervisor interface {
	hypervisor.Hypervisor
	hypervisor.ChainOps
	hypervisor.Transient
	hypervisor.Watcher
}

// Local runs agent commands in this process.
type Local struct {
	cfg   Config
	hv    Hypervisor
	img   *qemuimg.Tool
	ga    *guestagent.Client
	log   *slog.Logger
	tasks *taskTable
	clk   clock.Clock
	// changes follows the host's domain events (changes.go).
	changes *changes
	// perm: the modes and QEMU group of what the agent writes (perms.go);
	// permErr says why the group is unknown.
	perm    fileperm.Perms
	permErr error
	secured storageGuard
	// files: the helpers that read backups' file systems (files.go).
	files *fileHelpers
	// openBucket opens remotes' buckets (offsite.go; nil: the S3 adapter).
	openBucket offsite.Opener
	// teardowns: validation VMs being destroyed after their verdict
	// (validation.go).
	teardowns validationTeardowns
}

var _ agentapi.Agent = (*Local)(nil)

// NewLocal returns an agent driving hv. It does not take ownership of hv.
func NewLocal(cfg Config, hv Hypervisor, log *slog.Logger) *Local {
	a := &Local{cfg: cfg, hv: hv, img: qemuimg.Default, ga: guestagent.New(hv), log: log, tasks: newTaskTable(), clk: clock.Real{},
		secured: storageGuard{roots: map[string]func() error{}}}
	a.perm, a.permErr = fileperm.Host()
	handle(a, agentapi.TakeBackup, a.takeBackup)
	handle(a, agentapi.Reconcile, a.reconcile)
	handle(a, agentapi.MergeBackup, a.mergeBackupTask)
	handle(a, agentapi.DeleteFiles, a.deleteFiles)
	handle(a, agentapi.Restore, a.restore)
	handle(a, agentapi.RestoreVolume, a.restoreVolume)
	handle(a, agentapi.CreateVM, a.createVM)
	handle(a, agentapi.Definition, a.definition)
	handle(a, agentapi.Consolidate, a.consolidate)
	handle(a, agentapi.AttachDisk, a.attachDisk)
	handle(a, agentapi.DetachDisk, a.detachDisk)
	handle(a, agentapi.SnapshotCreate, a.snapshotCreate)
	handle(a, agentapi.SnapshotRevert, a.snapshotRevert)
	handle(a, agentapi.SnapshotDelete, a.snapshotDelete)
	handle(a, agentapi.Compress, a.compress)
	handle(a, agentapi.FinalizeCompression, a.finalizeCompression)
	handle(a, agentapi.Validate, a.validate)
	handle(a, agentapi.Hash, a.hashFiles)
	handle(a, agentapi.CleanupValidation, a.cleanupValidation)
	handle(a, agentapi.RestoreHere, a.restoreHere)
	handle(a, agentapi.Undefine, a.undefine)
	handle(a, agentapi.StorageStat, a.statStorage)
	handle(a, agentapi.StorageCopy, a.copyStorage)
	handle(a, agentapi.RestoreFiles, a.restoreFiles)
	handle(a, agentapi.OffsitePut, a.offsitePut)
	handle(a, agentapi.OffsiteGet, a.offsiteGet)
	a.files = newFileHelpers(a.clk, cfg.Name, cfg.StoragePath)
	a.changes = newChanges()
	return a
}

// Close stops running tasks and waits for them, and ends the watch of
// domain events (waiting WaitInventoryChange calls return).
func (a *Local) Close() {
	a.changes.close()
	a.tasks.closeAll()
	a.teardowns.waitAll()
	a.files.closeAll()
}

// HostReport describes this host.
func (a *Local) HostReport(ctx context.Context) (agentapi.HostReport, error) {
	info, err := a.hv.HostInfo(ctx)
	if err != nil {
		return agentapi.HostReport{}, fmt.Errorf("host info: %w", err)
	}
	props, err := a.properties()
	if err != nil {
		return agentapi.HostReport{}, err
	}
	r := agentapi.HostReport{
		Name:              a.cfg.Name,
		URI:               info.URI,
		LibvirtVersion:    info.LibvirtVersion,
		HypervisorVersion: info.HypervisorVersion,
		CPUs:              info.CPUs,
		MemoryBytes:       info.MemoryBytes,
		StoragePath:       a.cfg.StoragePath,
		Settings:          props,
	}
	if r.Name == "" {
		r.Name = info.Hostname
	}
	if a.cfg.StoragePath != "" {
		var st syscall.Statfs_t
		if err := syscall.Statfs(a.cfg.StoragePath, &st); err != nil {
			return r, fmt.Errorf("backup storage %s: %w", a.cfg.StoragePath, err)
		}
		r.StorageCapacity = st.Blocks * uint64(st.Bsize)
		r.StorageFree = st.Bavail * uint64(st.Bsize)
	}
	return r, nil
}

func (a *Local) properties() (map[string]string, error) {
	if a.cfg.PropertiesFile == "" {
		return map[string]string{}, nil
	}
	f, err := os.Open(a.cfg.PropertiesFile)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props, err := settings.ParseProperties(f)
	if err != nil {
		return nil, fmt.Errorf("agent configuration %s: %w", a.cfg.PropertiesFile, err)
	}
	return props, nil
}

// Inventory lists the host's domains.
func (a *Local) Inventory(ctx context.Context) ([]agentapi.Domain, error) {
	doms, err := a.hv.ListDomains(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	out := make([]agentapi.Domain, 0, len(doms))
	for _, d := range doms {
		out = append(out, domainToAPI(d))
	}
	return out, nil
}

// Domain reads one of the host's domains.
func (a *Local) Domain(ctx context.Context, uuid string) (agentapi.Domain, error) {
	d, err := a.hv.Domain(ctx, uuid)
	if errors.Is(err, hypervisor.ErrDomainNotFound) {
		return agentapi.Domain{}, fmt.Errorf("domain %s: %w", uuid, agentapi.ErrUnknownDomain)
	}
	if err != nil {
		return agentapi.Domain{}, fmt.Errorf("domain %s: %w", uuid, err)
	}
	return domainToAPI(d), nil
}

func domainToAPI(d hypervisor.Domain) agentapi.Domain {
	ad := agentapi.Domain{UUID: d.UUID, Name: d.Name, State: string(d.State), VCPUs: d.VCPUs, MemoryBytes: d.MemoryBytes, Disks: []agentapi.Disk{}}
	for _, k := range d.Disks {
		disk := agentapi.Disk{Target: k.Target, Device: k.Device, Bus: k.Bus, SourceType: k.SourceType, Source: k.Source,
			Format: k.Format, VirtualSize: k.VirtualSize, BackingChain: []agentapi.Layer{}, Problem: k.Problem}
		for _, l := range k.BackingChain {
			disk.BackingChain = append(disk.BackingChain, agentapi.Layer{Path: l.Path, Format: l.Format})
		}
		ad.Disks = append(ad.Disks, disk)
	}
	for _, sn := range d.Snapshots {
		ad.Snapshots = append(ad.Snapshots, agentapi.ForeignSnapshot{Name: sn.Name, Memory: sn.Memory, DiskOnly: sn.DiskOnly})
	}
	return ad
}

// GuestExec runs a program in the guest through its guest agent.
func (a *Local) GuestExec(ctx context.Context, req agentapi.GuestExecRequest) (agentapi.GuestExecResult, error) {
	if req.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, req.Timeout)
		defer cancel()
	}
	if _, err := a.hv.Domain(ctx, req.DomainUUID); err != nil {
		if errors.Is(err, hypervisor.ErrDomainNotFound) {
			return agentapi.GuestExecResult{}, fmt.Errorf("domain %s: %w", req.DomainUUID, agentapi.ErrUnknownDomain)
		}
		return agentapi.GuestExecResult{}, err
	}
	res, err := a.ga.Exec(ctx, req.DomainUUID, guestagent.ExecRequest{Path: req.Path, Args: req.Args, Input: req.Input})
	if err != nil {
		return agentapi.GuestExecResult{}, fmt.Errorf("guest exec %s: %w", req.Path, err)
	}
	return agentapi.GuestExecResult{ExitCode: res.ExitCode, Signal: res.Signal, Stdout: res.Stdout, Stderr: res.Stderr}, nil
}

// StartTask starts a registered long task (idempotent by id).
func (a *Local) StartTask(ctx context.Context, t agentapi.Task) error {
	return a.tasks.start(t, a.log)
}

// TaskStatus reports a task.
func (a *Local) TaskStatus(ctx context.Context, id string) (agentapi.TaskStatus, error) {
	return a.tasks.status(id)
}

// WaitTask implements agentapi.TaskWaiter.
func (a *Local) WaitTask(ctx context.Context, id string, last agentapi.TaskStatus) (agentapi.TaskStatus, error) {
	return a.tasks.waitChange(ctx, id, last)
}

var _ agentapi.TaskWaiter = (*Local)(nil)

// CancelTask cancels a running task.
func (a *Local) CancelTask(ctx context.Context, id string) error { return a.tasks.cancel(id) }

// defaultTaskDeadline bounds tasks whose request carries no deadline.
const defaultTaskDeadline = 12 * time.Hour

// now reads the agent's clock (the real one unless a test set another).
func (a *Local) now() time.Time {
	if a.clk == nil {
		return clock.Real{}.Now()
	}
	return a.clk.Now()
}

// since is the time elapsed since t on the agent's clock.
func (a *Local) since(t time.Time) time.Duration { return a.now().Sub(t) }
