package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/config"
	"github.com/knib/knib/internal/service/restores"
	"github.com/knib/knib/internal/service/schedules"
	"github.com/knib/knib/internal/store"
)

// Who is the answer of GET /whoami.
type Who struct {
	Account string `json:"account"`
	Role    string `json:"role"`
}

// Health is the answer of GET /health.
type Health struct {
	Status string `json:"status"`
}

type none = struct{}

func (h *Handler) register() {
	svc := h.svc
	ok, created, accepted := http.StatusOK, http.StatusCreated, http.StatusAccepted

	add(h, "GET", "/health", "meta", "Liveness of the server (no token needed)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "ok"}, nil
		})
	h.routes[len(h.routes)-1].public = true
	h.routes = append(h.routes, route{method: "GET", path: "/openapi.json", tag: "meta", summary: "This API's OpenAPI 3.1 document", status: ok, public: true,
		query: typeOf[none](), body: typeOf[api.Empty](), resp: typeOf[map[string]any](),
		serve: func(w http.ResponseWriter, r *http.Request, _ domain.Principal) error {
			w.Header().Set("Content-Type", "application/json")
			_, err := w.Write(h.OpenAPI())
			return err
		}})
	add(h, "GET", "/whoami", "meta", "The caller's account and role", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Who, error) {
			return Who{Account: p.AccountName, Role: string(p.Role)}, nil
		})

	// Offerings.
	add(h, "POST", "/offerings", "offerings", "Create a backup offering (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.OfferingCreate) (api.Offering, error) {
			o, err := svc.Offerings.CreateOffering(ctx, p, domain.OfferingSpec{Name: b.Name, Description: b.Description, Compress: b.Compress,
				Validate: b.Validate, ValidationSteps: b.ValidationSteps, AllowQuickRestore: b.AllowQuickRestore,
				AllowExtractFile: b.AllowExtractFile, BackupChainSize: b.BackupChainSize, CompressionLibrary: b.CompressionLibrary,
				StorageTag: b.StorageTag})
			return offeringToAPI(o), err
		})
	add(h, "GET", "/offerings", "offerings", "List backup offerings (admin); removed ones only with show_removed", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.OfferingQuery, _ api.Empty) ([]api.Offering, error) {
			list, err := svc.Offerings.ListOfferings(ctx, p, store.OfferingFilter{ID: q.ID, Compress: q.Compress, Validate: q.Validate,
				AllowQuickRestore: q.AllowQuickRestore, AllowExtractFile: q.AllowExtractFile, ShowRemoved: q.ShowRemoved})
			return mapList(list, offeringToAPI), err
		})
	add(h, "GET", "/offerings/{id}", "offerings", "Show one offering (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Offering, error) {
			o, err := svc.Offerings.Offering(ctx, p, r.PathValue("id"))
			return offeringToAPI(o), err
		})
	add(h, "DELETE", "/offerings/{id}", "offerings", "Remove an offering (admin); refused while VMs are assigned to it", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Offering, error) {
			id := r.PathValue("id")
			if err := svc.Offerings.DeleteOffering(ctx, p, id); err != nil {
				return api.Offering{}, err
			}
			o, err := svc.Offerings.Offering(ctx, p, id)
			return offeringToAPI(o), err
		})

	// Hosts and inventory.
	add(h, "GET", "/hosts", "hosts", "List hosts (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.Host, error) {
			list, err := svc.Hosts.ListHosts(ctx, p)
			return mapList(list, func(x domain.Host) api.Host { return h.hostToAPI(ctx, x) }), err
		})
	add(h, "POST", "/inventory/refresh", "hosts", "Re-read every host's domains (admin); answers with an operation", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Operation, error) {
			op, err := svc.Hosts.RefreshInventory(ctx, p)
			return operationToAPI(op), err
		})

	// VMs.
	add(h, "GET", "/vms", "vms", "List the VMs the caller may see", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.VMQuery, _ api.Empty) (paged[api.VM], error) {
			page, err := storePage(q.Paging)
			if err != nil {
				return paged[api.VM]{}, err
			}
			list, next, err := svc.VMs.ListVMs(ctx, p, q.Host, page)
			return pageOf(list, next, func(v domain.VM) api.VM { return h.vmToAPI(ctx, v) }), err
		})
	add(h, "GET", "/vms/{vm}", "vms", "Show a VM (by name or uuid) with its disks and backing chains", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.VM, error) {
			v, err := svc.VMs.ShowVM(ctx, p, r.PathValue("vm"))
			return h.vmToAPI(ctx, v), err
		})
	add(h, "POST", "/vms/{vm}/assign", "vms", "Assign a VM to a backup offering", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.VMAssign) (api.VM, error) {
			v, err := svc.VMs.AssignVM(ctx, p, r.PathValue("vm"), b.OfferingID)
			return h.vmToAPI(ctx, v), err
		})
	add(h, "POST", "/vms/{vm}/unassign", "vms", "Remove a VM from its backup offering", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.VM, error) {
			v, err := svc.VMs.UnassignVM(ctx, p, r.PathValue("vm"))
			return h.vmToAPI(ctx, v), err
		})
	add(h, "PUT", "/vms/{vm}/owner", "vms", "Give a VM to an account (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.VMOwner) (api.VM, error) {
			v, err := svc.VMs.SetVMOwner(ctx, p, r.PathValue("vm"), b.Account)
			return h.vmToAPI(ctx, v), err
		})
	add(h, "POST", "/vms/{vm}/guest-exec", "vms", "Run a program in the guest through its guest agent (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.GuestExec) (api.GuestExecResult, error) {
			timeout := 30 * time.Second
			if b.TimeoutSec != 0 {
				timeout = time.Duration(b.TimeoutSec) * time.Second
			}
			res, err := svc.VMs.GuestExec(ctx, p, r.PathValue("vm"), b.Path, b.Args, timeout)
			return api.GuestExecResult{ExitCode: res.ExitCode, Stdout: string(res.Stdout), Stderr: string(res.Stderr)}, err
		})
	add(h, "POST", "/vms/{vm}/disks", "vms", "Create an empty disk and attach it (the next backup copies it full)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.AttachDisk) (api.VM, error) {
			v, err := svc.VMs.AttachDisk(ctx, p, r.PathValue("vm"), b.Size, b.Target)
			return h.vmToAPI(ctx, v), err
		})
	add(h, "DELETE", "/vms/{vm}/disks/{target}", "vms", "Detach a disk; its backup delta is merged first and its file stays", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.VM, error) {
			v, err := svc.VMs.DetachDisk(ctx, p, r.PathValue("vm"), r.PathValue("target"))
			return h.vmToAPI(ctx, v), err
		})
	add(h, "GET", "/vms/{vm}/details", "vms", "List a VM's details (per-VM validation configuration)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.VMDetail, error) {
			list, err := svc.Config.VMDetails(ctx, p, r.PathValue("vm"))
			return mapList(list, vmDetailToAPI), err
		})
	add(h, "PUT", "/vms/{vm}/details/{key}", "vms", "Set a VM detail; timeouts are read-only for users", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.VMDetailUpdate) ([]api.VMDetail, error) {
			list, err := svc.Config.SetVMDetail(ctx, p, r.PathValue("vm"), r.PathValue("key"), b.Value)
			return mapList(list, vmDetailToAPI), err
		})
	add(h, "DELETE", "/vms/{vm}/details/{key}", "vms", "Remove a VM detail", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.VMDetail, error) {
			list, err := svc.Config.DeleteVMDetail(ctx, p, r.PathValue("vm"), r.PathValue("key"))
			return mapList(list, vmDetailToAPI), err
		})

	// Settings.
	add(h, "GET", "/settings", "settings", "List every setting with its effective value at a scope (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.SettingQuery, _ api.Empty) ([]api.Setting, error) {
			ref, err := scopeRef(q)
			if err != nil {
				return nil, err
			}
			list, err := svc.Config.ListSettings(ctx, p, ref)
			return mapList(list, settingToAPI), err
		})
	add(h, "PUT", "/settings/{key}", "settings", "Set a setting globally or at a zone, host or account (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.SettingUpdate) (api.Setting, error) {
			es, err := svc.Config.SetSetting(ctx, p, r.PathValue("key"), b.Value, config.ScopeRef{Zone: b.Zone, Host: b.Host, Account: b.Account})
			return settingToAPI(es), err
		})
	add(h, "DELETE", "/settings/{key}", "settings", "Remove a stored value so the next scope's value applies (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.SettingQuery, _ api.Empty) (api.Setting, error) {
			ref, err := scopeRef(q)
			if err != nil {
				return api.Setting{}, err
			}
			es, err := svc.Config.ResetSetting(ctx, p, r.PathValue("key"), ref)
			return settingToAPI(es), err
		})

	// Accounts and tokens.
	add(h, "POST", "/accounts", "accounts", "Create an account (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.AccountCreate) (api.Account, error) {
			a, err := svc.Accounts.CreateAccount(ctx, p, b.Name)
			return accountToAPI(a, nil), err
		})
	add(h, "GET", "/accounts/{account}", "accounts", "Show an account (admin): its resource limits and what its VMs use", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Account, error) {
			a, u, err := svc.Accounts.Account(ctx, p, r.PathValue("account"))
			return accountToAPI(a, &u), err
		})
	add(h, "PUT", "/accounts/{account}/limits", "accounts", "Set an account's resource limits (admin); limits not given are kept", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.LimitsUpdate) (api.Account, error) {
			a, _, err := svc.Accounts.Account(ctx, p, r.PathValue("account"))
			if err != nil {
				return api.Account{}, err
			}
			l := a.Limits
			for _, f := range []struct {
				from *int64
				to   *int64
			}{{b.VMs, &l.VMs}, {b.VCPUs, &l.VCPUs}, {b.MemoryBytes, &l.MemoryBytes}} {
				if f.from != nil {
					*f.to = *f.from
				}
			}
			a, err = svc.Accounts.SetAccountLimits(ctx, p, a.ID, l)
			return accountToAPI(a, nil), err
		})
	add(h, "GET", "/accounts", "accounts", "List accounts (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.Account, error) {
			list, err := svc.Accounts.ListAccounts(ctx, p)
			return mapList(list, func(a domain.Account) api.Account { return accountToAPI(a, nil) }), err
		})
	add(h, "POST", "/tokens", "accounts", "Create an API token for an account (admin); the secret is shown once", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.TokenCreate) (api.Token, error) {
			secret, t, err := svc.Accounts.CreateToken(ctx, p, b.Account, b.Role, b.Name)
			return api.Token{ID: t.ID, Account: b.Account, Role: string(t.Role), Name: t.Name, Token: secret}, err
		})
	add(h, "GET", "/tokens", "accounts", "List API tokens (admin), never their secrets", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.TokenQuery, _ api.Empty) ([]api.TokenInfo, error) {
			list, err := svc.Accounts.ListTokens(ctx, p, q.Account)
			return mapList(list, func(t store.Token) api.TokenInfo {
				return api.TokenInfo{ID: t.ID, Account: svc.Kernel.AccountName(ctx, t.AccountID), Role: string(t.Role), Name: t.Name, Created: t.Created}
			}), err
		})
	add(h, "DELETE", "/tokens/{id}", "accounts", "Revoke an API token (admin): it and the console sessions started with it stop working", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Empty, error) {
			return api.Empty{}, svc.Accounts.RevokeToken(ctx, p, r.PathValue("id"))
		})

	// Backups.
	add(h, "POST", "/vms/{vm}/backups", "backups", "Take a backup of a VM; answers with an operation whose result holds the backup id", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.BackupCreate) (api.Operation, error) {
			op, err := svc.Backups.CreateBackup(ctx, p, r.PathValue("vm"), b.Isolated, b.Quiesce)
			return operationToAPI(op), err
		})
	add(h, "GET", "/backups", "backups", "List backups (of one VM with vm=), oldest first", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.BackupQuery, _ api.Empty) (paged[api.Backup], error) {
			page, err := storePage(q.Paging)
			if err != nil {
				return paged[api.Backup]{}, err
			}
			list, next, err := svc.Backups.Backups(ctx, p, q.VM, page)
			if err != nil {
				return paged[api.Backup]{}, err
			}
			heads, err := svc.Backups.ChainHeads(ctx, list...)
			if err != nil {
				return paged[api.Backup]{}, err
			}
			out := pageOf(list, next, func(b domain.Backup) api.Backup { return backupToAPI(b, heads) })
			out.items, err = h.withCopies(ctx, out.items)
			return out, err
		})
	add(h, "GET", "/backups/{id}", "backups", "Show one backup", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Backup, error) {
			b, err := svc.Kernel.Backup(ctx, p, r.PathValue("id"))
			if err != nil {
				return api.Backup{}, err
			}
			heads, err := svc.Backups.ChainHeads(ctx, b)
			if err != nil {
				return api.Backup{}, err
			}
			out, err := h.withCopies(ctx, []api.Backup{backupToAPI(b, heads)})
			return out[0], err
		})
	add(h, "POST", "/backups/delete", "backups", "Delete backups (batch); backups others depend on are only marked Removed", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.BackupDelete) (api.Operation, error) {
			op, err := svc.Backups.DeleteBackups(ctx, p, b.IDs, b.Forced)
			return operationToAPI(op), err
		})
	add(h, "POST", "/backups/delete/plan", "backups", "What deleting these backups would do under the chain rules (Removed, deleted, merged), changing nothing; refused as the deletion would be", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.BackupDelete) (api.DeletePlan, error) {
			plans, err := svc.Backups.PlanDeleteBackups(ctx, p, b.IDs)
			out := api.DeletePlan{VMs: []api.VMDeletePlan{}}
			for _, vp := range plans {
				out.VMs = append(out.VMs, api.VMDeletePlan{VM: vp.VM.Name, MarkRemoved: nonNil(vp.Plan.MarkRemoved), Deleted: nonNil(vp.Plan.Expunge),
					CatalogueOnly: nonNil(vp.Plan.CatalogueOnly), MergeHead: vp.Plan.MergeHead})
			}
			return out, err
		})
	add(h, "POST", "/vms/{vm}/chain/finish", "backups", "End a VM's backup chain (merge its deltas); also recovers a VM in BackupError", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Operation, error) {
			op, err := svc.Backups.FinishChain(ctx, p, r.PathValue("vm"))
			return operationToAPI(op), err
		})

	add(h, "POST", "/backups/{id}/restore", "restores", "Restore all disks of a backup onto its VM (stopped or deleted); ends the chain", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.Restore) (api.Operation, error) {
			op, err := svc.Restores.RestoreBackup(ctx, p, r.PathValue("id"), restores.RestoreOptions{Quick: b.QuickRestore, Host: b.Host, AcceptDamaged: b.AcceptDamaged, From: b.From})
			return operationToAPI(op), err
		})
	add(h, "POST", "/backups/{id}/restore-volume", "restores", "Make a new disk from one disk of a backup and attach it to a VM", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.RestoreVolume) (api.Operation, error) {
			op, err := svc.Restores.RestoreVolume(ctx, p, r.PathValue("id"), b.Disk, b.VM, restores.RestoreOptions{Quick: b.QuickRestore, Host: b.Host, AcceptDamaged: b.AcceptDamaged, From: b.From})
			return operationToAPI(op), err
		})
	add(h, "POST", "/backups/{id}/create-vm", "restores", "Define a new VM from a backup (new name, uuid, MACs and disk files)", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.CreateVM) (api.Operation, error) {
			op, err := svc.Restores.CreateVMFromBackup(ctx, p, r.PathValue("id"), b.Name, restores.RestoreOptions{Quick: b.QuickRestore, Host: b.Host, AcceptDamaged: b.AcceptDamaged, From: b.From}, b.Start)
			return operationToAPI(op), err
		})
	add(h, "POST", "/vms/{vm}/consolidate", "restores", "Resume the consolidation of a quick-restored VM", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Operation, error) {
			op, err := svc.Restores.Consolidate(ctx, p, r.PathValue("vm"))
			return operationToAPI(op), err
		})

	// VM snapshots.
	add(h, "POST", "/vms/{vm}/snapshots", "snapshots", "Take a disk-only VM snapshot (external qcow2 overlays)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.SnapshotCreate) (api.Snapshot, error) {
			sn, err := svc.Snapshots.CreateSnapshot(ctx, p, r.PathValue("vm"), b.Name)
			return snapshotToAPI(sn), err
		})
	add(h, "GET", "/vms/{vm}/snapshots", "snapshots", "List a VM's snapshots, oldest first", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.Snapshot, error) {
			list, err := svc.Snapshots.Snapshots(ctx, p, r.PathValue("vm"))
			return mapList(list, snapshotToAPI), err
		})
	add(h, "POST", "/snapshots/{id}/revert", "snapshots", "Revert a stopped VM to a snapshot (newer overlays of the current branch are discarded)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.VM, error) {
			v, err := svc.Snapshots.RevertSnapshot(ctx, p, r.PathValue("id"))
			return h.vmToAPI(ctx, v), err
		})
	add(h, "DELETE", "/snapshots/{id}", "snapshots", "Delete a snapshot: merged when nothing else needs its files, else marked Removed", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Snapshot, error) {
			sn, gone, err := svc.Snapshots.DeleteSnapshot(ctx, p, r.PathValue("id"))
			out := snapshotToAPI(sn)
			if gone {
				out.Status = "Deleted"
			}
			return out, err
		})

	h.routes = append(h.routes, route{method: "GET", path: "/backups/{id}/screenshot", tag: "backups", status: ok, produces: "image/png",
		summary: "Download a backup's validation screenshot (PNG)",
		query:   typeOf[none](), body: typeOf[api.Empty](), resp: typeOf[[]byte](),
		serve: func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
			if len(r.URL.Query()) > 0 {
				return &badRequest{msg: "this request takes no query parameters"}
			}
			png, err := svc.Jobs.Screenshot(r.Context(), p, r.PathValue("id"))
			if err != nil {
				return err
			}
			w.Header().Set("Content-Type", "image/png")
			_, err = w.Write(png)
			return err
		}})

	add(h, "POST", "/backups/{id}/validate", "backups", "Queue a validation of the backup now (a validated backup is re-hashed)", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Job, error) {
			j, err := svc.Jobs.ValidateNow(ctx, p, r.PathValue("id"))
			return h.jobToAPI(ctx, j), err
		})

	// Backup schedules.
	add(h, "POST", "/vms/{vm}/schedules", "schedules", "Add a backup schedule to a VM", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.ScheduleSpec) (api.Schedule, error) {
			sc, err := svc.Schedules.CreateSchedule(ctx, p, r.PathValue("vm"), scheduleSpec(b))
			return scheduleToAPI(sc), err
		})
	add(h, "GET", "/vms/{vm}/schedules", "schedules", "List a VM's backup schedules", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.Schedule, error) {
			list, err := svc.Schedules.Schedules(ctx, p, r.PathValue("vm"))
			return mapList(list, scheduleToAPI), err
		})
	add(h, "PUT", "/schedules/{id}", "schedules", "Change a backup schedule", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.ScheduleSpec) (api.Schedule, error) {
			sc, err := svc.Schedules.UpdateSchedule(ctx, p, r.PathValue("id"), scheduleSpec(b))
			return scheduleToAPI(sc), err
		})
	add(h, "DELETE", "/schedules/{id}", "schedules", "Remove a backup schedule (its backups stay)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "deleted"}, svc.Schedules.DeleteSchedule(ctx, p, r.PathValue("id"))
		})

	// Background jobs.
	add(h, "GET", "/jobs", "jobs", "List background service jobs (admin); unfinished unless all=true", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.JobQuery, _ api.Empty) (paged[api.Job], error) {
			page, err := storePage(q.Paging)
			if err != nil {
				return paged[api.Job]{}, err
			}
			list, next, err := svc.Jobs.Jobs(ctx, p, store.JobFilter{ID: q.ID, BackupID: q.Backup, HostID: q.Host, ZoneID: q.Zone,
				Type: jobs.Type(q.Type), Executing: q.Executing, Scheduled: q.Scheduled, All: q.All, Page: page})
			return pageOf(list, next, func(j jobs.Job) api.Job { return h.jobToAPI(ctx, j) }), err
		})

	// Operations.
	add(h, "GET", "/operations", "operations", "List operations (unfinished unless all=true)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.OperationQuery, _ api.Empty) (paged[api.Operation], error) {
			page, err := storePage(q.Paging)
			if err != nil {
				return paged[api.Operation]{}, err
			}
			list, next, err := svc.Kernel.ListOperations(ctx, p, q.All, page)
			return pageOf(list, next, operationToAPI), err
		})
	add(h, "GET", "/operations/{id}", "operations", "Show an operation's state, progress and result", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Operation, error) {
			op, err := svc.Kernel.Operation(ctx, p, r.PathValue("id"))
			return operationToAPI(op), err
		})

	h.registerSession() // console log-in and passwords (session.go)
	h.registerEvents()  // server-sent events of operations (events.go)
	h.registerAgents()  // remote agents: join tokens, host maintenance (agents.go)
	// Backup storages and zones (storages.go).
	h.registerStorages()
	// The console's dashboard (dashboard.go).
	h.registerDashboard()
	h.registerAudit() // the audit log (audit.go)
	h.registerFiles()
	h.registerNotify()  // notification targets, rules and log (notify.go)
	h.registerRemotes() // offsite copies: remotes, copies, copy policies (remotes.go)
}

