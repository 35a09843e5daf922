package hosts

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
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
	h, err := s.store.UpsertHost(ctx, kernel.HostFromReport(rep, z.ID, local, s.k.Clock().Now()))
	if err != nil {
		return h, err
	}
	s.k.SetAgent(h.ID, a)
	s.k.Log().Info("host registered", "host", h.Name, "zone", zone, "libvirt", h.LibvirtVersion, "qemu", h.HypervisorVersion)
	return h, nil
}

// SyncInventory reads every connected host's report and domains into the
// catalogue. New VMs are owned by the admin account until given away.
func (s *Service) SyncInventory(ctx context.Context) error {
	admin, err := s.k.EnsureAdmin(ctx)
	if err != nil {
		return err
	}
	agents := s.k.Agents()
	var errs []error
	for hostID, a := range agents {
		if err := s.k.SyncHost(ctx, hostID, a, admin.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("inventory sync: %v", errs)
	}
	return nil
}

// RefreshInventory syncs the inventory as an operation (admin).
func (s *Service) RefreshInventory(ctx context.Context, p domain.Principal) (domain.Operation, error) {
	if err := p.RequireAdmin("refreshing the inventory"); err != nil {
		return domain.Operation{}, err
	}
	return s.k.Start(ctx, p, "inventory.refresh", "", func(ctx context.Context, progress kernel.Progress) (domain.OpResult, error) {
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
		return domain.InventoryRefreshResult{Hosts: len(hosts), VMs: len(vms)}, nil
	})
}

// ListHosts lists hosts (admin).
func (s *Service) ListHosts(ctx context.Context, p domain.Principal) ([]domain.Host, error) {
	if err := p.RequireAdmin("listing hosts"); err != nil {
		return nil, err
	}
	return s.store.ListHosts(ctx)
}
