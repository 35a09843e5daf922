package httpapi

import (
	"context"
	"net/http"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/remotes"
)

func (h *Handler) registerRemotes() {
	svc := h.svc
	ok, created, accepted := http.StatusOK, http.StatusCreated, http.StatusAccepted
	add(h, "POST", "/remotes", "remotes", "Add a remote for offsite copies: an S3-compatible bucket, checked before it is recorded (its locks for real with lock_days) (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.RemoteAdd) (api.Remote, error) {
			rm, err := svc.Remotes.Add(ctx, p, domain.RemoteSpec{Name: b.Name, Endpoint: b.Endpoint, Bucket: b.Bucket, Region: b.Region, AccessKey: b.AccessKey,
				SecretKey: b.SecretKey, LockDays: b.LockDays, LockMode: b.LockMode, BandwidthBps: b.BandwidthBps}, remotes.AddOptions{Key: b.Key})
			return remoteToAPI(rm, 0, 0), err
		})
	add(h, "GET", "/remotes", "remotes", "List remotes, without their secrets (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.Remote, error) {
			list, err := svc.Remotes.List(ctx, p)
			out := []api.Remote{}
			for _, rm := range list {
				out = append(out, remoteToAPI(rm, 0, 0))
			}
			return out, err
		})
	add(h, "GET", "/remotes/{remote}", "remotes", "Show a remote with its copies' count and bytes (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Remote, error) {
			rm, n, size, err := svc.Remotes.Show(ctx, p, r.PathValue("remote"))
			return remoteToAPI(rm, n, size), err
		})
	add(h, "POST", "/remotes/{remote}/test", "remotes", "Reach a remote and check its locks for real: a locked canary is written and a delete of it attempted (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.RemoteTest, error) {
			t, err := svc.Remotes.Test(ctx, p, r.PathValue("remote"))
			return api.RemoteTest{Reachable: t.Reachable, LockEnabled: t.LockEnabled, LockCheck: t.LockCheck, Safe: t.Safe}, err
		})
	add(h, "DELETE", "/remotes/{remote}", "remotes", "Remove a remote that holds no copies and no policy names; the bucket is not touched (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "removed"}, svc.Remotes.Remove(ctx, p, r.PathValue("remote"))
		})
	add(h, "POST", "/remotes/{remote}/key", "remotes", "Export a remote's key: without it the copies are unreadable (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.RemoteKey, error) {
			k, err := svc.Remotes.ExportKey(ctx, p, r.PathValue("remote"))
			return api.RemoteKey{Key: k, Warning: "keep this key apart from the installation: without it the copies on this remote cannot be read"}, err
		})
	add(h, "POST", "/remotes/{remote}/import", "remotes", "Rebuild the catalogue's backups and copies from the remote's manifests alone (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.RemoteImport) (api.RemoteImported, error) {
			res, err := svc.Remotes.Import(ctx, p, r.PathValue("remote"), b.Host)
			if res.Unreadable == nil {
				res.Unreadable = []string{}
			}
			return api.RemoteImported{Manifests: res.Manifests, Backups: res.Backups, VMs: res.VMs, Known: res.Known, Unreadable: res.Unreadable}, err
		})
	add(h, "POST", "/backups/{id}/copy", "remotes", "Copy a backup to a remote (a BackupCopy job; its chain's missing copies first)", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.BackupCopyRequest) (api.BackupCopy, error) {
			c, err := svc.Remotes.CopyBackup(ctx, p, r.PathValue("id"), b.Remote, b.KeepDays)
			return copyToAPI(c, svc.Remotes.RemoteNames(ctx)), err
		})
	add(h, "GET", "/backups/{id}/copies", "remotes", "List a backup's offsite copies", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.BackupCopy, error) {
			list, err := svc.Remotes.Copies(ctx, p, r.PathValue("id"))
			names := svc.Remotes.RemoteNames(ctx)
			out := []api.BackupCopy{}
			for _, c := range list {
				ac := copyToAPI(c, names)
				for _, o := range c.Objects {
					ac.Files = append(ac.Files, api.CopyFile{Path: o.Path, Disk: o.Disk, Key: o.Key, VersionID: o.VersionID, Size: o.Size, PlainSize: o.PlainSize})
				}
				out = append(out, ac)
			}
			return out, err
		})
	add(h, "PUT", "/offerings/{id}/copy-policy", "remotes", "Set an offering's copy policy: every backup, or the last of each day or week, to a remote, kept N days (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.CopyPolicy) (api.CopyPolicy, error) {
			pol, err := svc.Remotes.SetPolicy(ctx, p, r.PathValue("id"), b.Remote, b.Every, b.KeepDays)
			return policyToAPI(pol, svc.Remotes.RemoteNames(ctx)), err
		})
	add(h, "GET", "/offerings/{id}/copy-policy", "remotes", "Show an offering's copy policy; 404 when it has none (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.CopyPolicy, error) {
			pol, err := svc.Remotes.ShowPolicy(ctx, p, r.PathValue("id"))
			return policyToAPI(pol, svc.Remotes.RemoteNames(ctx)), err
		})
	add(h, "DELETE", "/offerings/{id}/copy-policy", "remotes", "Remove an offering's copy policy; the copies made stay (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "removed"}, svc.Remotes.RemovePolicy(ctx, p, r.PathValue("id"))
		})
}

func remoteToAPI(r domain.Remote, copies int, size int64) api.Remote {
	return api.Remote{ID: r.ID, Name: r.Name, Endpoint: r.Endpoint, Bucket: r.Bucket, Region: r.Region, AccessKey: r.AccessKey, LockDays: r.LockDays,
		LockMode: string(r.LockMode), BandwidthBps: r.BandwidthBps, LockCheck: r.LockCheck, CheckedAt: r.CheckedAt, Created: r.Created, Copies: copies, CopiedBytes: size}
}

func copyToAPI(c domain.BackupCopy, names map[string]string) api.BackupCopy {
	return api.BackupCopy{ID: c.ID, BackupID: c.BackupID, RemoteID: c.RemoteID, Remote: names[c.RemoteID], State: string(c.State), Objects: len(c.Objects),
		Size: c.Size, LockUntil: c.LockUntil, KeepUntil: c.KeepUntil, Copied: c.Copied, Error: c.Error}
}

func policyToAPI(p domain.CopyPolicy, names map[string]string) api.CopyPolicy {
	return api.CopyPolicy{Remote: names[p.RemoteID], Every: string(p.Every), KeepDays: p.KeepDays}
}

// withCopies adds each backup's offsite copies.
func (h *Handler) withCopies(ctx context.Context, list []api.Backup) ([]api.Backup, error) {
	ids := make([]string, len(list))
	for i, b := range list {
		ids[i] = b.ID
	}
	copies, err := h.svc.Remotes.CopiesOf(ctx, ids)
	if err != nil {
		return list, err
	}
	names := h.svc.Remotes.RemoteNames(ctx)
	for i := range list {
		list[i].Copies = []api.BackupCopy{}
		for _, c := range copies[list[i].ID] {
			list[i].Copies = append(list[i].Copies, copyToAPI(c, names))
		}
	}
	return list, nil
}