func accountToAPI(a domain.Account, u *domain.Usage) api.Account {
	out := api.Account{ID: a.ID, Name: a.Name, Created: a.Created,
		Limits: api.Limits{VMs: a.Limits.VMs, VCPUs: a.Limits.VCPUs, MemoryBytes: a.Limits.MemoryBytes}}
	if u != nil {
		out.Usage = &api.Usage{VMs: u.VMs, VCPUs: u.VCPUs, MemoryBytes: u.MemoryBytes}
	}
	return out
}

func mapList[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, x := range in {
		out = append(out, f(x))
	}
	return out
}

func offeringToAPI(o domain.Offering) api.Offering {
	steps := make([]string, 0, len(o.ValidationSteps))
	for _, s := range o.ValidationSteps {
		steps = append(steps, string(s))
	}
	return api.Offering{ID: o.ID, Name: o.Name, Description: o.Description, Compress: o.Compress, Validate: o.Validate,
		ValidationSteps: steps, AllowQuickRestore: o.AllowQuickRestore, AllowExtractFile: o.AllowExtractFile,
		BackupChainSize: o.BackupChainSize, CompressionLibrary: string(o.CompressionLibrary), StorageTag: o.StorageTag, Created: o.Created, Removed: o.Removed}
}

func (h *Handler) hostToAPI(ctx context.Context, x domain.Host) api.Host {
	state, agentURL := h.svc.Kernel.HostAgentState(ctx, x)
	settings := x.AgentSettings
	if settings == nil {
		settings = map[string]string{}
	}
	return api.Host{ID: x.ID, Name: x.Name, Zone: h.svc.Kernel.ZoneName(ctx, x.ZoneID), URI: x.URI, LibvirtVersion: x.LibvirtVersion,
		HypervisorVersion: x.HypervisorVersion, CPUs: x.CPUs, MemoryBytes: x.MemoryBytes, StorageCapacity: x.StorageCapacity,
		StorageFree: x.StorageFree, Enabled: x.Enabled, Local: x.Local, LastSeen: x.LastSeen, AgentSettings: settings,
		Agent: state, AgentURL: agentURL}
}

