package jobrun

import (
	"context"

	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// liveValidations returns the backups that validation jobs with a live
// lease are validating now: their validation VMs must survive a cleanup.
func (s *Service) liveValidations(ctx context.Context) ([]string, error) {
	running, err := s.store.Jobs(ctx, store.JobFilter{Executing: true})
	if err != nil {
		return nil, err
	}
	now := s.k.Clock().Now()
	var keep []string
	for _, j := range running {
		if j.Type != jobs.BackupValidation || j.LeaseUntil.IsZero() || now.After(j.LeaseUntil) {
			continue
		}
		if s.k.PreviousLife(j.LeaseOwner) {
			continue
		}
		keep = append(keep, j.BackupID)
	}
	return keep, nil
}
