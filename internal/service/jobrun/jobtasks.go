package jobrun

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// enqueueOnce enqueues a follow-up job for a backup unless one of that type
// is queued, running or done already: a job retried after its runner died
// may have enqueued it before.
func (s *Service) enqueueOnce(ctx context.Context, typ jobs.Type, b domain.Backup) error {
	if has, err := s.hasJob(ctx, b.ID, typ); err != nil || has {
		return err
	}
	return s.k.Enqueue(ctx, typ, b)
}

// hasJob reports whether a backup has a job of type typ that is queued,
// running or succeeded.
func (s *Service) hasJob(ctx context.Context, backupID string, typ jobs.Type) (bool, error) {
	list, err := s.store.Jobs(ctx, store.JobFilter{BackupID: backupID, Type: typ, All: true})
	if err != nil {
		return false, err
	}
	for _, j := range list {
		if j.State != jobs.Failed {
			return true, nil
		}
	}
	return false, nil
}
