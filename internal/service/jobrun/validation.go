package jobrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// validateBackup runs a BackupValidation job. The first validation boots a
// throw-away VM from the backup; after a valid boot the files' hashes are
// recorded, and every later validation (scheduled every
// backup.validation.interval) re-hashes the files: any change is NotValid.
func (s *Service) validateBackup(ctx context.Context, jobID string, t jobTask, b domain.Backup, l jobs.Limits) error {
	if b.Status != domain.BackupBackedUp && b.Status != domain.BackupRestoring {
		return nil
	}
	h, err := s.store.Host(ctx, b.HostID)
	if err != nil {
		return err
	}
	view, err := s.k.Settings(ctx, settings.Target{Host: h.ID, Zone: h.ZoneID, Account: b.AccountID})
	if err != nil {
		return err
	}
	previous := b.ValidationStatus
	// A boot check creates a VM: with the account's setting, it must fit
	// in the account's limits, else the job fails (and is retried as
	// configured) without touching anything.
	if previous != domain.Valid && view.Bool(settings.KeyEnforceLimitOnValidationVM) {
		if err := s.accounts.AdmitValidationVM(ctx, jobID, b); err != nil {
			s.k.Log().Warn("validation VM refused by the account's limits", "backup", b.ID, "err", err)
			return err
		}
	}
	if err := s.store.SetValidation(ctx, b.ID, domain.Validating, "", nil, false, nil); err != nil {
		return err
	}
	var v verdict
	if previous == domain.Valid {
		v, err = s.rehash(ctx, t, b, l)
	} else {
		v, err = s.bootCheck(ctx, t, b, view, l)
	}
	if err != nil {
		if werr := s.store.SetValidation(ctx, b.ID, previous, "", nil, false, nil); werr != nil {
			return errors.Join(err, fmt.Errorf("restore the validation status of backup %s: %w", b.ID, werr))
		}
		return err
	}
	// A failed validation ends the chain first, so that whoever sees the
	// verdict also sees its consequence.
	if v.status == domain.NotValid && view.Bool(settings.KeyValidationEndChainOnFail) {
		s.endChainIfIn(ctx, b)
	}
	if err := s.store.SetValidation(ctx, b.ID, v.status, v.reason, v.steps, v.shot, v.hashes); err != nil {
		return err
	}
	s.k.Log().Info("backup validated", "backup", b.ID, "status", v.status, "reason", v.reason, "steps", len(v.steps))
	if v.status == domain.Valid {
		// Re-validate periodically.
		next := jobs.Job{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: b.ID, VMID: b.VMID, ZoneID: h.ZoneID,
			State: jobs.Queued, Scheduled: s.k.Clock().Now().Add(view.Duration(settings.KeyValidationInterval))}
		return s.store.EnqueueJob(ctx, next)
	}
	return nil
}

// verdict is what one validation found: the status and its reason, the
// steps it ran, whether it took a screenshot, and the files' hashes to
// record (after a valid boot).
type verdict struct {
	status domain.ValidationStatus
	reason string
	steps  []domain.ValidationStepRun
	shot   bool
	hashes map[string]string
}

