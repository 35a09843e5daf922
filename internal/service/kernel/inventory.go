package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// movedAway returns the VMs a host still defines that are being moved to
// another host: its inventory must not pull them back.
func (s *Kernel) MovedAway(ctx context.Context, hostID string) map[string]bool {
	moves, err := s.store.VMMoves(ctx)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range moves {
		if m.FromHost == hostID && m.ToHost != hostID {
			out[m.VMID] = true
		}
	}
	return out
}

// refreshHost re-reads a host's inventory after its disks changed.
func (s *Kernel) RefreshHost(ctx context.Context, hostID string) {
	a, err := s.Agent(hostID)
	if err != nil {
		return
	}
	admin, err := s.EnsureAdmin(ctx)
	if err != nil {
		return
	}
	if err := s.SyncHost(ctx, hostID, a, admin.ID); err != nil {
		s.log.Warn("inventory refresh", "host", hostID, "err", err)
	}
}

func VMFromAgent(d agentapi.Domain) domain.VM {
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

// SyncHost reads a host's report and domains through a and records them
// (new VMs owned by ownerID; VMs the host no longer has become Missing).
// A host's syncs run one at a time, so the last to read records last.
func (s *Kernel) SyncHost(ctx context.Context, hostID string, a agentapi.Agent, ownerID string) error {
	unlock, err := s.lockSync(ctx, hostID)
	if err != nil {
		return fmt.Errorf("inventory of host %s: %w", s.HostName(ctx, hostID), err)
	}
	defer unlock()
	h, err := s.store.Host(ctx, hostID)
	if err != nil {
		return err
	}
	rep, err := a.HostReport(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	now := s.clock.Now()
	if _, err := s.store.UpsertHost(ctx, HostFromReport(rep, h.ZoneID, h.Local, now)); err != nil {
		return err
	}
	doms, err := a.Inventory(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	notHere, err := s.settle(ctx, hostID, doms)
	if err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	vms := make([]domain.VM, 0, len(doms))
	away := s.MovedAway(ctx, hostID)
	for _, d := range doms {
		if strings.HasPrefix(d.Name, agentapi.ValidationPrefix) || away[d.UUID] || notHere[d.UUID] {
			continue // throw-away validation VMs are not VMs knib manages; moved VMs live elsewhere
		}
		vms = append(vms, VMFromAgent(d))
	}
	return s.store.SyncHostVMs(ctx, hostID, vms, ownerID, now)
}

// HostFromReport is the catalogue record of a host from its agent's report.
func HostFromReport(rep agentapi.HostReport, zoneID string, local bool, now time.Time) domain.Host {
	return domain.Host{
		Name: rep.Name, ZoneID: zoneID, URI: rep.URI, LibvirtVersion: rep.LibvirtVersion,
		HypervisorVersion: rep.HypervisorVersion, CPUs: rep.CPUs, MemoryBytes: rep.MemoryBytes,
		StorageCapacity: rep.StorageCapacity, StorageFree: rep.StorageFree, StoragePath: rep.StoragePath, Local: local,
		LastSeen: now, AgentSettings: rep.Settings,
	}
}

// ReadVM reads a VM's domain from its host (that domain alone: the cost
// does not grow with the host's other VMs), records its state and disks in
// the catalogue, and returns the domain and the VM as now recorded. A VM that does not run on its host but lives on another
// host of the zone (migrated outside knib) is read there, and that host
// becomes its host (whereNow). A VM no host defines is ErrConflict.
func (s *Kernel) ReadVM(ctx context.Context, vm domain.VM) (agentapi.Domain, domain.VM, error) {
	a, err := s.Agent(vm.HostID)
	if err != nil {
		return agentapi.Domain{}, vm, err
	}
	var doms []agentapi.Domain // what the host reports of this VM (whereNow)
	switch d, err := a.Domain(ctx, vm.ID); {
	case err == nil:
		doms = append(doms, d)
	case !errors.Is(err, agentapi.ErrUnknownDomain):
		return agentapi.Domain{}, vm, fmt.Errorf("host %s: %w", s.HostName(ctx, vm.HostID), err)
	}
	d, found, err := s.whereNow(ctx, vm, doms)
	if err != nil {
		return agentapi.Domain{}, vm, err
	}
	if !found {
		return agentapi.Domain{}, vm, fmt.Errorf("vm %s is no longer defined on its host: %w", vm.Name, domain.ErrConflict)
	}
	if err := s.RecordDomain(ctx, d); err != nil {
		return d, vm, err
	}
	got, err := s.store.VM(ctx, vm.ID)
	return d, got, err
}

// RecordDomain records one domain's state and disks as its agent reported them.
func (s *Kernel) RecordDomain(ctx context.Context, d agentapi.Domain) error {
	v := VMFromAgent(d)
	if err := s.store.RecordVMDisks(ctx, v.ID, v.State, v.Disks, s.clock.Now()); err != nil {
		return fmt.Errorf("record the disks of vm %s: %w", v.Name, err)
	}
	return nil
}
