package jobrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/remotes"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// runningJobs tracks the jobs this process runs.
type runningJobs struct {
	mu sync.Mutex
	wg sync.WaitGroup
	// wake holds one pending wake-up of the scheduler (see Wake).
	wakeOnce sync.Once
	wake     chan struct{}
}

// wakeCh returns the scheduler's wake-up channel (capacity one).
func (r *runningJobs) wakeCh() chan struct{} {
	r.wakeOnce.Do(func() { r.wake = make(chan struct{}, 1) })
	return r.wake
}

// Wake is signalled when one of this process's jobs ends: its slot is free
// and it may have queued the next job of the backup (a finalize after a
// compression, a validation after a finalize). The scheduler loop runs a
// pass at once instead of waiting for its next tick; several ends before
// the pass make one signal.
func (s *Service) Wake() <-chan struct{} { return s.jobs.wakeCh() }

// wakeScheduler signals Wake without blocking.
func (s *Service) wakeScheduler() {
	select {
	case s.jobs.wakeCh() <- struct{}{}:
	default:
	}
}

// Due jobs are read in pages, oldest first, and a pass reads at most
// duePages of them: the queue may hold 100,000 jobs while the hosts can
// start a handful; the rest wait for the next pass.
const (
	duePage  = 500
	duePages = 10
)

// planDue plans the due jobs: page by page, each planned with the jobs
// running and those the earlier pages assigned, so that every limit holds
// across pages.
func (s *Service) planDue(ctx context.Context, now time.Time, running []jobs.Job, hosts []jobs.Host, limits func(jobs.Job) jobs.Limits) ([]jobs.Assignment, error) {
	if len(hosts) == 0 {
		return nil, nil // no host can run anything: the queue is not even read
	}
	busy := append([]jobs.Job(nil), running...)
	var out []jobs.Assignment
	page := store.Page{Limit: duePage}
	for range duePages {
		due, err := s.store.Jobs(ctx, store.JobFilter{Due: true, Now: now, Page: page})
		if err != nil {
			return nil, err
		}
		// A validation prefers a host other than the VM's own (one query
		// for the page's VMs).
		var vmIDs []string
		for _, j := range due {
			if j.Type == jobs.BackupValidation {
				vmIDs = append(vmIDs, j.VMID)
			}
		}
		hostOf, err := s.store.HostsOfVMs(ctx, vmIDs)
		if err != nil {
			return nil, err
		}
		for i := range due {
			if due[i].Type == jobs.BackupValidation {
				due[i].Avoid = hostOf[due[i].VMID]
			}
		}
		for _, a := range jobs.Plan(now, due, busy, hosts, limits) {
			out = append(out, a)
			j := a.Job
			j.HostID, j.State = a.HostID, jobs.Running
			busy = append(busy, j)
		}
		if len(due) < duePage {
			break
		}
		page.After = store.JobCursor(due[len(due)-1])
	}
	return out, nil
}

