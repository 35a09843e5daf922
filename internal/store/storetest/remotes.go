package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// testRemotes: remotes round-trip with their secrets and refuse a taken
// name and a removal while copies or policies name them; a policy is set,
// advanced once per period by one caller, and removed; a backup has at most
// one copy per remote that is not Failed; copies round-trip with their
// objects and times and filter by backup, backups, remote and state;
// ImportVM creates a VM once and leaves a known one alone.
func testRemotes(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, h := seedHost(t, s)
	r := domain.Remote{ID: domain.NewID(), Name: "offsite", Endpoint: "http://127.0.0.1:7070", Bucket: "knib", Region: "us-east-1", AccessKey: "AK", SecretKey: "SK",
		Key: "knib-remote-key-v1:x", LockDays: 7, LockMode: domain.LockCompliance, BandwidthBps: 1 << 20, Created: t0}
	must(t, s.CreateRemote(ctx, r))
	wantErr(t, s.CreateRemote(ctx, domain.Remote{ID: domain.NewID(), Name: "offsite", Created: t0}), domain.ErrConflict)
	got, err := s.Remote(ctx, "offsite")
	must(t, err)
	if got.ID != r.ID || got.SecretKey != "SK" || got.Key != r.Key || got.LockDays != 7 || got.LockMode != domain.LockCompliance || got.BandwidthBps != 1<<20 || !got.Created.Equal(t0) || !got.CheckedAt.IsZero() {
		t.Fatalf("remote: %+v", got)
	}
	_, err = s.Remote(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	must(t, s.SetRemoteCheck(ctx, r.ID, domain.LockEnforced, t0.Add(time.Minute)))
	wantErr(t, s.SetRemoteCheck(ctx, "nope", "x", t0), domain.ErrNotFound)
	list, err := s.ListRemotes(ctx)
	must(t, err)
	if len(list) != 1 || list[0].LockCheck != domain.LockEnforced || !list[0].CheckedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("remotes: %+v", list)
	}

	off := domain.Offering{ID: domain.NewID(), Name: "gold", CompressionLibrary: domain.CompressionZstd, Created: t0}
	must(t, s.CreateOffering(ctx, off))
	_, err = s.CopyPolicy(ctx, off.ID)
	wantErr(t, err, domain.ErrNotFound)
	must(t, s.SetCopyPolicy(ctx, domain.CopyPolicy{OfferingID: off.ID, RemoteID: r.ID, Every: domain.CopyDaily, KeepDays: 30}))
	p, err := s.CopyPolicy(ctx, off.ID)
	must(t, err)
	if p.RemoteID != r.ID || p.Every != domain.CopyDaily || p.KeepDays != 30 || !p.SweptUntil.IsZero() {
		t.Fatalf("policy: %+v", p)
	}
	day := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	ok, err := s.AdvanceCopyPolicy(ctx, off.ID, time.Time{}, day)
	must(t, err)
	again, err := s.AdvanceCopyPolicy(ctx, off.ID, time.Time{}, day)
	must(t, err)
	if !ok || again {
		t.Fatalf("advance: first %v, second %v; want true then false", ok, again)
	}
	ps, err := s.CopyPolicies(ctx)
	must(t, err)
	if len(ps) != 1 || !ps[0].SweptUntil.Equal(day) {
		t.Fatalf("policies: %+v", ps)
	}
	wantErr(t, s.DeleteRemote(ctx, r.ID), domain.ErrConflict)
	must(t, s.SetCopyPolicy(ctx, domain.CopyPolicy{OfferingID: off.ID}))
	if ps, _ = s.CopyPolicies(ctx); len(ps) != 0 {
		t.Fatalf("policy stayed: %+v", ps)
	}

	c := domain.BackupCopy{ID: domain.NewID(), BackupID: "b1", RemoteID: r.ID, State: domain.CopyQueued, Salt: "00ff", Created: t0}
	must(t, s.CreateCopy(ctx, c))
	wantErr(t, s.CreateCopy(ctx, domain.BackupCopy{ID: domain.NewID(), BackupID: "b1", RemoteID: r.ID, State: domain.CopyQueued, Created: t0}), domain.ErrConflict)
	c.State, c.Error = domain.CopyFailed, "boom"
	must(t, s.SaveCopy(ctx, c))
	c2 := domain.BackupCopy{ID: domain.NewID(), BackupID: "b1", RemoteID: r.ID, State: domain.CopyQueued, Salt: "aa", Created: t0.Add(time.Second)}
	must(t, s.CreateCopy(ctx, c2)) // the failed copy does not count
	c2.State, c2.Copied, c2.LockUntil, c2.KeepUntil, c2.Size = domain.CopyCopied, t0.Add(time.Hour), t0.Add(48*time.Hour), t0.Add(72*time.Hour), 1234
	c2.Objects = []domain.CopyObject{{Path: "backups/v/b1/vda.qcow2", Disk: "vda", Key: "knib/o/k1", VersionID: "v1", Size: 1234, PlainSize: 1200, Hash: "xxh3-128:00"}}
	c2.ManifestKey, c2.ManifestVersion = "knib/m/k2", "v2"
	must(t, s.SaveCopy(ctx, c2))
	wantErr(t, s.SaveCopy(ctx, domain.BackupCopy{ID: "nope"}), domain.ErrNotFound)
	got2, err := s.Copy(ctx, c2.ID)
	must(t, err)
	if got2.State != domain.CopyCopied || !got2.LockUntil.Equal(c2.LockUntil) || !got2.KeepUntil.Equal(c2.KeepUntil) || !got2.Copied.Equal(c2.Copied) || got2.Size != 1234 ||
		len(got2.Objects) != 1 || got2.Objects[0] != c2.Objects[0] || got2.ManifestKey != "knib/m/k2" || got2.ManifestVersion != "v2" || got2.Salt != "aa" {
		t.Fatalf("copy: %+v", got2)
	}
	_, err = s.Copy(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	must(t, s.CreateCopy(ctx, domain.BackupCopy{ID: domain.NewID(), BackupID: "b2", RemoteID: r.ID, State: domain.CopyQueued, Salt: "bb", Created: t0.Add(2 * time.Second)}))
	for _, tc := range []struct {
		f    store.CopyFilter
		want int
	}{
		{store.CopyFilter{}, 3},
		{store.CopyFilter{BackupID: "b1"}, 2},
		{store.CopyFilter{BackupIDs: []string{"b2", "b3"}}, 1},
		{store.CopyFilter{BackupIDs: []string{}}, 0},
		{store.CopyFilter{RemoteID: r.ID, State: domain.CopyCopied}, 1},
		{store.CopyFilter{State: domain.CopyFailed}, 1},
	} {
		cs, err := s.Copies(ctx, tc.f)
		must(t, err)
		if len(cs) != tc.want {
			t.Fatalf("copies %+v: %d, want %d", tc.f, len(cs), tc.want)
		}
	}
	for _, cp := range []string{c.ID, c2.ID} {
		must(t, s.DeleteCopy(ctx, cp))
	}
	must(t, s.DeleteCopy(ctx, c.ID)) // gone already: no error
	cs, _ := s.Copies(ctx, store.CopyFilter{})
	for _, cp := range cs {
		must(t, s.DeleteCopy(ctx, cp.ID))
	}
	must(t, s.DeleteRemote(ctx, r.ID))
	wantErr(t, s.DeleteRemote(ctx, r.ID), domain.ErrNotFound)

	vm := domain.VM{ID: "6d2a1f54-0000-4000-8000-000000000001", Name: "lost", HostID: h.ID, State: domain.VMMissing, AccountID: acc.ID,
		Disks: []domain.Disk{{Target: "vda", Source: "/var/lib/libvirt/images/lost.qcow2", Format: "qcow2"}}, VCPUs: 1, MemoryBytes: 256 << 20, Seen: t0}
	created, err := s.ImportVM(ctx, vm)
	must(t, err)
	vm.Name = "renamed"
	createdAgain, err := s.ImportVM(ctx, vm)
	must(t, err)
	back, err := s.VM(ctx, vm.ID)
	must(t, err)
	if !created || createdAgain || back.Name != "lost" || back.State != domain.VMMissing || len(back.Disks) != 1 || back.Disks[0].Source != vm.Disks[0].Source {
		t.Fatalf("import vm: created %v then %v, %+v", created, createdAgain, back)
	}
}