func (h *Handler) vmToAPI(ctx context.Context, v domain.VM) api.VM {
	out := api.VM{ID: v.ID, Name: v.Name, State: string(v.EffectiveState()), OfferingID: v.OfferingID, Seen: v.Seen, Disks: []api.Disk{},
		Busy: v.Busy, ChainHead: v.ChainHead, LastError: v.LastError, VCPUs: v.VCPUs, MemoryBytes: v.MemoryBytes}
	if v.ID == "" {
		return out
	}
	out.Host = h.svc.Kernel.HostName(ctx, v.HostID)
	out.Account = h.svc.Kernel.AccountName(ctx, v.AccountID)
	out.Offering = h.svc.Kernel.OfferingName(ctx, v.OfferingID)
	for _, d := range v.Disks {
		ad := api.Disk{Target: d.Target, Device: d.Device, Bus: d.Bus, SourceType: d.SourceType, Source: d.Source, Format: d.Format,
			VirtualSize: d.VirtualSize, BackingChain: []api.Layer{}, Problem: d.Problem}
		for _, l := range d.BackingChain {
			ad.BackingChain = append(ad.BackingChain, api.Layer{Path: l.Path, Format: l.Format})
		}
		out.Disks = append(out.Disks, ad)
	}
	return out
}

func operationToAPI(op domain.Operation) api.Operation {
	out := api.Operation{ID: op.ID, Kind: op.Kind, VMID: op.VMID, State: string(op.State), Progress: op.Progress,
		Message: op.Message, Error: op.Error, Created: op.Created, Updated: op.Updated}
	if op.Result != "" {
		out.Result = json.RawMessage(op.Result)
	}
	return out
}

