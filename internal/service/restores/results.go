package restores

import (
	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// restoredDisks converts the agent's restored disks to the result form.
func restoredDisks(ds []agentapi.RestoredDisk) []domain.RestoredDisk {
	if ds == nil {
		return nil
	}
	out := make([]domain.RestoredDisk, 0, len(ds))
	for _, d := range ds {
		out = append(out, domain.RestoredDisk{Target: d.Target, Path: d.Path, Verified: d.Verified, Attached: d.Attached})
	}
	return out
}

func boolPtr(b bool) *bool { return &b }
