package service

import (
	"context"
	"log/slog"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/accounts"
	"github.com/knib/knib/internal/service/audit"
	"github.com/knib/knib/internal/service/backups"
	"github.com/knib/knib/internal/service/config"
	"github.com/knib/knib/internal/service/dashboard"
	"github.com/knib/knib/internal/service/files"
	"github.com/knib/knib/internal/service/hosts"
	"github.com/knib/knib/internal/service/jobrun"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/service/notify"
	"github.com/knib/knib/internal/service/offerings"
	"github.com/knib/knib/internal/service/recovery"
	"github.com/knib/knib/internal/service/remotes"
	"github.com/knib/knib/internal/service/restores"
	"github.com/knib/knib/internal/service/schedules"
	"github.com/knib/knib/internal/service/snapshots"
	"github.com/knib/knib/internal/service/storages"
	"github.com/knib/knib/internal/service/vms"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// Service is the composition of the use cases, one field per feature. It
// has no behaviour of its own: callers reach a use case through its feature
// (svc.Backups.CreateBackup, svc.Restores.RestoreBackup, ...).
type Service struct {
	Kernel    *kernel.Kernel
	Accounts  *accounts.Service
	Hosts     *hosts.Service
	VMs       *vms.Service
	Offerings *offerings.Service
	Config    *config.Service
	Storages  *storages.Service
	Backups   *backups.Service
	Restores  *restores.Service
	Files     *files.Service
	Snapshots *snapshots.Service
	Jobs      *jobrun.Service
	Schedules *schedules.Service
	Recovery  *recovery.Service
	Dashboard *dashboard.Service
	Audit     *audit.Service
	Notify    *notify.Service
	Remotes   *remotes.Service
}

// New wires the use cases over one catalogue.
func New(st store.Store, clk clock.Clock, log *slog.Logger) *Service {
	k := kernel.New(st, clk, log)
	s := &Service{Kernel: k}
	s.Accounts = accounts.New(k, st)
	s.VMs = vms.New(k, st)
	s.Offerings = offerings.New(k, st)
	s.Config = config.New(k, st)
	s.Storages = storages.New(k, st)
	s.Remotes = remotes.New(k, st)
	s.Backups = backups.New(k, st, s.Storages)
	s.Backups.SetAfterCommit(s.Remotes.BackupTaken)
	s.Restores = restores.New(k, st)
	s.Restores.SetRemotes(s.Remotes)
	s.Files = files.New(k, st)
	s.Snapshots = snapshots.New(k, st)
	s.Jobs = jobrun.New(k, st, s.Accounts, s.Remotes)
	s.Schedules = schedules.New(k, st, s.Backups)
	s.Recovery = recovery.New(k, st, s.Restores, s.Storages)
	s.Hosts = hosts.New(k, st, s.Jobs, s.Recovery)
	s.Dashboard = dashboard.New(k, st)
	s.Audit = audit.New(k, st)
	s.Notify = notify.New(st, clk, log, func(ctx context.Context) (notify.Config, error) {
		v, err := k.Settings(ctx, settings.Target{})
		return notify.ConfigFrom(v), err
	})
	s.Notify.SetScreenshots(func(ctx context.Context, backupID string) ([]byte, error) {
		return s.Jobs.Screenshot(ctx, domain.Principal{Role: domain.RoleAdmin}, backupID)
	})
	return s
}
