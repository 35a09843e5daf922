package service

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// RegisterHost records the host an agent reports, in the named zone, and
// keeps the agent to send it commands. local marks the in-process agent.
func (s *Service) RegisterHost(ctx context.Context, zone string, a agentapi.Agent, local bool) (domain.Host, error) {
	rep, err := a.HostReport(ctx)
	if err != nil {
		return domain.Host{}, fmt.Errorf("host report: %w", err)
	}
	z, err := s.store.EnsureZone(ctx, zone)
	if err != nil {
		return domain.Host{}, err
	}
	h, err := s.store.UpsertHost(ctx, hostFromReport(rep, z.ID, local, s.clock.Now()))
	if err != nil {
		return h, err
	}
	s.mu.Lock()
	s.agents[h.ID] = a
	s.mu.Unlock()
	s.log.Info("host registered", "host", h.Name, "zone", zone, "libvirt", h.LibvirtVersion, "qemu", h.HypervisorVersion)
	return h, nil
}

func hostFromReport(rep agentapi.HostReport, zoneID string, local bool, now time.Time) domain.Host {
	return domain.Host{
		Name: rep.Name, ZoneID: zoneID, URI: rep.URI, LibvirtVersion: rep.LibvirtVersion,
		HypervisorVersion: rep.HypervisorVersion, CPUs: rep.CPUs, MemoryBytes: rep.MemoryBytes,
		StorageCapacity: rep.StorageCapacity, StorageFree: rep.StorageFree, StoragePath: rep.StoragePath, Local: local,
		LastSeen: now, AgentSettings: rep.Settings,
	}
}

func vmFromAgent(d agentapi.Domain) domain.VM {
	vm := domain.VM{ID: d.UUID, Name: d.Name, State: stateFromHypervisor(d.State), VCPUs: d.VCPUs, MemoryBytes: d.MemoryBytes}
	for _, k := range d.Disks {
		disk := domain.Disk{Target: k.Target, Device: k.Device, Bus: k.Bus, SourceType: k.SourceType, Source: k.Source,
			Format: k.Format, VirtualSize: k.VirtualSize, Problem: k.Problem}
		for _, l := range k.BackingChain {
			disk.BackingChain = append(disk.BackingChain, domain.Layer{Path: l.Path, Format: l.Format})
		}
		vm.Disks = append(vm.Disks, disk)
	}
	return vm
}

func stateFromHypervisor(s string) domain.VMState {
	switch s {
	case "running":
		return domain.VMRunning
	case "shutoff", "crashed":
		return domain.VMStopped
	case "paused", "pmsuspended":
		return domain.VMPaused
	}
	return domain.VMUnknown
}

// agent returns the agent of a host.
func (s *Service) agent(hostID string) (agentapi.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[hostID]
	if !ok {
		return nil, fmt.Errorf("host %s has no connected agent: %w", hostID, domain.ErrUnavailable)
	}
	if err := s.gatedErr(hostID); err != nil {
		return nil, err
	}
	return a, nil
}

// recoveryAgent is agent for recovery: it also returns the agent of a host
// that is still recovering after its agent reconnected.
func (s *Service) recoveryAgent(hostID string) (agentapi.Agent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.agents[hostID]
	if !ok {
		return nil, fmt.Errorf("host %s has no connected agent: %w", hostID, domain.ErrUnavailable)
	}
	return a, nil
}

// SyncInventory reads every connected host's report and domains into the
// catalogue. New VMs are owned by the admin account until given away.
func (s *Service) SyncInventory(ctx context.Context) error {
	admin, err := s.EnsureAdmin(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	agents := make(map[string]agentapi.Agent, len(s.agents))
	for id, a := range s.agents {
		agents[id] = a
	}
	s.mu.Unlock()
	var errs []error
	for hostID, a := range agents {
		if err := s.syncHost(ctx, hostID, a, admin.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("inventory sync: %v", errs)
	}
	return nil
}

func (s *Service) syncHost(ctx context.Context, hostID string, a agentapi.Agent, ownerID string) error {
	h, err := s.store.Host(ctx, hostID)
	if err != nil {
		return err
	}
	rep, err := a.HostReport(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	now := s.clock.Now()
	if _, err := s.store.UpsertHost(ctx, hostFromReport(rep, h.ZoneID, h.Local, now)); err != nil {
		return err
	}
	doms, err := a.Inventory(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	vms := make([]domain.VM, 0, len(doms))
	away := s.movedAway(ctx, hostID)
	for _, d := range doms {
		if strings.HasPrefix(d.Name, agentapi.ValidationPrefix) || away[d.UUID] {
			continue // throw-away validation VMs are not VMs knib manages; moved VMs live elsewhere
		}
		vms = append(vms, vmFromAgent(d))
	}
	return s.store.SyncHostVMs(ctx, hostID, vms, ownerID, now)
}

// RefreshInventory syncs the inventory as an operation (admin).
func (s *Service) RefreshInventory(ctx context.Context, p domain.Principal) (domain.Operation, error) {
	if err := p.RequireAdmin("refreshing the inventory"); err != nil {
		return domain.Operation{}, err
	}
	return s.start(ctx, p, "inventory.refresh", "", func(ctx context.Context, progress Progress) (any, error) {
		progress(10, "reading hosts")
		if err := s.SyncInventory(ctx); err != nil {
			return nil, err
		}
		vms, err := s.store.ListVMs(ctx, store.VMFilter{})
		if err != nil {
			return nil, err
		}
		hosts, err := s.store.ListHosts(ctx)
		if err != nil {
			return nil, err
		}
		return map[string]int{"hosts": len(hosts), "vms": len(vms)}, nil
	})
}

// ListHosts lists hosts (admin).
func (s *Service) ListHosts(ctx context.Context, p domain.Principal) ([]domain.Host, error) {
	if err := p.RequireAdmin("listing hosts"); err != nil {
		return nil, err
	}
	return s.store.ListHosts(ctx)
}

// ZoneName returns a zone's name for display.
func (s *Service) ZoneName(ctx context.Context, id string) string {
	z, err := s.store.Zone(ctx, id)
	if err != nil {
		return id
	}
	return z.Name
}

// HostName returns a host's name for display.
func (s *Service) HostName(ctx context.Context, id string) string {
	h, err := s.store.Host(ctx, id)
	if err != nil {
		return id
	}
	return h.Name
}