// bootCheck boots the backup in a throw-away VM and runs the offering's steps.
func (s *Service) bootCheck(ctx context.Context, t jobTask, b domain.Backup, view settings.View, l jobs.Limits) (verdict, error) {
	off, err := s.store.Offering(ctx, b.OfferingID)
	if err != nil {
		return verdict{}, err
	}
	details, err := s.store.VMDetails(ctx, b.VMID)
	if err != nil {
		return verdict{}, err
	}
	dur := func(key string) time.Duration {
		d, err := view.VMDuration(key, details)
		if err != nil {
			d, _ = view.VMDuration(key, nil)
		}
		return d
	}
	req := agentapi.ValidateRequest{InStorage: t.in, JobAttempt: t.attempt, BackupID: b.ID, Dir: b.Dir, Files: kernel.RestoreFiles(b), Lifetime: l.Timeout,
		BootTimeout:    dur(settings.DetailValidationBootTimeout),
		ScreenshotWait: dur(settings.DetailValidationScreenshotWait),
		CommandTimeout: dur(settings.DetailValidationCommandTimeout),
		Command:        details[settings.DetailValidationCommand],
		Args:           settings.SplitCommandArguments(details[settings.DetailValidationCommandArguments]),
		Expected:       details[settings.DetailValidationCommandExpectedResult]}
	for _, st := range off.ValidationSteps {
		req.Steps = append(req.Steps, string(st))
	}
	// The files' hashes, recorded after a valid boot for the periodic
	// checks, are computed while the validation VM boots (both only read
	// the backup files); they are used only if the verdict is Valid.
	hctx, stopHash := context.WithCancel(ctx)
	defer stopHash()
	type hashed struct {
		hashes map[string]string
		err    error
	}
	hashDone := make(chan hashed, 1)
	go func() {
		h, err := s.hashes(hctx, t, b, l)
		hashDone <- hashed{h, err}
	}()
	res, err := kernel.Run(ctx, t.agent, agentapi.Validate, req, l.Timeout, nil, 0, 100)
	if err != nil {
		stopHash()
		<-hashDone
		return verdict{status: domain.UnableToValidate, reason: "the validation VM could not run: " + err.Error()}, nil
	}
	v := verdict{steps: stepsOf(res), shot: res.Screenshot != ""}
	if len(res.Reasons) > 0 {
		stopHash()
		<-hashDone
		v.status, v.reason = domain.NotValid, strings.Join(res.Reasons, "; ")
		return v, nil
	}
	// A valid boot: (re)record the files' hashes for the periodic checks.
	h := <-hashDone
	if h.err != nil {
		return verdict{}, h.err
	}
	v.hashes = h.hashes
	v.status = domain.Valid
	return v, nil
}

// stepsOf is what the agent says each validation step did, as recorded on
// the backup.
func stepsOf(res agentapi.ValidateResult) []domain.ValidationStepRun {
	var out []domain.ValidationStepRun
	for _, st := range res.Steps {
		out = append(out, domain.ValidationStepRun{Step: domain.ValidationStep(st.Step), Outcome: domain.StepOutcome(st.Outcome), Detail: st.Detail})
	}
	return out
}

func (s *Service) hashes(ctx context.Context, t jobTask, b domain.Backup, l jobs.Limits) (map[string]string, error) {
	res, err := kernel.Run(ctx, t.agent, agentapi.Hash, agentapi.HashRequest{InStorage: t.in, JobAttempt: t.attempt, Files: kernel.RestoreFiles(b)}, l.Timeout, nil, 0, 100)
	if err != nil {
		return nil, err
	}
	return res.Hashes, nil
}

// rehash compares the files with their recorded hashes, with the agent's
// integrity check (the one every restore runs). A mismatch makes the
// backup damaged: restores of it are refused unless accepted.
func (s *Service) rehash(ctx context.Context, t jobTask, b domain.Backup, l jobs.Limits) (verdict, error) {
	var expect []agentapi.ChainFile
	for _, f := range b.Files {
		expect = append(expect, agentapi.ChainFile{BackupID: b.ID, Disk: f.Disk, Path: f.Path, Hash: f.Hash})
	}
	res, err := kernel.Run(ctx, t.agent, agentapi.Hash, agentapi.HashRequest{InStorage: t.in, JobAttempt: t.attempt, Files: kernel.RestoreFiles(b), Expected: expect},
		l.Timeout, nil, 0, 100)
	if err != nil {
		why := "cannot read the backup files: " + err.Error()
		return verdict{status: domain.UnableToValidate, reason: why, steps: hashStep(domain.StepFailed, why)}, nil
	}
	if len(res.Damaged) > 0 {
		var files []string
		for _, d := range res.Damaged {
			files = append(files, fmt.Sprintf("file %s hashes to %s, recorded %s", d.Path, d.Found, d.Recorded))
		}
		why := domain.DamagedReason + strings.Join(files, "; ") + " (found by the periodic re-hash)"
		return verdict{status: domain.NotValid, reason: why, steps: hashStep(domain.StepFailed, why)}, nil
	}
	return verdict{status: domain.Valid, steps: hashStep(domain.StepPassed, "")}, nil
}