// scopeRef checks that the scope named in a query matches the id given.
func scopeRef(q api.SettingQuery) (config.ScopeRef, error) {
	ref := config.ScopeRef{Zone: q.Zone, Host: q.Host, Account: q.Account}
	given := map[string]string{"zone": q.Zone, "host": q.Host, "account": q.Account}
	switch q.Scope {
	case "", "global":
		if q.Scope == "global" && (q.Zone != "" || q.Host != "" || q.Account != "") {
			return ref, domain.Invalid("scope", "global scope takes no zone, host or account")
		}
	case "zone", "host", "account":
		if given[q.Scope] == "" {
			return ref, domain.Invalid(q.Scope, "scope %s needs %s=<name>", q.Scope, q.Scope)
		}
	default:
		return ref, domain.Invalid("scope", "unknown scope %q, want global, zone, host or account", q.Scope)
	}
	return ref, nil
}

func settingToAPI(es config.EffectiveSetting) api.Setting {
	scopes := []string{}
	for _, sc := range es.Def.Scopes {
		scopes = append(scopes, string(sc))
	}
	return api.Setting{Key: es.Def.Key, Value: es.Value.Value, Source: string(es.Value.Source), Default: es.Def.Default,
		Type: string(es.Def.Type), Unit: string(es.Def.Unit), Scopes: scopes, Description: es.Def.Description}
}

