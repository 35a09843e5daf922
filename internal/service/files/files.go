package files

import (
	"context"
	"fmt"
	"io"
	"regexp"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
)

// Service is file-level restore.
type Service struct {
	k     *kernel.Kernel
	store Store
}

// New returns the service.
func New(k *kernel.Kernel, st Store) *Service { return &Service{k: k, store: st} }

// source is a readable backup, the host whose agent reads it, and the
// request part that names it.
type source struct {
	b     domain.Backup
	host  domain.Host
	agent agentapi.Agent
	src   agentapi.FileSource
}

// open checks that p may read backup id's files and picks the host: the
// backup's own, else any enabled host of its zone with a connected agent
// (its VM may be gone, its host too).
func (s *Service) open(ctx context.Context, p domain.Principal, id string) (source, error) {
	b, err := s.k.Backup(ctx, p, id)
	if err != nil {
		return source{}, err
	}
	if b.Status != domain.BackupBackedUp && b.Status != domain.BackupRestoring {
		return source{}, fmt.Errorf("backup %s is %s; files are read from BackedUp backups: %w", b.ID, b.Status, domain.ErrConflict)
	}
	off, err := s.store.Offering(ctx, b.OfferingID)
	if err != nil {
		return source{}, err
	}
	if !off.AllowExtractFile {
		return source{}, fmt.Errorf("offering %s does not allow file extraction (--allow-extract-file): %w", off.Name, domain.ErrForbidden)
	}
	root, err := s.k.StorageRoot(ctx, b)
	if err != nil {
		return source{}, err
	}
	h, a, err := s.reader(ctx, b.HostID)
	if err != nil {
		return source{}, err
	}
	view, err := s.k.Settings(ctx, settings.Target{Host: h.ID, Zone: h.ZoneID, Account: b.AccountID})
	if err != nil {
		return source{}, err
	}
	return source{b: b, host: h, agent: a, src: agentapi.FileSource{
		InStorage: agentapi.InStorage{Storage: root}, BackupID: b.ID, Files: kernel.RestoreFiles(b),
		IdleTimeout: view.Duration(settings.KeyFileHelperIdleTimeout), MaxHelpers: int(view.Int(settings.KeyFileHelperMaxPerHost)),
	}}, nil
}

// reader picks the host that reads a backup of host hostID.
func (s *Service) reader(ctx context.Context, hostID string) (domain.Host, agentapi.Agent, error) {
	own, err := s.store.Host(ctx, hostID)
	if err != nil {
		return domain.Host{}, nil, err
	}
	if a, err := s.k.Agent(own.ID); err == nil && own.Enabled {
		return own, a, nil
	}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return domain.Host{}, nil, err
	}
	for _, h := range hosts {
		if h.ZoneID != own.ZoneID || !h.Enabled {
			continue
		}
		if a, err := s.k.Agent(h.ID); err == nil {
			return h, a, nil
		}
	}
	return domain.Host{}, nil, fmt.Errorf("no host of zone %s can read the backup now: %w", own.ZoneID, domain.ErrUnavailable)
}

// List lists the backup's volumes (no volume and no path) or a directory.
func (s *Service) List(ctx context.Context, p domain.Principal, id, volume, path string) (agentapi.ListFilesResult, error) {
	if err := checkVolume(volume); err != nil {
		return agentapi.ListFilesResult{}, err
	}
	src, err := s.open(ctx, p, id)
	if err != nil {
		return agentapi.ListFilesResult{}, err
	}
	if path != "" {
		if err := checkPath("path", path); err != nil {
			return agentapi.ListFilesResult{}, err
		}
	}
	return src.agent.ListFiles(ctx, agentapi.ListFilesRequest{FileSource: src.src, Volume: volume, Path: path})
}