// RunJobs is one round of the job scheduler: it reaps jobs whose runner died
// or ran out of time, then claims and starts the jobs the plan allows. owner
// names this server process in the leases.
func (s *Service) RunJobs(ctx context.Context, owner string) error {
	now := s.k.Clock().Now()
	pass := s.passSettings(ctx)
	running, err := s.store.Jobs(ctx, store.JobFilter{Executing: true})
	if err != nil {
		return err
	}
	var live []jobs.Job
	for _, j := range running {
		if j.State == jobs.Running && s.k.PreviousLife(j.LeaseOwner) {
			// A previous life of this server ran it: lost at once (leases.go).
			o := jobs.AfterFailure(now, j.Attempts, pass.Limits(j))
			o.Scheduled = now
			const lost = "lost: the server running it stopped"
			if ok, err := s.store.ReapJobOf(ctx, j.ID, j.LeaseOwner, now, o, lost); err == nil && ok {
				s.k.Log().Warn("lost job reaped", "job", j.ID, "type", j.Type, "next", o.State, "owner", j.LeaseOwner)
				s.jobFailed(ctx, j, o, lost)
			}
			continue
		}
		if l := pass.Limits(j); jobs.Overdue(now, j, l) && !jobs.Lost(now, j) {
			// Its runner lives but is stuck past 2.5 times the timeout: the
			// specification's lost-job rule. Its late result is ignored
			// (FinishJob requires the lease it no longer holds).
			o := jobs.AfterFailure(now, j.Attempts, l)
			o.Scheduled = now
			lost := fmt.Sprintf("lost: still running %.1f times its timeout (%s) after it started", jobs.LostFactor, l.Timeout)
			if ok, err := s.store.ReapJobOf(ctx, j.ID, j.LeaseOwner, now, o, lost); err == nil && ok {
				s.k.Log().Warn("overdue job reaped", "job", j.ID, "type", j.Type, "next", o.State, "owner", j.LeaseOwner)
				s.jobFailed(ctx, j, o, lost)
			}
			continue
		}
		if jobs.Lost(now, j) {
			// The runner died, not the job: retry at once while attempts remain.
			o := jobs.AfterFailure(now, j.Attempts, pass.Limits(j))
			o.Scheduled = now
			const lost = "lost: its runner stopped renewing the lease"
			if ok, err := s.store.ReapJob(ctx, j.ID, now, o, lost); err == nil && ok {
				s.k.Log().Warn("lost job reaped", "job", j.ID, "type", j.Type, "next", o.State)
				s.jobFailed(ctx, j, o, lost)
			}
			continue
		}
		live = append(live, j)
	}
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return err
	}
	var eligible []jobs.Host
	for _, h := range hosts {
		if _, err := s.k.Agent(h.ID); err == nil {
			eligible = append(eligible, jobs.Host{ID: h.ID, ZoneID: h.ZoneID, Enabled: h.Enabled})
		}
	}
	plan, err := s.planDue(ctx, now, live, eligible, pass.Limits)
	if err != nil {
		return err
	}
	// One transaction claims the pass's jobs; a claim another server won
	// first is left out.
	if len(plan) == 0 {
		return nil
	}
	claims := make([]store.JobClaim, len(plan))
	byID := map[string]jobs.Job{}
	for i, a := range plan {
		claims[i] = store.JobClaim{JobID: a.Job.ID, HostID: a.HostID}
		byID[a.Job.ID] = a.Job
	}
	won, err := s.store.ClaimJobs(ctx, claims, owner, now, now.Add(s.k.Lease()))
	if err != nil {
		return fmt.Errorf("claim jobs: %w", err)
	}
	for _, c := range won {
		j := byID[c.JobID]
		j.HostID, j.State, j.Started, j.Attempts = c.HostID, jobs.Running, now, j.Attempts+1
		l := pass.Limits(j) // as seen from the host it runs on
		s.jobs.wg.Add(1)
		go func() {
			defer s.jobs.wg.Done()
			s.runJob(context.WithoutCancel(ctx), ctx, owner, j, l)
		}()
	}
	return nil
}

// WaitJobs waits for the jobs this process started.
func (s *Service) WaitJobs() { s.jobs.wg.Wait() }

