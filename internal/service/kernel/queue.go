package kernel

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// enqueue adds a service job for a backup, due now.
func (s *Kernel) Enqueue(ctx context.Context, typ jobs.Type, b domain.Backup) error {
	h, err := s.store.Host(ctx, b.HostID)
	if err != nil {
		return err
	}
	return s.store.EnqueueJob(ctx, jobs.Job{ID: domain.NewID(), Type: typ, BackupID: b.ID, VMID: b.VMID, ZoneID: h.ZoneID,
		State: jobs.Queued, Scheduled: s.clock.Now()})
}