func vmDetailToAPI(d config.VMDetail) api.VMDetail {
	return api.VMDetail{Key: d.Def.Key, Value: d.Value, ReadOnlyForUsers: d.ReadOnly, Description: d.Def.Description}
}

func backupToAPI(b domain.Backup, heads map[string]bool) api.Backup {
	out := api.Backup{ID: b.ID, VMID: b.VMID, VMName: b.VMName, StorageID: b.StorageID, Type: string(b.Type), Isolated: b.Isolated, ParentID: b.ParentID,
		Position: b.Position, EndOfChain: b.EndOfChain, ChainHead: heads[b.ID], Status: string(b.Status), Size: b.Size,
		VirtualSize: b.VirtualSize, Created: b.Created, Error: b.Error, Files: []api.BackupFile{},
		CompressionStatus: string(b.CompressionStatus), UncompressedSize: b.UncompressedSize, ValidationStatus: string(b.ValidationStatus),
		ValidationReason: b.ValidationReason, HasScreenshot: b.HasScreenshot}
	for _, f := range b.Files {
		out.Files = append(out.Files, api.BackupFile{Disk: f.Disk, Path: f.Path, Full: f.Full, Size: f.Size, VirtualSize: f.VirtualSize, Hash: f.Hash})
	}
	out.ValidationSteps = []api.ValidationStep{}
	for _, st := range b.ValidationSteps {
		out.ValidationSteps = append(out.ValidationSteps, api.ValidationStep{Step: string(st.Step), Outcome: string(st.Outcome), Detail: st.Detail})
	}
	return out
}