// runJob runs one claimed job, renewing its lease, and records the outcome.
// When stop ends (the server shuts down) the job is left to its lease: the
// next server reaps and retries it.
func (s *Service) runJob(ctx, stop context.Context, owner string, j jobs.Job, l jobs.Limits) {
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if l.Timeout > 0 {
		jctx, cancel = context.WithTimeout(jctx, l.Timeout)
		defer cancel()
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-stop.Done():
				cancel()
				return
			case <-time.After(s.k.Lease() / 3):
				ok, err := s.store.RenewLease(ctx, j.ID, owner, s.k.Clock().Now().Add(s.k.Lease()))
				if err != nil {
					// Not renewed this time: the lease still runs; the next tick retries.
					s.k.Log().Warn("renew a job's lease", "job", j.ID, "err", err)
					continue
				}
				if !ok {
					cancel() // the job was taken from us
					return
				}
			}
		}
	}()
	note, err := s.execJob(jctx, j, l)
	close(done)
	if stop.Err() != nil {
		return
	}
	now := s.k.Clock().Now()
	var o jobs.Outcome
	msg := ""
	switch {
	case err == nil:
		o, msg = jobs.Outcome{State: jobs.Succeeded, Attempts: j.Attempts}, note
	case err == errNotNow:
		o = jobs.Outcome{State: jobs.Queued, Scheduled: now.Add(5 * time.Second), Attempts: j.Attempts - 1}
		msg = "waiting: a restore reads this backup"
		if j.Type == jobs.BackupCopy {
			o.Scheduled, msg = now.Add(10*time.Second), "waiting: the backup's compression, or a parent's copy, has not ended"
		}
	default:
		if jctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s: %w", l.Timeout, err)
		}
		o, msg = jobs.AfterFailure(now, j.Attempts, l), err.Error()
		s.k.Log().Warn("job failed", "job", j.ID, "type", j.Type, "backup", j.BackupID, "attempt", j.Attempts, "next", o.State, "err", err)
	}
	if ok, ferr := s.store.FinishJob(ctx, j.ID, owner, o, msg, now); ferr != nil || !ok {
		s.k.Log().Warn("job outcome not recorded", "job", j.ID, "err", ferr)
		return
	}
	defer s.wakeScheduler()
	s.k.Observe().JobAttempt(string(j.Type), attemptOutcome(err, o), now.Sub(j.Started))
	if err != nil && err != errNotNow {
		s.jobFailed(ctx, j, o, msg)
	}
	if err == nil {
		s.k.Log().Info("job done", "job", j.ID, "type", j.Type, "backup", j.BackupID, "attempt", j.Attempts, "owner", owner)
	}
}

// attemptOutcome names an attempt's end for the metrics: succeeded,
// deferred (not now), retry (queued again) or failed (for good).
func attemptOutcome(err error, o jobs.Outcome) string {
	switch {
	case err == nil:
		return "succeeded"
	case err == errNotNow:
		return "deferred"
	case o.State == jobs.Queued:
		return "retry"
	}
	return "failed"
}

// errNotNow asks for the job to run again soon without counting an attempt.
var errNotNow = fmt.Errorf("not now")

// jobFailed records what a failed attempt (why: its error) means for the
// backup.
func (s *Service) jobFailed(ctx context.Context, j jobs.Job, o jobs.Outcome, why string) {
	if j.Type == jobs.BackupValidation {
		if o.State == jobs.Failed {
			if err := s.store.SetValidation(ctx, j.BackupID, domain.UnableToValidate, "the validation job failed: "+why, nil, false, nil); err != nil {
				s.k.Log().Error("record a failed validation", "backup", j.BackupID, "err", err)
			}
		}
		return
	}
	if j.Type == jobs.BackupCopy {
		if o.State == jobs.Failed {
			s.copier.CopyJobFailed(ctx, j.BackupID, why)
		}
		return
	}
	if j.Type == jobs.StartCompression {
		if done, err := s.hasJob(ctx, j.BackupID, jobs.FinalizeCompression); err != nil || done {
			return // the work was done before the runner died
		}
	}
	st := domain.Uncompressed
	if j.Type == jobs.FinalizeCompression {
		st = domain.Compressing // the compressed copies wait for the swap
	}
	if o.State == jobs.Failed {
		st = domain.CompressionError
		s.removeCompressedCopies(ctx, j)
	}
	if err := s.store.SetCompression(ctx, j.BackupID, st, 0, 0, nil); err != nil {
		s.k.Log().Error("record a failed compression", "backup", j.BackupID, "status", st, "err", err)
	}
}

