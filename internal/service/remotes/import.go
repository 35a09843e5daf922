package remotes

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/seal"
	"github.com/knib/knib/internal/store"
)

// maxManifest bounds a manifest's sealed size.
const maxManifest = 16 << 20

// ImportResult says what `knib remote import` found and recorded.
type ImportResult struct {
	Manifests  int      // manifests read
	Backups    int      // backups recorded
	VMs        int      // VMs recorded (the others were known)
	Known      int      // backups the catalogue had (their copies recorded)
	Unreadable []string // manifest keys that could not be opened, with why
}

// Import rebuilds the catalogue's backups and copies from a remote's
// manifests alone (admin): the disaster-recovery path of a new server with
// an empty catalogue. Manifests hidden behind delete markers are read too.
// VMs the catalogue does not know are recorded Missing on host hostRef (""
// : the only enabled host), their backups on that host's zone's default
// storage, where `knib backup restore B --from R` brings their files
// back. Known backups keep their rows; only their copies are recorded.
func (s *Service) Import(ctx context.Context, p domain.Principal, remoteRef, hostRef string) (ImportResult, error) {
	r, err := s.remote(ctx, p, remoteRef, "importing from a remote")
	if err != nil {
		return ImportResult{}, err
	}
	key, err := seal.ParseKey(r.Key)
	if err != nil {
		return ImportResult{}, fmt.Errorf("remote %s: stored key: %w", r.Name, err)
	}
	h, err := s.importHost(ctx, hostRef)
	if err != nil {
		return ImportResult{}, err
	}
	st, err := s.defaultStorage(ctx, h.ZoneID)
	if err != nil {
		return ImportResult{}, err
	}
	b, err := s.bucket(r)
	if err != nil {
		return ImportResult{}, err
	}
	found, err := s.checkHeader(ctx, b, key)
	if err != nil {
		return ImportResult{}, err
	}
	if !found {
		return ImportResult{}, fmt.Errorf("the bucket of remote %s holds no knib remote header (%s): %w", r.Name, headerKey, domain.ErrNotFound)
	}
	infos, err := b.List(ctx, manifestPrefix, true)
	if err != nil {
		return ImportResult{}, fmt.Errorf("list the manifests of remote %s: %w", r.Name, err)
	}
	var res ImportResult
	var ms []manifest
	for _, info := range infos {
		m, err := readManifest(ctx, b, key, info)
		if err != nil {
			res.Unreadable = append(res.Unreadable, info.Key+": "+err.Error())
			continue
		}
		m.manifestKey, m.manifestVersion = info.Key, info.VersionID
		ms = append(ms, m)
	}
	res.Manifests = len(ms)
	// Parents before children.
	slices.SortFunc(ms, func(a, b manifest) int {
		return cmp.Or(a.Backup.Created.Compare(b.Backup.Created), cmp.Compare(a.Backup.Position, b.Backup.Position), cmp.Compare(a.Backup.ID, b.Backup.ID))
	})
	admin, err := s.k.EnsureAdmin(ctx)
	if err != nil {
		return res, err
	}
	for _, m := range ms {
		if err := s.importOne(ctx, r, h, st, admin, m, &res); err != nil {
			return res, fmt.Errorf("import backup %s: %w", m.Backup.ID, err)
		}
	}
	s.k.Log().Info("remote imported", "remote", r.Name, "manifests", res.Manifests, "backups", res.Backups, "vms", res.VMs, "unreadable", len(res.Unreadable))
	return res, nil
}

// readManifest reads and opens one manifest.
func readManifest(ctx context.Context, b offsite.Bucket, key seal.Key, info offsite.ObjectInfo) (manifest, error) {
	if info.Size > maxManifest {
		return manifest{}, fmt.Errorf("%d bytes is too large for a manifest", info.Size)
	}
	rc, err := b.Get(ctx, info.Key, info.VersionID)
	if err != nil {
		return manifest{}, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return manifest{}, err
	}
	plain, err := seal.Open(key, info.Key, raw)
	if err != nil {
		return manifest{}, err
	}
	var m manifest
	if err := json.Unmarshal(plain, &m); err != nil {
		return manifest{}, fmt.Errorf("decode: %w", err)
	}
	if m.Format != manifestFormat {
		return manifest{}, fmt.Errorf("format %q, want %s", m.Format, manifestFormat)
	}
	if err := domain.ValidateRef("backup id", m.Backup.ID); err != nil {
		return manifest{}, err
	}
	if err := domain.ValidateRef("vm uuid", m.VM.UUID); err != nil {
		return manifest{}, err
	}
	return m, nil
}

