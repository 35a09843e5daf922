package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// racers is how many goroutines compete for each row: more than a
// PostgreSQL pool's connections would serialise, so claims really overlap.
const racers = 24

// race runs fn on racers goroutines released together and returns how many
// reported a win; errors fail the test.
func race(t *testing.T, fn func(i int) (bool, error)) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
		errs  []error
		start = make(chan struct{})
	)
	for i := 0; i < racers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			ok, err := fn(i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wins++
			}
		}(i)
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	return wins
}

// testConcurrentClaims races many claimers (as several server processes
// would) for the same jobs, VM lock, schedule run and zone: each has
// exactly one winner.
func testConcurrentClaims(t *testing.T, s store.Store) {
	ctx := context.Background()
	for round := 0; round < 5; round++ {
		j := jobs.Job{ID: domain.NewID(), Type: jobs.StartCompression, BackupID: "b", VMID: "v", ZoneID: "z", State: jobs.Queued, Scheduled: t0}
		must(t, s.EnqueueJob(ctx, j))
		wins := race(t, func(i int) (bool, error) {
			return s.ClaimJob(ctx, j.ID, fmt.Sprintf("srv%d", i), "h", t0, t0.Add(time.Minute))
		})
		got, err := s.Job(ctx, j.ID)
		must(t, err)
		if wins != 1 || got.State != jobs.Running || got.Attempts != 1 || got.LeaseOwner == "" {
			t.Fatalf("round %d: %d claims won, job %+v", round, wins, got)
		}
		// Only the owner finishes it, once.
		done := race(t, func(i int) (bool, error) {
			return s.FinishJob(ctx, j.ID, fmt.Sprintf("srv%d", i), jobs.Outcome{State: jobs.Succeeded, Attempts: 1}, "", t0.Add(time.Second))
		})
		if done != 1 {
			t.Fatalf("round %d: %d finishes", round, done)
		}
	}

	acc, h := seedHost(t, s)
	vm := domain.VM{ID: domain.NewID(), Name: "racy", State: domain.VMRunning}
	must(t, s.SyncHostVMs(ctx, h.ID, []domain.VM{vm}, acc.ID, t0))
	wins := race(t, func(i int) (bool, error) {
		err := s.AcquireVM(ctx, vm.ID, fmt.Sprintf("op%d", i))
		if err == nil {
			return true, nil
		}
		if errorsIsConflict(err) {
			return false, nil
		}
		return false, err
	})
	if wins != 1 {
		t.Fatalf("%d operations acquired the VM", wins)
	}

	sc := domain.Schedule{ID: domain.NewID(), VMID: vm.ID, Interval: "hourly", At: "00", NextRun: t0, Created: t0}
	must(t, s.SaveSchedule(ctx, sc))
	wins = race(t, func(i int) (bool, error) { return s.AdvanceSchedule(ctx, sc.ID, t0, t0.Add(time.Hour)) })
	if wins != 1 {
		t.Fatalf("%d servers ran the same scheduled backup", wins)
	}

	ids := make(chan string, racers)
	race(t, func(i int) (bool, error) {
		z, err := s.EnsureZone(ctx, "zone-race")
		ids <- z.ID
		return err == nil, err
	})
	close(ids)
	first := <-ids
	for id := range ids {
		if id != first || id == "" {
			t.Fatalf("EnsureZone returned zones %q and %q", first, id)
		}
	}
}

func errorsIsConflict(err error) bool { return errors.Is(err, domain.ErrConflict) }