func snapshotToAPI(sn domain.Snapshot) api.Snapshot {
	out := api.Snapshot{ID: sn.ID, VMID: sn.VMID, Name: sn.Name, Status: string(sn.Status), Created: sn.Created, Files: []api.SnapshotFile{}}
	for _, f := range sn.Files {
		out.Files = append(out.Files, api.SnapshotFile{Disk: f.Disk, Frozen: f.Frozen})
	}
	return out
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func (h *Handler) jobToAPI(ctx context.Context, j jobs.Job) api.Job {
	out := api.Job{ID: j.ID, Type: string(j.Type), BackupID: j.BackupID, VMID: j.VMID, Zone: h.svc.Kernel.ZoneName(ctx, j.ZoneID),
		Attempts: j.Attempts, Scheduled: j.Scheduled, Started: optTime(j.Started), Ended: optTime(j.Ended), State: string(j.State), LastError: j.LastError}
	if j.HostID != "" {
		out.Host = h.svc.Kernel.HostName(ctx, j.HostID)
	}
	return out
}

func scheduleSpec(b api.ScheduleSpec) schedules.ScheduleSpec {
	return schedules.ScheduleSpec{Interval: b.Interval, At: b.At, Timezone: b.Timezone, MaxBackups: b.MaxBackups, Isolated: b.Isolated}
}

func scheduleToAPI(sc domain.Schedule) api.Schedule {
	return api.Schedule{ID: sc.ID, VMID: sc.VMID, Interval: sc.Interval, At: sc.At, Timezone: sc.Timezone, MaxBackups: sc.MaxBackups,
		Isolated: sc.Isolated, NextRun: sc.NextRun, Created: sc.Created}
}

// nonNil answers an empty list as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
