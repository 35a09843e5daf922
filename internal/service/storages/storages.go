package storages

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
)

// EnsureDefaultStorage makes sure the storage "default" exists (for the
// server's own storage directory, in the given zone) and that every backup
// recorded before storages existed belongs to it. Idempotent; run at start.
func (s *Service) EnsureDefaultStorage(ctx context.Context, zone, path string) (domain.Storage, error) {
	if err := domain.ValidateStoragePath("path", path); err != nil {
		return domain.Storage{}, err
	}
	z, err := s.store.EnsureZone(ctx, zone)
	if err != nil {
		return domain.Storage{}, err
	}
	st, err := s.store.Storage(ctx, domain.DefaultStorageName)
	if errors.Is(err, domain.ErrNotFound) {
		st = domain.Storage{ID: domain.NewID(), Name: domain.DefaultStorageName, ZoneID: z.ID, Path: path, Enabled: true, Created: s.k.Clock().Now()}
		if err = s.store.CreateStorage(ctx, st); err == nil {
			s.k.Log().Info("backup storage created", "name", st.Name, "path", path, "zone", zone)
		} else if errors.Is(err, domain.ErrConflict) {
			// Another server created it at the same time.
			st, err = s.store.Storage(ctx, domain.DefaultStorageName)
		}
	}
	if err != nil {
		return st, fmt.Errorf("default backup storage: %w", err)
	}
	n, err := s.store.AdoptBackups(ctx, st.ID)
	if err != nil {
		return st, err
	}
	if n > 0 {
		s.k.Log().Info("backups assigned to the default storage", "count", n, "path", st.Path)
	}
	return st, nil
}

// StorageSpec is what an admin gives to add a storage.
type StorageSpec struct {
	Zone, Path, Name, Tag string
}

// zoneAgent returns a connected agent of an enabled host of the zone.
func (s *Service) zoneAgent(ctx context.Context, zoneID string) (agentapi.Agent, domain.Host, error) {
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return nil, domain.Host{}, err
	}
	for _, h := range hosts {
		if h.ZoneID != zoneID || !h.Enabled {
			continue
		}
		if a, err := s.k.Agent(h.ID); err == nil {
			return a, h, nil
		}
	}
	return nil, domain.Host{}, fmt.Errorf("no host of the zone has a connected agent to reach its storages: %w", domain.ErrUnavailable)
}

// statStorage measures a storage through an agent of its zone (which also
// proves the path exists there and is a directory).
func (s *Service) statStorage(ctx context.Context, zoneID, path string) (agentapi.StorageStatResult, error) {
	var res agentapi.StorageStatResult
	a, _, err := s.zoneAgent(ctx, zoneID)
	if err != nil {
		return res, err
	}
	return kernel.Run(ctx, a, agentapi.StorageStat, agentapi.StorageStatRequest{InStorage: agentapi.InStorage{Storage: path}}, time.Minute, nil, 0, 100)
}

// measure refreshes the capacity of storages (best effort: a storage that
// cannot be measured keeps its last values).
func (s *Service) measure(ctx context.Context, list []domain.Storage) []domain.Storage {
	for i, st := range list {
		res, err := s.statStorage(ctx, st.ZoneID, st.Path)
		if err != nil {
			s.k.Log().Warn("measure backup storage", "storage", st.Name, "err", err)
			continue
		}
		now := s.k.Clock().Now()
		if err := s.store.SetStorageCapacity(ctx, st.ID, res.Capacity, res.Free, now); err == nil {
			list[i].Capacity, list[i].Free, list[i].Measured = res.Capacity, res.Free, now
		}
	}
	return list
}

// AddStorage adds a backup storage to a zone (admin). The path must be
// absolute and clean, and an agent of the zone must find a directory there
// (in the all-in-one installation: the server's own machine).
func (s *Service) AddStorage(ctx context.Context, p domain.Principal, spec StorageSpec) (domain.Storage, error) {
	if err := p.RequireAdmin("adding backup storages"); err != nil {
		return domain.Storage{}, err
	}
	if err := domain.ValidateStoragePath("path", spec.Path); err != nil {
		return domain.Storage{}, err
	}
	if err := domain.ValidateStorageTag("tag", spec.Tag); err != nil {
		return domain.Storage{}, err
	}
	if spec.Name == "" {
		spec.Name = filepath.Base(spec.Path)
	}
	if err := domain.ValidateRef("name", spec.Name); err != nil {
		return domain.Storage{}, err
	}
	if spec.Zone == "" {
		return domain.Storage{}, domain.Invalid("zone", "must not be empty")
	}
	if err := domain.ValidateRef("zone", spec.Zone); err != nil {
		return domain.Storage{}, err
	}
	z, err := s.store.Zone(ctx, spec.Zone)
	if err != nil {
		return domain.Storage{}, err
	}
	// No storage inside another of the zone (whose hosts mount them all),
	// nor around the data directory's own storage. Another zone's hosts
	// are other machines: the same path there is another directory.
	all, err := s.store.ListStorages(ctx, z.ID)
	if err != nil {
		return domain.Storage{}, err
	}
	for _, other := range all {
		if err := domain.StorageOverlap(spec.Path, other.Path, other.Name); err != nil {
			return domain.Storage{}, err
		}
	}
	res, err := s.statStorage(ctx, z.ID, spec.Path)
	if err != nil {
		var te *kernel.TaskError
		if errors.As(err, &te) {
			return domain.Storage{}, domain.Invalid("path", "%s", te.Msg)
		}
		return domain.Storage{}, err
	}
	now := s.k.Clock().Now()
	st := domain.Storage{ID: domain.NewID(), Name: spec.Name, ZoneID: z.ID, Path: spec.Path, Tag: spec.Tag, Enabled: true,
		Capacity: res.Capacity, Free: res.Free, Measured: now, Created: now}
	if err := s.store.CreateStorage(ctx, st); err != nil {
		return domain.Storage{}, err
	}
	s.k.Log().Info("backup storage added", "name", st.Name, "path", st.Path, "zone", z.Name, "tag", st.Tag)
	return st, nil
}