// removeCompressedCopies removes what a compression that failed for good
// left next to the backup files: the compressed copies, whole or partial
// (the specification's finalize "cleanup mode"). The backup files stay as
// they were. Best effort: a copy that stays is logged, and a later
// compression of the backup writes over it.
func (s *Service) removeCompressedCopies(ctx context.Context, j jobs.Job) {
	b, err := s.store.Backup(ctx, j.BackupID)
	if err != nil {
		return // the backup is gone, and its directory with it
	}
	root, err := s.k.StorageRoot(ctx, b)
	if err != nil {
		s.k.Log().Warn("compressed copies left: no storage", "backup", b.ID, "err", err)
		return
	}
	a, err := s.k.Agent(j.HostID)
	if err != nil {
		if a, err = s.k.Agent(b.HostID); err != nil {
			s.k.Log().Warn("compressed copies left: no agent", "backup", b.ID, "err", err)
			return
		}
	}
	// Not a job attempt: the cleanup task gets an id of its own.
	req := agentapi.FinalizeCompressionRequest{InStorage: agentapi.InStorage{Storage: root}, Files: kernel.RestoreFiles(b), Cleanup: true}
	if _, err := kernel.Run(ctx, a, agentapi.FinalizeCompression, req, s.k.KnibTimeoutHost(ctx, b.HostID), nil, 0, 100); err != nil {
		s.k.Log().Warn("compressed copies left", "backup", b.ID, "err", err)
		return
	}
	s.k.Log().Info("compressed copies of a failed compression removed", "backup", b.ID)
}

// jobTask is where a job's agent tasks run: the agent of the job's host,
// the backup's storage, and the job's attempt (their task ids derive from it).
type jobTask struct {
	agent   agentapi.Agent
	in      agentapi.InStorage
	attempt agentapi.JobAttempt
}

// execJob runs one attempt of a job. The note, when not empty, is what a
// succeeded attempt has to say (the job's message).
func (s *Service) execJob(ctx context.Context, j jobs.Job, l jobs.Limits) (note string, err error) {
	b, err := s.store.Backup(ctx, j.BackupID)
	if err != nil {
		return "", nil // the backup is gone: nothing to do
	}
	root, err := s.k.StorageRoot(ctx, b)
	if err != nil {
		return "", err
	}
	a, err := s.k.Agent(j.HostID)
	if err != nil {
		return "", err
	}
	t := jobTask{agent: a, in: agentapi.InStorage{Storage: root}, attempt: kernel.JobAttemptOf(j)}
	switch j.Type {
	case jobs.StartCompression:
		return s.startCompression(ctx, t, b, l)
	case jobs.FinalizeCompression:
		return "", s.finalizeCompression(ctx, t, b, l)
	case jobs.BackupValidation:
		return "", s.validateBackup(ctx, j.ID, t, b, l)
	case jobs.BackupCopy:
		err := s.copier.RunCopyJob(ctx, remotes.CopyTask{Agent: t.agent, Root: t.in.Storage, Attempt: t.attempt, Timeout: l.Timeout}, b)
		if errors.Is(err, remotes.ErrNotNow) {
			return "", errNotNow
		}
		return "", err
	}
	return "", fmt.Errorf("job type %s cannot run yet", j.Type)
}

func (s *Service) startCompression(ctx context.Context, t jobTask, b domain.Backup, l jobs.Limits) (string, error) {
	if b.Status != domain.BackupBackedUp && b.Status != domain.BackupRemoved && b.Status != domain.BackupRestoring {
		return "", nil
	}
	// A runner that died after enqueueing the finalize job had done this
	// job's work: the retry has nothing left to do (jobtasks.go).
	if done, err := s.hasJob(ctx, b.ID, jobs.FinalizeCompression); err != nil || done {
		return "", err
	}
	off, err := s.store.Offering(ctx, b.OfferingID)
	if err != nil {
		return "", err
	}
	h, err := s.store.Host(ctx, b.HostID)
	if err != nil {
		return "", err
	}
	view, err := s.k.Settings(ctx, settings.Target{Host: h.ID, Zone: h.ZoneID, Account: b.AccountID})
	if err != nil {
		return "", err
	}
	if err := s.store.SetCompression(ctx, b.ID, domain.Compressing, 0, 0, nil); err != nil {
		return "", err
	}
	req := agentapi.CompressRequest{InStorage: t.in, JobAttempt: t.attempt, Files: kernel.RestoreFiles(b), Library: string(off.CompressionLibrary),
		Coroutines:    int(view.Int(settings.KeyCompressionCoroutines)),
		RateLimitMBps: view.Int(settings.KeyCompressionRateLimit),
		MinFreeFactor: view.Float(settings.KeyCompressionMinimumFreeStorage)}
	res, err := kernel.Run(ctx, t.agent, agentapi.Compress, req, l.Timeout, nil, 0, 100)
	if err != nil {
		return "", err
	}
	if res.RateLimitSkipped != "" {
		s.k.Log().Warn("compression without its rate limit", "backup", b.ID, "reason", res.RateLimitSkipped)
	}
	var uncompressed int64
	for _, f := range res.Files {
		uncompressed += f.UncompressedSize
	}
	// Still Compressing until the finalize job swaps the files in.
	if err := s.store.SetCompression(ctx, b.ID, domain.Compressing, b.Size, uncompressed, []domain.BackupFile{}); err != nil {
		return "", err
	}
	return res.RateLimitSkipped, s.enqueueOnce(ctx, jobs.FinalizeCompression, b)
}

