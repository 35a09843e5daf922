package schedules

import (
	"context"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// Store is the part of the catalogue (store.Store) that these use cases use;
// its methods keep store.Store's contracts.
type Store interface {
	AdvanceSchedule(ctx context.Context, id string, prev, next time.Time) (bool, error)
	DeleteSchedule(ctx context.Context, id string) error
	DueSchedules(ctx context.Context, now time.Time, limit int) ([]domain.Schedule, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	SaveSchedule(ctx context.Context, sc domain.Schedule) error // insert or update
	Schedule(ctx context.Context, id string) (domain.Schedule, error)
	Schedules(ctx context.Context, vmID string) ([]domain.Schedule, error)
	VM(ctx context.Context, idOrName string) (domain.VM, error)
}
