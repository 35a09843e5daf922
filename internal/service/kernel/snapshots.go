package kernel

import (
	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// CheckNoForeignSnapshots refuses a VM, as its host reports it, that has
// snapshots made outside knib (domain.CheckNoForeignSnapshots).
func CheckNoForeignSnapshots(name string, d agentapi.Domain) error {
	snaps := make([]domain.ForeignSnapshot, 0, len(d.Snapshots))
	for _, s := range d.Snapshots {
		snaps = append(snaps, domain.ForeignSnapshot{Name: s.Name, Memory: s.Memory, DiskOnly: s.DiskOnly})
	}
	return domain.CheckNoForeignSnapshots(name, snaps)
}
