package kernel

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// A VM can change hosts outside knib: a live migration with virsh (which
// may leave a shut-off definition of the same uuid on the old host), or a
// definition moved by hand. Its disk files and their backing chains are
// the same files on the zone's shared storage, so its chain continues: the
// catalogue follows the VM to the host it lives on (LiveRank, PickHost),
// during the inventory (settle) and before a backup reads it (ReadVM),
// never marking it Missing in between and never acting on it through a
// stale definition.

// Ranks of what a host reports of a VM (LiveRank).
const (
	rankAbsent  = iota // not defined
	rankDefined        // defined, not running: shut off, crashed, ...
	rankPaused         // paused, suspended; also the destination of a migration until it takes over
	rankRunning
)

// LiveRank orders the states a host reports of a VM to decide where it
// lives: running before paused before a mere definition ("" is not
// defined).
func LiveRank(state string) int {
	switch state {
	case "":
		return rankAbsent
	case "running":
		return rankRunning
	case "paused", "pmsuspended":
		return rankPaused
	}
	return rankDefined
}

// Sighting is a VM's domain as one host reports it.
type Sighting struct {
	HostID string
	Domain agentapi.Domain
}

// PickHost decides where a VM lives among the hosts that report it: the
// highest LiveRank, and among equals the recorded host. found is false when
// no host reports it; two other hosts tied at the top (without the
// recorded one) is ErrConflict.
func PickHost(recorded string, seen []Sighting) (where Sighting, found bool, err error) {
	best := -1
	var top []Sighting
	for _, sg := range seen {
		switch r := LiveRank(sg.Domain.State); {
		case r > best:
			best, top = r, []Sighting{sg}
		case r == best:
			top = append(top, sg)
		}
	}
	if len(top) == 0 {
		return Sighting{}, false, nil
	}
	if i := slices.IndexFunc(top, func(sg Sighting) bool { return sg.HostID == recorded }); i >= 0 {
		return top[i], true, nil
	}
	if len(top) > 1 {
		hosts := make([]string, 0, len(top))
		for _, sg := range top {
			hosts = append(hosts, sg.HostID)
		}
		return Sighting{}, false, fmt.Errorf("vm %s is %s on hosts %s: %w", top[0].Domain.Name, top[0].Domain.State, strings.Join(hosts, ", "), domain.ErrConflict)
	}
	return top[0], true, nil
}

// Locate finds where a VM lives now among the hosts of its recorded
// host's zone whose agents are in service (PickHost). known holds
// inventories already read, by host id; a host whose inventory can't be
// read is logged and left out.
func (s *Kernel) Locate(ctx context.Context, vm domain.VM, known map[string][]agentapi.Domain) (Sighting, bool, error) {
	home, err := s.store.Host(ctx, vm.HostID)
	if err != nil {
		return Sighting{}, false, err
	}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return Sighting{}, false, err
	}
	var seen []Sighting
	for _, h := range hosts {
		if h.ZoneID != home.ZoneID {
			continue
		}
		doms, ok := known[h.ID]
		if !ok {
			a, err := s.Agent(h.ID)
			if err != nil {
				continue // not in service: its VMs are where the catalogue says
			}
			if doms, err = a.Inventory(ctx); err != nil {
				s.log.Warn("locate a vm: host inventory", "vm", vm.Name, "host", h.Name, "err", err)
				continue
			}
		}
		if i := slices.IndexFunc(doms, func(d agentapi.Domain) bool { return d.UUID == vm.ID }); i >= 0 {
			seen = append(seen, Sighting{HostID: h.ID, Domain: doms[i]})
		}
	}
	return PickHost(vm.HostID, seen)
}

// moving returns the VMs a restore onto another host is moving: that move
// decides their host, not the inventory.
func (s *Kernel) moving(ctx context.Context) (map[string]bool, error) {
	moves, err := s.store.VMMoves(ctx)
	if err != nil {
		return nil, fmt.Errorf("moves in progress: %w", err)
	}
	out := map[string]bool{}
	for _, m := range moves {
		out[m.VMID] = true
	}
	return out, nil
}

// rehome records that a VM lives on another host now, as it reports it.
func (s *Kernel) rehome(ctx context.Context, vm domain.VM, to Sighting) error {
	if err := s.store.SetVMHost(ctx, vm.ID, to.HostID); err != nil {
		return fmt.Errorf("record the new host of vm %s: %w", vm.Name, err)
	}
	s.log.Info("vm found on another host: it moved outside knib; its chain continues there", "vm", vm.Name,
		"from", s.HostName(ctx, vm.HostID), "to", s.HostName(ctx, to.HostID), "state", to.Domain.State)
	return s.RecordDomain(ctx, to.Domain)
}

