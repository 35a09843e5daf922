package accounts

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// SetAccountLimits replaces an account's resource limits (admin).
func (s *Service) SetAccountLimits(ctx context.Context, p domain.Principal, ref string, l domain.Limits) (domain.Account, error) {
	if err := p.RequireAdmin("setting account limits"); err != nil {
		return domain.Account{}, err
	}
	if err := domain.ValidateRef("account", ref); err != nil {
		return domain.Account{}, err
	}
	if err := l.Validate(); err != nil {
		return domain.Account{}, err
	}
	acc, err := s.store.Account(ctx, ref)
	if err != nil {
		return acc, err
	}
	if err := s.store.SetAccountLimits(ctx, acc.ID, l); err != nil {
		return acc, err
	}
	acc.Limits = l
	s.k.Log().Info("account limits set", "account", acc.Name, "vms", l.VMs, "vcpus", l.VCPUs, "memory_bytes", l.MemoryBytes)
	return acc, nil
}

// Account shows one account (admin), with what its VMs use.
func (s *Service) Account(ctx context.Context, p domain.Principal, ref string) (domain.Account, domain.Usage, error) {
	if err := p.RequireAdmin("showing accounts"); err != nil {
		return domain.Account{}, domain.Usage{}, err
	}
	if err := domain.ValidateRef("account", ref); err != nil {
		return domain.Account{}, domain.Usage{}, err
	}
	acc, err := s.store.Account(ctx, ref)
	if err != nil {
		return acc, domain.Usage{}, err
	}
	u, err := s.accountUsage(ctx, acc.ID, "")
	return acc, u, err
}

// accountUsage sums what an account's VMs take: every VM of the catalogue
// it owns (running or not, as CloudStack counts them) except those whose
// domain is gone, plus the validation VMs of its backups that run now (the
// running validation jobs other than exceptJob; a running re-hash is
// counted too, which errs on the safe side).
func (s *Service) accountUsage(ctx context.Context, accountID, exceptJob string) (domain.Usage, error) {
	var u domain.Usage
	vms, err := s.store.ListVMs(ctx, store.VMFilter{AccountID: accountID})
	if err != nil {
		return u, err
	}
	byID := map[string]domain.VM{}
	for _, vm := range vms {
		byID[vm.ID] = vm
		if vm.State != domain.VMMissing {
			u = u.Add(domain.UsageOf(vm))
		}
	}
	running, err := s.store.Jobs(ctx, store.JobFilter{Type: jobs.BackupValidation, Executing: true})
	if err != nil {
		return u, err
	}
	for _, j := range running {
		if j.ID == exceptJob {
			continue
		}
		vm, ok := byID[j.VMID]
		if !ok {
			continue // another account's
		}
		u = u.Add(domain.UsageOf(vm))
	}
	return u, nil
}

// admitValidationVM checks that the validation VM of b (the size of the
// backed-up VM) fits in the limits of the backup's account.
func (s *Service) AdmitValidationVM(ctx context.Context, jobID string, b domain.Backup) error {
	acc, err := s.store.Account(ctx, b.AccountID)
	if err != nil {
		return err
	}
	vm, err := s.store.VM(ctx, b.VMID)
	if err != nil {
		return err
	}
	used, err := s.accountUsage(ctx, acc.ID, jobID)
	if err != nil {
		return err
	}
	if err := acc.Limits.Admit(used, domain.UsageOf(vm)); err != nil {
		return fmt.Errorf("validation VM of backup %s in account %s: %w", b.ID, acc.Name, err)
	}
	return nil
}