// finalizeCompression swaps the compressed files in, but never while this
// backup or one that depends on it is being restored.
func (s *Service) finalizeCompression(ctx context.Context, t jobTask, b domain.Backup, l jobs.Limits) error {
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return err
	}
	for _, d := range kernel.ToChain(all) {
		if d.Status != domain.BackupRestoring {
			continue
		}
		for _, anc := range kernel.ChainAncestors(all, d.ID) {
			if anc == b.ID {
				return errNotNow
			}
		}
	}
	if err := s.store.SetCompression(ctx, b.ID, domain.FinalizingCompression, 0, 0, nil); err != nil {
		return err
	}
	res, err := kernel.Run(ctx, t.agent, agentapi.FinalizeCompression, agentapi.FinalizeCompressionRequest{InStorage: t.in, JobAttempt: t.attempt, Files: kernel.RestoreFiles(b)}, l.Timeout, nil, 0, 100)
	if err != nil {
		return err
	}
	var size int64
	var files []domain.BackupFile
	for _, f := range res.Files {
		size += f.Size
		files = append(files, domain.BackupFile{Disk: f.Disk, Size: f.Size, Hash: f.Hash})
	}
	uncompressed := b.UncompressedSize
	if uncompressed == 0 {
		uncompressed = b.Size
	}
	if err := s.store.SetCompression(ctx, b.ID, domain.Compressed, size, uncompressed, files); err != nil {
		return err
	}
	// Validation follows compression.
	if off, err := s.store.Offering(ctx, b.OfferingID); err == nil && off.Validate {
		return s.enqueueOnce(ctx, jobs.BackupValidation, b)
	}
	return nil
}

// Jobs lists one page of service jobs (admin; seed:
// listBackupServiceJobs), by scheduled time; f.Page is the page. The
// cursor is nil on the last page.
func (s *Service) Jobs(ctx context.Context, p domain.Principal, f store.JobFilter) ([]jobs.Job, *store.Cursor, error) {
	page := f.Page
	f.Page = page.OneMore()
	list, err := s.listJobs(ctx, p, f)
	if err != nil {
		return nil, nil, err
	}
	list, next := store.Cut(page, list, store.JobCursor)
	return list, next, nil
}

func (s *Service) listJobs(ctx context.Context, p domain.Principal, f store.JobFilter) ([]jobs.Job, error) {
	if err := p.RequireAdmin("listing jobs"); err != nil {
		return nil, err
	}
	for field, v := range map[string]string{"id": f.ID, "backup": f.BackupID, "host": f.HostID, "zone": f.ZoneID} {
		if v != "" {
			if err := domain.ValidateRef(field, v); err != nil {
				return nil, err
			}
		}
	}
	if f.HostID != "" {
		h, err := s.store.Host(ctx, f.HostID)
		if err != nil {
			return nil, err
		}
		f.HostID = h.ID
	}
	if f.ZoneID != "" {
		z, err := s.store.Zone(ctx, f.ZoneID)
		if err != nil {
			return nil, err
		}
		f.ZoneID = z.ID
	}
	if f.Type != "" {
		if _, ok := jobs.ParseType(string(f.Type)); !ok {
			return nil, domain.Invalid("type", "unknown job type %q, want StartCompression, FinalizeCompression, BackupValidation or BackupCopy", f.Type)
		}
	}
	f.Now = s.k.Clock().Now()
	return s.store.Jobs(ctx, f)
}