// Extract writes a tar stream of the paths of a volume to w (see
// agentapi.Files.ExtractFiles; an error after the first byte is returned
// after w got a truncated stream).
func (s *Service) Extract(ctx context.Context, p domain.Principal, id, volume string, paths []string, w io.Writer) error {
	if err := checkVolume(volume); err != nil {
		return err
	}
	if err := checkPaths(paths); err != nil {
		return err
	}
	src, err := s.open(ctx, p, id)
	if err != nil {
		return err
	}
	return src.agent.ExtractFiles(ctx, agentapi.ExtractFilesRequest{FileSource: src.src, Volume: volume, Paths: paths}, w)
}

// RestoreOptions say where restored files go in the VM.
type RestoreOptions struct {
	VM        string
	To        string
	Overwrite bool
}

// Restore writes paths of a volume of a backup into a running VM through
// its guest agent, as an operation. The VM must run on a host that can read
// the backup's storage (its own host reads the files).
func (s *Service) Restore(ctx context.Context, p domain.Principal, id, volume string, paths []string, o RestoreOptions) (domain.Operation, error) {
	if err := checkVolume(volume); err != nil {
		return domain.Operation{}, err
	}
	if err := checkPaths(paths); err != nil {
		return domain.Operation{}, err
	}
	if err := checkPath("to", o.To); err != nil {
		return domain.Operation{}, err
	}
	src, err := s.open(ctx, p, id)
	if err != nil {
		return domain.Operation{}, err
	}
	vm, err := s.k.VM(ctx, p, o.VM)
	if err != nil {
		return domain.Operation{}, err
	}
	if vm.EffectiveState() != domain.VMRunning {
		return domain.Operation{}, fmt.Errorf("vm %s is %s; files are restored into a running VM through its guest agent: %w", vm.Name, vm.EffectiveState(), domain.ErrConflict)
	}
	a, err := s.k.Agent(vm.HostID)
	if err != nil {
		return domain.Operation{}, err
	}
	req := agentapi.RestoreFilesRequest{ExtractFilesRequest: agentapi.ExtractFilesRequest{FileSource: src.src, Volume: volume, Paths: paths},
		DomainUUID: vm.ID, To: o.To, Overwrite: o.Overwrite}
	timeout := s.k.KnibTimeout(ctx, vm)
	return s.k.VMOperation(ctx, p, vm, "a file restore", "backup.restore-files", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
		res, err := kernel.Run(ctx, a, agentapi.RestoreFiles, req, timeout, progress, 0, 100)
		if err != nil {
			return nil, err
		}
		return domain.BackupRestoreFilesResult{VM: vm.Name, To: o.To, Files: res.Files, Dirs: res.Dirs, Links: res.Links,
			Bytes: res.Bytes, Skipped: res.Skipped}, nil
	})
}

func checkVolume(v string) error {
	if v == "" {
		return nil
	}
	if len(v) > 128 || !volumeRE.MatchString(v) {
		return domain.Invalid("disk", "%q is not a disk, partition or logical volume name", v)
	}
	return nil
}

func checkPaths(paths []string) error {
	if len(paths) == 0 {
		return domain.Invalid("paths", "name at least one path")
	}
	if len(paths) > 1000 {
		return domain.Invalid("paths", "at most 1000 paths at once")
	}
	for _, p := range paths {
		if err := checkPath("paths", p); err != nil {
			return err
		}
	}
	return nil
}

func checkPath(field, p string) error {
	if p == "" || p[0] != '/' {
		return domain.Invalid(field, "%q is not an absolute path", p)
	}
	if len(p) > 4096 {
		return domain.Invalid(field, "path longer than 4096 bytes")
	}
	for i := 0; i < len(p); i++ {
		if p[i] == 0 {
			return domain.Invalid(field, "path holds a NUL byte")
		}
	}
	return nil
}

// volumeRE: vda, vda1, sdb2, VG/LV (LVM names: letters, digits, +_.-).
var volumeRE = regexp.MustCompile(`^([a-z]+[0-9]*|[A-Za-z0-9+_][A-Za-z0-9+_.-]*/[A-Za-z0-9+_][A-Za-z0-9+_.-]*)$`)
