package kernel

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// DefaultJobLease is how long a claim on a running job lasts without
// renewal; a runner renews it every third of that while the job runs.
const DefaultJobLease = 60 * time.Second

// SetJobLease changes the job lease (tests use short ones).
func (s *Kernel) SetJobLease(d time.Duration) { s.jobLease = d }

func (s *Kernel) Lease() time.Duration {
	if s.jobLease > 0 {
		return s.jobLease
	}
	return DefaultJobLease
}

// enqueue adds a service job for a backup, due now.
func (s *Kernel) Enqueue(ctx context.Context, typ jobs.Type, b domain.Backup) error {
	h, err := s.store.Host(ctx, b.HostID)
	if err != nil {
		return err
	}
	return s.store.EnqueueJob(ctx, jobs.Job{ID: domain.NewID(), Type: typ, BackupID: b.ID, VMID: b.VMID, ZoneID: h.ZoneID,
		State: jobs.Queued, Scheduled: s.clock.Now()})
}

// chainAncestors returns id and its ancestors' ids.
func ChainAncestors(all []domain.Backup, id string) []string {
	byID := map[string]domain.Backup{}
	for _, b := range all {
		byID[b.ID] = b
	}
	var out []string
	for b, ok := byID[id]; ok && len(out) <= len(all); b, ok = byID[b.ParentID] {
		out = append(out, b.ID)
	}
	return out
}
