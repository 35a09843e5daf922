package httpapi

import (
	"context"
	"net/http"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/dashboard"
)

func (h *Handler) registerDashboard() {
	add(h, "GET", "/dashboard", "dashboard", "Every VM the caller may see with its protection and what needs a human, worst first; the backup storages' space for admins", http.StatusOK,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Dashboard, error) {
			d, err := h.svc.Dashboard.Dashboard(ctx, p)
			if err != nil {
				return api.Dashboard{}, err
			}
			return dashboardToAPI(d), nil
		})
}

func dashboardToAPI(d dashboard.Dashboard) api.Dashboard {
	out := api.Dashboard{VMs: make([]api.DashboardVM, 0, len(d.Rows)), Storages: []api.DashboardStorage{}, Generated: d.Generated}
	for _, r := range d.Rows {
		v := api.DashboardVM{ID: r.VMID, Name: r.Name, Account: r.Account, Host: r.Host, State: string(r.EffectiveState()), Offering: r.Offering,
			ChainHead: r.ChainHead, ChainLength: r.ChainLength, Backups: r.Backups, LastGood: optTime(r.LastGoodAt),
			StoredBytes: r.StoredBytes, NextRun: optTime(r.NextRun), Severity: r.Severity, Attention: make([]api.Attention, 0, len(r.Attention))}
		if r.LastBackupID != "" {
			v.LastBackup = &api.DashboardEvent{BackupID: r.LastBackupID, Status: string(r.LastBackupStatus), At: r.LastBackupAt}
		}
		if r.ProvenBackupID != "" {
			v.Proven = &api.DashboardEvent{BackupID: r.ProvenBackupID, At: r.ProvenAt, How: r.ProvenBy}
			if r.ProvenBy == "validation" {
				v.Proven.Status = string(domain.Valid)
			}
		}
		for _, a := range r.Attention {
			v.Attention = append(v.Attention, api.Attention{Severity: a.Severity, What: a.What})
		}
		out.VMs = append(out.VMs, v)
	}
	for _, s := range d.Storages {
		out.Storages = append(out.Storages, api.DashboardStorage{Name: s.Name, Capacity: s.Capacity, Free: s.Free, Used: s.Used,
			Measured: optTime(s.Measured), Low: s.Low})
	}
	return out
}