// settle is the part of a host's inventory sync that follows VMs across
// hosts (doms: what the host reports). It returns the reported VMs the
// host does not claim because they live on another host. A VM recorded on
// this host that stopped running here, or that this host no longer
// reports, is looked for on the zone's other hosts (Locate) and moves to
// the host it lives on now instead of becoming Stopped or Missing. A VM
// recorded on another host is claimed when it is Missing there, or when
// it runs here and Locate agrees; a definition that does not run never
// takes it. Busy VMs and VMs being moved by a restore are left alone.
func (s *Kernel) settle(ctx context.Context, hostID string, doms []agentapi.Domain) (map[string]bool, error) {
	moving, err := s.moving(ctx)
	if err != nil {
		return nil, err
	}
	known := map[string][]agentapi.Domain{hostID: doms}
	reported := map[string]agentapi.Domain{}
	for _, d := range doms {
		reported[d.UUID] = d
	}
	notHere := map[string]bool{}
	mine := map[string]bool{}
	page := store.Page{Limit: settlePage}
	for {
		vms, err := s.store.ListVMs(ctx, store.VMFilter{HostID: hostID, Page: page})
		if err != nil {
			return nil, err
		}
		for _, vm := range vms {
			mine[vm.ID] = true
			d, here := reported[vm.ID]
			switch {
			case vm.Busy != "" || moving[vm.ID]:
				continue
			case !here && vm.State != domain.VMMissing:
				// Gone from here: migrated, or deleted.
			case here && LiveRank(d.State) < rankRunning && (vm.State == domain.VMRunning || vm.State == domain.VMPaused):
				// Stopped here: shut down, or migrated away leaving its definition.
			default:
				continue
			}
			where, found, err := s.Locate(ctx, vm, known)
			if err != nil {
				s.log.Warn("inventory: where does the vm live", "vm", vm.Name, "err", err)
				continue
			}
			if found && where.HostID != hostID {
				if err := s.rehome(ctx, vm, where); err != nil {
					return nil, err
				}
				notHere[vm.ID] = true
			}
		}
		if len(vms) < settlePage {
			break
		}
		page.After = store.VMCursor(vms[len(vms)-1])
	}
	var others []string
	for id := range reported {
		if !mine[id] && !moving[id] {
			others = append(others, id)
		}
	}
	owners, err := s.store.HostsOfVMs(ctx, others)
	if err != nil {
		return nil, err
	}
	for id := range owners {
		d := reported[id]
		vm, err := s.store.VM(ctx, id)
		if err != nil {
			return nil, err
		}
		if vm.State == domain.VMMissing {
			continue
		}
		if vm.Busy != "" || LiveRank(d.State) < rankPaused {
			notHere[id] = true
			continue
		}
		where, found, err := s.Locate(ctx, vm, known)
		if err != nil || !found || where.HostID != hostID {
			if err != nil {
				s.log.Warn("inventory: vm reported by two hosts", "vm", vm.Name, "err", err)
			}
			notHere[id] = true
		}
	}
	return notHere, nil
}

// settlePage is how many of a host's VMs settle reads at a time.
const settlePage = 500

// whereNow is ReadVM's look at the other hosts: a VM that does not run on
// its recorded host (doms: that host's inventory) may run on another one
// of the zone (migrated outside knib, the inventory not in step yet); the
// catalogue then follows it there before anything acts on it, so that no
// operation runs through a stale definition. found is false when no host
// defines the VM.
func (s *Kernel) whereNow(ctx context.Context, vm domain.VM, doms []agentapi.Domain) (agentapi.Domain, bool, error) {
	i := slices.IndexFunc(doms, func(d agentapi.Domain) bool { return d.UUID == vm.ID })
	if i >= 0 && LiveRank(doms[i].State) == rankRunning {
		return doms[i], true, nil
	}
	moving, err := s.moving(ctx)
	if err != nil {
		return agentapi.Domain{}, false, err
	}
	if moving[vm.ID] {
		if i < 0 {
			return agentapi.Domain{}, false, nil
		}
		return doms[i], true, nil
	}
	where, found, err := s.Locate(ctx, vm, map[string][]agentapi.Domain{vm.HostID: doms})
	if err != nil || !found {
		return agentapi.Domain{}, false, err
	}
	if where.HostID != vm.HostID {
		if err := s.rehome(ctx, vm, where); err != nil {
			return agentapi.Domain{}, false, err
		}
	}
	return where.Domain, true, nil
}
