package schedules

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/chain"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/schedule"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// ScheduleSpec is what a caller asks for.
type ScheduleSpec struct {
	Interval, At, Timezone string
	MaxBackups             int
	Isolated               bool
}

func (s *Service) checkSpec(spec ScheduleSpec) (schedule.Spec, error) {
	parsed, err := schedule.Parse(spec.Interval, spec.At, spec.Timezone)
	if err != nil {
		field, msg, _ := cutField(err.Error())
		return parsed, domain.Invalid(field, "%s", msg)
	}
	if spec.MaxBackups < 0 || spec.MaxBackups > domain.MaxCount {
		return parsed, domain.Invalid("max_backups", "must be 0 (no limit) to %d, got %d", domain.MaxCount, spec.MaxBackups)
	}
	return parsed, nil
}

func cutField(msg string) (string, string, bool) {
	for i := 0; i < len(msg); i++ {
		if msg[i] == ':' {
			return msg[:i], msg[i+2:], true
		}
	}
	return "", msg, false
}

// CreateSchedule adds a backup schedule to a VM (seed: createBackupSchedule).
func (s *Service) CreateSchedule(ctx context.Context, p domain.Principal, ref string, spec ScheduleSpec) (domain.Schedule, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return domain.Schedule{}, err
	}
	parsed, err := s.checkSpec(spec)
	if err != nil {
		return domain.Schedule{}, err
	}
	now := s.k.Clock().Now()
	sc := domain.Schedule{ID: domain.NewID(), VMID: vm.ID, Interval: string(parsed.Interval), At: parsed.At, Timezone: spec.Timezone,
		MaxBackups: spec.MaxBackups, Isolated: spec.Isolated, NextRun: parsed.Next(now), Created: now}
	return sc, s.store.SaveSchedule(ctx, sc)
}

// Schedules lists the schedules of a VM.
func (s *Service) Schedules(ctx context.Context, p domain.Principal, ref string) ([]domain.Schedule, error) {
	vm, err := s.k.VM(ctx, p, ref)
	if err != nil {
		return nil, err
	}
	return s.store.Schedules(ctx, vm.ID)
}

func (s *Service) scheduleFor(ctx context.Context, p domain.Principal, id string) (domain.Schedule, error) {
	if err := domain.ValidateRef("schedule", id); err != nil {
		return domain.Schedule{}, err
	}
	sc, err := s.store.Schedule(ctx, id)
	if err != nil {
		return sc, err
	}
	if _, err := s.k.VM(ctx, p, sc.VMID); err != nil {
		return sc, fmt.Errorf("schedule %q: %w", id, domain.ErrNotFound)
	}
	return sc, nil
}

// UpdateSchedule changes a schedule.
func (s *Service) UpdateSchedule(ctx context.Context, p domain.Principal, id string, spec ScheduleSpec) (domain.Schedule, error) {
	sc, err := s.scheduleFor(ctx, p, id)
	if err != nil {
		return sc, err
	}
	parsed, err := s.checkSpec(spec)
	if err != nil {
		return sc, err
	}
	sc.Interval, sc.At, sc.Timezone, sc.MaxBackups, sc.Isolated = string(parsed.Interval), parsed.At, spec.Timezone, spec.MaxBackups, spec.Isolated
	sc.NextRun = parsed.Next(s.k.Clock().Now())
	return sc, s.store.SaveSchedule(ctx, sc)
}

// DeleteSchedule removes a schedule; its backups stay.
func (s *Service) DeleteSchedule(ctx context.Context, p domain.Principal, id string) error {
	if _, err := s.scheduleFor(ctx, p, id); err != nil {
		return err
	}
	return s.store.DeleteSchedule(ctx, id)
}

// dueSchedulesPerPass bounds the schedules one pass starts; the rest are
// still due at the next pass.
const dueSchedulesPerPass = 1000

// RunSchedules starts the due scheduled backups. Each due run is claimed by
// moving next_run with one conditional update, so it runs exactly once even
// with several servers; a server that was down runs a missed schedule once
// and then follows the plan from now. A VM busy with another operation
// skips that run.
func (s *Service) RunSchedules(ctx context.Context) ([]domain.Operation, error) {
	now := s.k.Clock().Now()
	// Only the due schedules are read (an index on next_run), a page at a
	// time; each one run moves out of the due set.
	list, err := s.store.DueSchedules(ctx, now, dueSchedulesPerPass)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, nil
	}
	admin, err := s.k.EnsureAdmin(ctx)
	if err != nil {
		return nil, err
	}
	system := domain.Principal{AccountID: admin.ID, AccountName: admin.Name, Role: domain.RoleAdmin}
	var ops []domain.Operation
	for _, sc := range list {
		if sc.NextRun.After(now) {
			continue
		}
		spec, err := schedule.Parse(sc.Interval, sc.At, sc.Timezone)
		if err != nil {
			s.k.Log().Warn("schedule", "id", sc.ID, "err", err)
			continue
		}
		won, err := s.store.AdvanceSchedule(ctx, sc.ID, sc.NextRun, spec.Next(now))
		if err != nil || !won {
			continue
		}
		sc := sc
		var retain func(ctx context.Context, vm domain.VM) error
		if sc.MaxBackups > 0 {
			retain = func(ctx context.Context, vm domain.VM) error { return s.retain(ctx, vm, sc) }
		}
		op, err := s.backups.CreateScheduled(ctx, system, sc.VMID, sc.Isolated, false, &sc, retain)
		if err != nil {
			s.k.Log().Warn("scheduled backup skipped", "schedule", sc.ID, "vm", sc.VMID, "err", err)
			continue
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// retain deletes the oldest backups of a schedule beyond its MaxBackups,
// with the rules of `knib backup delete`: a backup others depend on is only
// marked Removed, so retention never breaks a chain. It runs inside the
// backup operation, which holds the VM.
func (s *Service) retain(ctx context.Context, vm domain.VM, sc domain.Schedule) error {
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: vm.ID})
	if err != nil {
		return err
	}
	var mine []domain.Backup
	for _, b := range all {
		if b.ScheduleID == sc.ID && b.Status == domain.BackupBackedUp {
			mine = append(mine, b)
		}
	}
	if len(mine) <= sc.MaxBackups {
		return nil
	}
	var drop []string
	for _, b := range mine[:len(mine)-sc.MaxBackups] {
		// One being compressed goes at a later round.
		if b.CompressionStatus != domain.Compressing && b.CompressionStatus != domain.FinalizingCompression {
			drop = append(drop, b.ID)
		}
	}
	cur, err := s.store.VM(ctx, vm.ID)
	if err != nil {
		return err
	}
	plan, err := chain.PlanDelete(kernel.ToChain(all), cur.ChainHead, drop)
	if err != nil {
		return err
	}
	_, err = s.backups.ApplyDelete(ctx, vm.ID, plan, false)
	return err
}