// hashStep is the one step a re-validation runs.
func hashStep(o domain.StepOutcome, detail string) []domain.ValidationStepRun {
	return []domain.ValidationStepRun{{Step: domain.StepHash, Outcome: o, Detail: detail}}
}

// endChainIfIn ends the VM's chain when the backup belongs to it.
func (s *Service) endChainIfIn(ctx context.Context, b domain.Backup) {
	vm, err := s.store.VM(ctx, b.VMID)
	if err != nil || vm.ChainHead == "" {
		return
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return
	}
	for _, id := range kernel.ChainAncestors(all, vm.ChainHead) {
		if id != b.ID {
			continue
		}
		release, err := s.k.LockVM(ctx, vm, "ending the chain after a failed validation")
		if err != nil {
			return
		}
		defer release()
		a, err := s.k.Agent(vm.HostID)
		if err != nil {
			return
		}
		if err := s.k.EndChain(ctx, vm, a, s.k.KnibTimeout(ctx, vm)); err != nil {
			s.k.Log().Warn("end the chain after a failed validation", "vm", vm.Name, "err", err)
		}
		return
	}
}

// Screenshot returns the PNG of a backup's validation.
func (s *Service) Screenshot(ctx context.Context, p domain.Principal, id string) ([]byte, error) {
	b, err := s.k.Backup(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if !b.HasScreenshot {
		return nil, fmt.Errorf("backup %s has no validation screenshot: %w", b.ID, domain.ErrNotFound)
	}
	root, err := s.k.StorageRoot(ctx, b)
	if err != nil {
		return nil, err
	}
	png, err := os.ReadFile(filepath.Join(root, b.Dir, "screenshot.png"))
	if err != nil {
		return nil, fmt.Errorf("read the screenshot of backup %s: %v: %w", b.ID, err, domain.ErrUnavailable)
	}
	return png, nil
}

// CleanupValidations removes validation VMs and overlays left by a previous
// run (the process died mid-validation).
func (s *Service) CleanupValidations(ctx context.Context, a agentapi.Agent) {
	// Validation overlays live in the storage of the backup they boot.
	var req agentapi.CleanupValidationRequest
	list, err := s.store.ListStorages(ctx, "")
	if err != nil {
		s.k.Log().Warn("cleanup of validation VMs: backup storages", "err", err)
		return
	}
	for _, st := range list {
		req.Storages = append(req.Storages, st.Path)
	}
	// Validation VMs of jobs still running (on this or another server)
	// stay; their jobs end them.
	keep, err := s.liveValidations(ctx)
	if err != nil {
		s.k.Log().Warn("cleanup of validation VMs: running validations", "err", err)
		return
	}
	req.Keep = keep
	if _, err := kernel.Run(ctx, a, agentapi.CleanupValidation, req, time.Minute, nil, 0, 100); err != nil {
		s.k.Log().Warn("cleanup of validation VMs", "err", err)
	}
}

// ValidateNow queues a validation of a backup to run at once (a backup that
// was validated before is re-hashed; otherwise it is booted).
func (s *Service) ValidateNow(ctx context.Context, p domain.Principal, id string) (jobs.Job, error) {
	b, err := s.k.Backup(ctx, p, id)
	if err != nil {
		return jobs.Job{}, err
	}
	if b.Status != domain.BackupBackedUp {
		return jobs.Job{}, fmt.Errorf("backup %s is %s; only BackedUp backups are validated: %w", b.ID, b.Status, domain.ErrConflict)
	}
	h, err := s.store.Host(ctx, b.HostID)
	if err != nil {
		return jobs.Job{}, err
	}
	j := jobs.Job{ID: domain.NewID(), Type: jobs.BackupValidation, BackupID: b.ID, VMID: b.VMID, ZoneID: h.ZoneID,
		State: jobs.Queued, Scheduled: s.k.Clock().Now()}
	return j, s.store.EnqueueJob(ctx, j)
}