// importOne records one manifest's backup, VM, offering and copy.
func (s *Service) importOne(ctx context.Context, r domain.Remote, h domain.Host, st domain.Storage, admin domain.Account, m manifest, res *ImportResult) error {
	c := domain.BackupCopy{ID: m.CopyID, BackupID: m.Backup.ID, RemoteID: r.ID, State: domain.CopyCopied, Objects: m.Objects,
		ManifestKey: m.manifestKey, ManifestVersion: m.manifestVersion, LockUntil: m.LockUntil, KeepUntil: m.KeepUntil, Created: m.Copied, Copied: m.Copied}
	for _, o := range m.Objects {
		c.Size += o.Size
	}
	if _, err := s.store.Backup(ctx, m.Backup.ID); err == nil {
		res.Known++
		return s.recordImportedCopy(ctx, c)
	} else if !errors.Is(err, domain.ErrNotFound) {
		return err
	}
	account := admin.ID
	if a, err := s.store.Account(ctx, m.Backup.AccountID); err == nil {
		account = a.ID
	}
	offering, err := s.importOffering(ctx, m.Backup.Offering)
	if err != nil {
		return err
	}
	now := s.k.Clock().Now()
	created, err := s.store.ImportVM(ctx, domain.VM{ID: m.VM.UUID, Name: m.VM.Name, HostID: h.ID, State: domain.VMMissing, AccountID: account,
		Disks: m.VM.Disks, VCPUs: m.VM.VCPUs, MemoryBytes: m.VM.MemoryBytes, Seen: now})
	if err != nil {
		return err
	}
	if created {
		res.VMs++
	}
	vm, err := s.store.VM(ctx, m.VM.UUID)
	if err != nil {
		return err
	}
	b := domain.Backup{ID: m.Backup.ID, VMID: vm.ID, VMName: m.VM.Name, AccountID: account, OfferingID: offering, HostID: vm.HostID,
		Type: m.Backup.Type, Isolated: m.Backup.Isolated, ParentID: m.Backup.ParentID, Position: m.Backup.Position, EndOfChain: true,
		Status: domain.BackupBackedUp, Size: m.Backup.Size, VirtualSize: m.Backup.VirtualSize, StorageID: st.ID, Dir: m.Backup.Dir,
		CompressionStatus: domain.CompressionStatus(m.Backup.CompressionStatus), UncompressedSize: m.Backup.UncompressedSize,
		Files: m.Backup.Files, Created: m.Backup.Created, Updated: now}
	if b.CompressionStatus != domain.Compressed {
		b.CompressionStatus = domain.Uncompressed
	}
	if err := s.store.CreateBackup(ctx, b); err != nil {
		return err
	}
	if err := s.store.SaveBackup(ctx, b, nil); err != nil {
		return err
	}
	res.Backups++
	return s.recordImportedCopy(ctx, c)
}

// recordImportedCopy records a copy read from a manifest unless the
// catalogue has a live copy of that backup on the remote.
func (s *Service) recordImportedCopy(ctx context.Context, c domain.BackupCopy) error {
	if _, ok, err := s.liveCopy(ctx, c.BackupID, c.RemoteID); err != nil || ok {
		return err
	}
	if _, err := s.store.Copy(ctx, c.ID); err == nil {
		c.ID = domain.NewID() // a failed copy of this id is recorded
	}
	return s.store.CreateCopy(ctx, c)
}

// importOffering returns the offering an imported backup belongs to: the
// one with the manifest's id, else a new one with its features (its name
// suffixed when taken).
func (s *Service) importOffering(ctx context.Context, mo manifestOffering) (string, error) {
	if mo.ID != "" {
		if o, err := s.store.Offering(ctx, mo.ID); err == nil {
			return o.ID, nil
		}
	}
	id := mo.ID
	if domain.ValidateRef("offering id", id) != nil {
		id = domain.NewID()
	}
	name := mo.Name
	if domain.ValidateRef("name", name) != nil {
		name = "imported"
	}
	list, err := s.store.ListOfferings(ctx, store.OfferingFilter{ShowRemoved: true})
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(list, func(o domain.Offering) bool { return o.Name == name }) {
		name = name + "-imported-" + id[:min(8, len(id))]
	}
	lib := domain.CompressionLibrary(mo.Library)
	if lib != domain.CompressionZlib {
		lib = domain.CompressionZstd
	}
	o := domain.Offering{ID: id, Name: name, Description: "imported from a remote", Compress: mo.Compress, AllowQuickRestore: mo.AllowQuickRestore,
		AllowExtractFile: mo.AllowExtractFile, CompressionLibrary: lib, Created: s.k.Clock().Now()}
	if err := s.store.CreateOffering(ctx, o); err != nil {
		return "", err
	}
	return o.ID, nil
}

// importHost is the host imported VMs are recorded on.
func (s *Service) importHost(ctx context.Context, ref string) (domain.Host, error) {
	if ref != "" {
		if err := domain.ValidateRef("host", ref); err != nil {
			return domain.Host{}, err
		}
		return s.store.Host(ctx, ref)
	}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return domain.Host{}, err
	}
	var enabled []domain.Host
	for _, h := range hosts {
		if h.Enabled {
			enabled = append(enabled, h)
		}
	}
	if len(enabled) != 1 {
		return domain.Host{}, domain.Invalid("host", "%d hosts are enabled; name the host the imported VMs belong to", len(enabled))
	}
	return enabled[0], nil
}

// defaultStorage is the zone's storage imported backups are recorded on:
// the one named default, else the zone's first enabled one.
func (s *Service) defaultStorage(ctx context.Context, zoneID string) (domain.Storage, error) {
	list, err := s.store.ListStorages(ctx, zoneID)
	if err != nil {
		return domain.Storage{}, err
	}
	for _, st := range list {
		if st.Name == domain.DefaultStorageName {
			return st, nil
		}
	}
	for _, st := range list {
		if st.Enabled {
			return st, nil
		}
	}
	return domain.Storage{}, fmt.Errorf("the zone has no backup storage to record imported backups on: %w", domain.ErrConflict)
}