// Storages lists the backup storages (of one zone when zone is set), with
// fresh capacity (admin).
func (s *Service) Storages(ctx context.Context, p domain.Principal, zone string) ([]domain.Storage, error) {
	if err := p.RequireAdmin("listing backup storages"); err != nil {
		return nil, err
	}
	zoneID := ""
	if zone != "" {
		if err := domain.ValidateRef("zone", zone); err != nil {
			return nil, err
		}
		z, err := s.store.Zone(ctx, zone)
		if err != nil {
			return nil, err
		}
		zoneID = z.ID
	}
	list, err := s.store.ListStorages(ctx, zoneID)
	if err != nil {
		return nil, err
	}
	return s.measure(ctx, list), nil
}

// Storage returns one storage by id or name (admin).
func (s *Service) Storage(ctx context.Context, p domain.Principal, ref string) (domain.Storage, error) {
	if err := p.RequireAdmin("reading backup storages"); err != nil {
		return domain.Storage{}, err
	}
	if err := domain.ValidateRef("storage", ref); err != nil {
		return domain.Storage{}, err
	}
	st, err := s.store.Storage(ctx, ref)
	if err != nil {
		return st, err
	}
	if st.Used, err = s.store.StorageUsed(ctx, st.ID); err != nil {
		return st, err
	}
	return s.measure(ctx, []domain.Storage{st})[0], nil
}

// SetStorageEnabled enables or disables a storage (admin). A disabled
// storage receives no new chain; chains on it continue and stay restorable.
func (s *Service) SetStorageEnabled(ctx context.Context, p domain.Principal, ref string, enabled bool) (domain.Storage, error) {
	st, err := s.Storage(ctx, p, ref)
	if err != nil {
		return st, err
	}
	if err := s.store.SetStorageEnabled(ctx, st.ID, enabled); err != nil {
		return st, err
	}
	st.Enabled = enabled
	return st, nil
}

// RemoveStorage removes a storage from the catalogue (admin); refused while
// it holds live backups. Its directory is left alone.
func (s *Service) RemoveStorage(ctx context.Context, p domain.Principal, ref string) error {
	if err := p.RequireAdmin("removing backup storages"); err != nil {
		return err
	}
	if err := domain.ValidateRef("storage", ref); err != nil {
		return err
	}
	st, err := s.store.Storage(ctx, ref)
	if err != nil {
		return err
	}
	return s.store.RemoveStorage(ctx, st.ID)
}

// placeChain chooses the storage of a VM's new chain: an enabled storage of
// its host's zone, with the offering's storage tag when it has one, the one
// with the most free space. ErrConflict when there is none.
func (s *Service) PlaceChain(ctx context.Context, vm domain.VM, off domain.Offering) (domain.Storage, error) {
	h, err := s.store.Host(ctx, vm.HostID)
	if err != nil {
		return domain.Storage{}, err
	}
	z, err := s.store.Zone(ctx, h.ZoneID)
	if err != nil {
		return domain.Storage{}, err
	}
	list, err := s.store.ListStorages(ctx, z.ID)
	if err != nil {
		return domain.Storage{}, err
	}
	var cands []domain.Storage
	for _, st := range list {
		if st.Enabled && (off.StorageTag == "" || st.Tag == off.StorageTag) {
			cands = append(cands, st)
		}
	}
	if len(cands) > 1 {
		cands = s.measure(ctx, cands) // free space decides
	}
	for i := range list {
		for _, c := range cands {
			if list[i].ID == c.ID {
				list[i] = c
			}
		}
	}
	return domain.PlaceChain(list, z.ID, z.Name, off.StorageTag)
}

// checkPlacement refuses, before anything changes, a backup that would start
// a new chain when no storage can take it.
func (s *Service) CheckPlacement(ctx context.Context, vm domain.VM) error {
	c, err := s.store.Chain(ctx, vm.ID)
	if err != nil || c.Head != "" {
		return err
	}
	off, err := s.store.Offering(ctx, vm.OfferingID)
	if err != nil {
		return err
	}
	_, err = s.PlaceChain(ctx, vm, off)
	return err
}

// Zones lists the zones (admin).
func (s *Service) Zones(ctx context.Context, p domain.Principal) ([]domain.Zone, error) {
	if err := p.RequireAdmin("listing zones"); err != nil {
		return nil, err
	}
	return s.store.ListZones(ctx)
}

// CreateZone creates a zone (admin); ErrConflict when it exists.
func (s *Service) CreateZone(ctx context.Context, p domain.Principal, name string) (domain.Zone, error) {
	if err := p.RequireAdmin("creating zones"); err != nil {
		return domain.Zone{}, err
	}
	if err := domain.ValidateRef("name", name); err != nil {
		return domain.Zone{}, err
	}
	if _, err := s.store.Zone(ctx, name); err == nil {
		return domain.Zone{}, fmt.Errorf("zone %s exists already: %w", name, domain.ErrConflict)
	}
	return s.store.EnsureZone(ctx, name)
}

// StorageCatalogue lists every storage as recorded (no measurement).
func (s *Service) StorageCatalogue(ctx context.Context) ([]domain.Storage, error) {
	return s.store.ListStorages(ctx, "")
}
