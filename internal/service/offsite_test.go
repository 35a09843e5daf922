package service_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/offsitetest"
	"github.com/knib/knib/internal/offsite/seal"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/remotes"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
)

// Unit tests of the offsite use cases: a real catalogue, the in-memory
// bucket and a fake agent that uploads what it is asked to (the agent's
// own work is tested in internal/agent, the whole path against a real S3
// server and a real guest in test/integration).

type offEnv struct {
	svc   *service.Service
	st    store.Store
	clk   *clock.Fake
	mem   *offsitetest.Mem
	admin domain.Principal
	off   domain.Offering
	gets  []agentapi.OffsiteGetRequest
	// storage is the default backup storage.
	storage domain.Storage
}

func newOffEnv(t *testing.T) *offEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &offEnv{st: st, clk: clock.NewFake(time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC))}
	e.mem = &offsitetest.Mem{Now: e.clk.Now, PartSize: 64}
	e.svc = service.New(st, e.clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.svc.Remotes.SetOpener(func(offsite.Config) (offsite.Bucket, error) { return e.mem, nil })
	acc, err := e.svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fake := &agenttest.Fake{Report: agentapi.HostReport{Name: "localhost", StoragePath: "/st"},
		Domains: []agentapi.Domain{{UUID: vmID, Name: "web", State: "running", Disks: []agentapi.Disk{{Target: "vda", Device: "disk", SourceType: "file", Source: "/img/vda.qcow2", Format: "qcow2"}}}}}
	fake.Task = func(req agentapi.Task) agentapi.TaskStatus {
		switch r := req.Request.(type) {
		case agentapi.OffsitePutRequest:
			return e.put(r)
		case agentapi.OffsiteGetRequest:
			e.gets = append(e.gets, r)
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Result: agentapi.OffsiteGetResult{}}
		}
		return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "unexpected task " + req.Command}
	}
	if _, err := e.svc.Hosts.RegisterHost(ctx, "default", fake, true); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	if e.storage, err = e.svc.Storages.EnsureDefaultStorage(ctx, "default", "/st"); err != nil {
		t.Fatal(err)
	}
	e.admin = domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: domain.RoleAdmin}
	if e.off, err = e.svc.Offerings.CreateOffering(ctx, e.admin, domain.OfferingSpec{Name: "gold"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.VMs.AssignVM(ctx, e.admin, "web", e.off.ID); err != nil {
		t.Fatal(err)
	}
	return e
}

// put does what the agent's offsite.put does, minus sealing real files:
// each object gets bytes of its own, in the bucket, with the lock.
func (e *offEnv) put(r agentapi.OffsitePutRequest) agentapi.TaskStatus {
	res := agentapi.OffsitePutResult{}
	objs := r.Objects
	if r.Extras.Dir != "" {
		k, _ := seal.ParseKey(r.Remote.Key)
		p := r.Extras.Dir + "/domain.xml"
		objs = append(objs, agentapi.PutObject{Path: p, Key: r.Extras.ObjectPrefix + k.ObjectName("object", r.Extras.Copy, p)})
	}
	for _, o := range objs {
		data := []byte("sealed " + o.Path)
		info, err := e.mem.Put(context.Background(), o.Key, bytes.NewReader(data), int64(len(data)), offsite.Lock{Mode: offsite.LockMode(r.LockMode), Until: r.LockUntil}, nil)
		if err != nil {
			return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: err.Error()}
		}
		res.Objects = append(res.Objects, agentapi.PutObjectResult{Path: o.Path, Key: o.Key, VersionID: info.VersionID, Size: info.Size, PlainSize: info.Size, Sent: info.Size})
	}
	return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Result: res}
}

// backups records a full backup and n-1 incrementals on top of it.
func (e *offEnv) backups(t *testing.T, n int) []domain.Backup {
	t.Helper()
	var out []domain.Backup
	for i := range n {
		b := domain.Backup{ID: domain.NewID(), VMID: vmID, VMName: "web", AccountID: e.admin.AccountID, OfferingID: e.off.ID, HostID: "",
			Type: domain.BackupFull, Position: i + 1, Status: domain.BackupBackedUp, Created: e.clk.Now().Add(time.Duration(i) * time.Minute)}
		if i > 0 {
			b.Type, b.ParentID = domain.BackupIncremental, out[i-1].ID
		}
		h, err := e.st.Host(context.Background(), "localhost")
		if err != nil {
			t.Fatal(err)
		}
		b.HostID = h.ID
		b.Dir, b.StorageID = "backups/"+vmID+"/"+b.ID, e.storage.ID
		b.Files = []domain.BackupFile{{Disk: "vda", Path: b.Dir + "/vda.qcow2", Full: i == 0, Size: 100, Hash: "xxh3-128:" + strings.Repeat("0", 31) + string(rune('1'+i))}}
		if err := e.st.CreateBackup(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		if err := e.st.SaveBackup(context.Background(), b, nil); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func (e *offEnv) addRemote(t *testing.T, lockDays int) domain.Remote {
	t.Helper()
	r, err := e.svc.Remotes.Add(context.Background(), e.admin, domain.RemoteSpec{Name: "offsite", Endpoint: "http://127.0.0.1:7070", Bucket: "knib", AccessKey: "ak", SecretKey: "sk", LockDays: lockDays}, remotes.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *offEnv) runJobs(t *testing.T) {
	t.Helper()
	if err := e.svc.Jobs.RunJobs(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	e.svc.Jobs.WaitJobs()
	list, _ := e.st.Jobs(context.Background(), store.JobFilter{All: true})
	for _, j := range list {
		t.Logf("job %s %s attempts %d: %s", j.Type, j.State, j.Attempts, j.LastError)
	}
}

func (e *offEnv) copies(t *testing.T, b domain.Backup) []domain.BackupCopy {
	t.Helper()
	list, err := e.svc.Remotes.Copies(context.Background(), e.admin, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// Bad input and unsafe remotes change nothing; a bucket sealed with
// another key is refused; the secrets are never listed.
func TestRemoteAddRefusals(t *testing.T) {
	e := newOffEnv(t)
	ctx := context.Background()
	good := domain.RemoteSpec{Name: "offsite", Endpoint: "http://127.0.0.1:7070", Bucket: "knib", AccessKey: "ak", SecretKey: "sk", LockDays: 3}
	for _, mod := range []func(*domain.RemoteSpec){
		func(s *domain.RemoteSpec) { s.Endpoint = "ftp://x" },
		func(s *domain.RemoteSpec) { s.Endpoint = "http://u:p@x:1" },
		func(s *domain.RemoteSpec) { s.Bucket = "A" },
		func(s *domain.RemoteSpec) { s.LockDays = -1 },
		func(s *domain.RemoteSpec) { s.LockMode = "forever" },
		func(s *domain.RemoteSpec) { s.SecretKey = "" },
	} {
		spec := good
		mod(&spec)
		if _, err := e.svc.Remotes.Add(ctx, e.admin, spec, remotes.AddOptions{}); !domain.IsInvalid(err) {
			t.Fatalf("%+v: %v, want invalid", spec, err)
		}
	}
	e.mem.IgnoreLocks = true
	if _, err := e.svc.Remotes.Add(ctx, e.admin, good, remotes.AddOptions{}); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "unsafe") {
		t.Fatalf("a server that does not enforce locks: %v", err)
	}
	if list, _ := e.st.ListRemotes(ctx); len(list) != 0 {
		t.Fatalf("refused remotes recorded: %+v", list)
	}
	e.mem.IgnoreLocks = false
	r, err := e.svc.Remotes.Add(ctx, e.admin, good, remotes.AddOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.SecretKey != "" || r.Key != "" || r.LockCheck != domain.LockEnforced || r.LockMode != domain.LockCompliance {
		t.Fatalf("added: %+v", r)
	}
	list, _ := e.svc.Remotes.List(ctx, e.admin)
	if len(list) != 1 || list[0].SecretKey != "" || list[0].Key != "" {
		t.Fatalf("list shows secrets: %+v", list)
	}
	// The same bucket with another key: refused, it holds copies sealed
	// with the first one.
	other, _ := seal.NewKey()
	spec := good
	spec.Name = "again"
	if _, err := e.svc.Remotes.Add(ctx, e.admin, spec, remotes.AddOptions{Key: other.String()}); !errors.Is(err, domain.ErrConflict) || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("another key: %v", err)
	}
	user := domain.Principal{AccountID: "u", Role: domain.RoleUser}
	if _, err := e.svc.Remotes.ExportKey(ctx, user, "offsite"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("a user exported the key: %v", err)
	}
	if k, err := e.svc.Remotes.ExportKey(ctx, e.admin, "offsite"); err != nil || !strings.HasPrefix(k, "knib-remote-key-v1:") {
		t.Fatalf("export: %q %v", k, err)
	}
}

// A copy of an incremental backup copies its chain first; the parents'
// locks are extended to the child's; the manifests open with the key.
func TestCopyChainAndLocks(t *testing.T) {
	e := newOffEnv(t)
	ctx := context.Background()
	r := e.addRemote(t, 2)
	bs := e.backups(t, 3)
	if _, err := e.svc.Remotes.CopyBackup(ctx, e.admin, bs[1].ID, "offsite", 0); err != nil {
		t.Fatal(err)
	}
	e.runJobs(t)
	c0, c1 := e.copies(t, bs[0]), e.copies(t, bs[1])
	if len(c0) != 1 || c0[0].State != domain.CopyCopied || len(c1) != 1 || c1[0].State != domain.CopyCopied {
		t.Fatalf("copies: %+v %+v", c0, c1)
	}
	if len(e.copies(t, bs[2])) != 0 {
		t.Fatal("a copy of the child was made")
	}
	// A day later the third backup is copied: locked two days from then,
	// and its parents with it.
	e.clk.Advance(24 * time.Hour)
	if _, err := e.svc.Remotes.CopyBackup(ctx, e.admin, bs[2].ID, "offsite", 0); err != nil {
		t.Fatal(err)
	}
	e.runJobs(t)
	want := e.clk.Now().AddDate(0, 0, 2)
	for _, b := range bs {
		cs := e.copies(t, b)
		if len(cs) != 1 || cs[0].State != domain.CopyCopied || !cs[0].LockUntil.Equal(want) {
			t.Fatalf("copy of %s: %+v, want locked until %s", b.ID, cs, want)
		}
		for _, o := range append(cs[0].Objects, domain.CopyObject{Key: cs[0].ManifestKey, VersionID: cs[0].ManifestVersion}) {
			info, err := e.mem.Stat(ctx, o.Key, o.VersionID)
			if err != nil || !info.Lock.Until.Equal(want) {
				t.Fatalf("object %s: %+v %v", o.Key, info.Lock, err)
			}
			if err := e.mem.Delete(ctx, o.Key, o.VersionID); !errors.Is(err, offsite.ErrLocked) {
				t.Fatalf("a locked object was deleted: %v", err)
			}
		}
	}
	// Names reveal nothing: no key holds a VM name or backup id.
	all, _ := e.mem.List(ctx, "", true)
	for _, o := range all {
		if strings.Contains(o.Key, "web") || strings.Contains(o.Key, bs[0].ID) {
			t.Fatalf("object key %s reveals names", o.Key)
		}
	}
	_ = r
}

// A remote import on an empty catalogue rebuilds the backups, the VM and
// the copies from the manifests alone, also behind delete markers; a
// restore --from fetches the whole chain.
func TestImportOnAnEmptyCatalogue(t *testing.T) {
	e := newOffEnv(t)
	ctx := context.Background()
	e.addRemote(t, 1)
	bs := e.backups(t, 3)
	if _, err := e.svc.Remotes.CopyBackup(ctx, e.admin, bs[2].ID, "offsite", 0); err != nil {
		t.Fatal(err)
	}
	e.runJobs(t)
	key, err := e.svc.Remotes.ExportKey(ctx, e.admin, "offsite")
	if err != nil {
		t.Fatal(err)
	}
	manifests, _ := e.mem.List(ctx, "knib/m/", false)
	if len(manifests) != 3 {
		t.Fatalf("manifests: %d", len(manifests))
	}
	e.mem.Hide(manifests[0].Key) // an attacker's plain DELETE

	// A new server: the same bucket, an empty catalogue, another VM list.
	e2 := newOffEnv(t)
	e2.mem = e.mem
	e2.svc.Remotes.SetOpener(func(offsite.Config) (offsite.Bucket, error) { return e.mem, nil })
	if _, err := e2.svc.Remotes.Add(ctx, e2.admin, domain.RemoteSpec{Name: "dr", Endpoint: "http://127.0.0.1:7070", Bucket: "knib", AccessKey: "ak", SecretKey: "sk", LockDays: 1},
		remotes.AddOptions{Key: key}); err != nil {
		t.Fatal(err)
	}
	res, err := e2.svc.Remotes.Import(ctx, e2.admin, "dr", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifests != 3 || res.Backups != 3 || res.Known != 0 || len(res.Unreadable) != 0 {
		t.Fatalf("import: %+v", res)
	}
	for _, b := range bs {
		got, err := e2.st.Backup(ctx, b.ID)
		if err != nil || got.Status != domain.BackupBackedUp || got.ParentID != b.ParentID || len(got.Files) != 1 || got.Files[0].Hash != b.Files[0].Hash {
			t.Fatalf("imported backup %s: %+v %v", b.ID, got, err)
		}
		if cs := e2.copies(t, b); len(cs) != 1 || cs[0].State != domain.CopyCopied {
			t.Fatalf("imported copies of %s: %+v", b.ID, cs)
		}
	}
	// Importing again records nothing new.
	if again, err := e2.svc.Remotes.Import(ctx, e2.admin, "dr", ""); err != nil || again.Backups != 0 || again.Known != 3 {
		t.Fatalf("second import: %+v %v", again, err)
	}
	f, err := e2.svc.Remotes.PlanFetch(ctx, mustBackup(t, e2, bs[2].ID), "dr")
	if err != nil {
		t.Fatal(err)
	}
	vm, _ := e2.st.VM(ctx, vmID)
	a, _ := e2.svc.Kernel.Agent(vm.HostID)
	if err := f.Run(ctx, a, "/st", time.Minute, func(float64, string) {}, 0, 100); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, o := range e2.gets[0].Objects {
		paths = append(paths, o.Path)
	}
	for _, b := range bs {
		if !strings.Contains(strings.Join(paths, " "), b.Files[0].Path) {
			t.Fatalf("the fetch misses %s: %v", b.Files[0].Path, paths)
		}
	}
	// A wrong key: the import is refused before anything is recorded.
	e3 := newOffEnv(t)
	e3.svc.Remotes.SetOpener(func(offsite.Config) (offsite.Bucket, error) { return e.mem, nil })
	other, _ := seal.NewKey()
	if _, err := e3.svc.Remotes.Add(ctx, e3.admin, domain.RemoteSpec{Name: "dr", Endpoint: "http://h:1", Bucket: "knib", AccessKey: "a", SecretKey: "s"}, remotes.AddOptions{Key: other.String()}); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("a wrong key was accepted: %v", err)
	}
}

func mustBackup(t *testing.T, e *offEnv, id string) domain.Backup {
	t.Helper()
	b, err := e.st.Backup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A daily policy copies each VM's last backup of every ended day, once;
// copies past their keep period go once their lock ended and no younger
// copy of their chain needs them.
func TestDailyPolicyAndExpiry(t *testing.T) {
	e := newOffEnv(t)
	ctx := context.Background()
	e.addRemote(t, 1)
	if _, err := e.svc.Remotes.SetPolicy(ctx, e.admin, e.off.ID, "offsite", "daily", 3); err != nil {
		t.Fatal(err)
	}
	bs := e.backups(t, 3) // today, 10:00 to 10:02
	if err := e.svc.Remotes.RunPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	e.runJobs(t)
	for _, b := range bs {
		if len(e.copies(t, b)) != 0 {
			t.Fatal("copied before the day ended")
		}
	}
	e.clk.Advance(15 * time.Hour) // the next day, 01:00
	if err := e.svc.Remotes.RunPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	e.runJobs(t)
	if cs := e.copies(t, bs[2]); len(cs) != 1 || cs[0].State != domain.CopyCopied {
		t.Fatalf("the day's last backup: %+v", cs)
	}
	if cs := e.copies(t, bs[0]); len(cs) != 1 || cs[0].State != domain.CopyCopied { // its chain
		t.Fatalf("the chain's full backup: %+v", cs)
	}
	// Once is once: another round copies nothing again.
	if err := e.svc.Remotes.RunPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, _ := e.st.Copies(ctx, store.CopyFilter{}); len(cs) != 3 {
		t.Fatalf("copies after a second round: %d", len(cs))
	}
	// Four days later every copy is past its keep period and unlocked.
	e.clk.Advance(4 * 24 * time.Hour)
	if err := e.svc.Remotes.RunPolicies(ctx); err != nil {
		t.Fatal(err)
	}
	if cs, _ := e.st.Copies(ctx, store.CopyFilter{}); len(cs) != 0 {
		t.Fatalf("expired copies stayed: %+v", cs)
	}
	for _, prefix := range []string{"knib/o/", "knib/m/"} {
		if left, _ := e.mem.List(ctx, prefix, true); len(left) != 0 {
			t.Fatalf("objects left: %+v", left)
		}
	}
}

// A job that gives up leaves the copy Failed with the reason, and a
// restore --from a remote without a finished copy is refused at once.
func TestCopyFailureAndFetchRefusal(t *testing.T) {
	e := newOffEnv(t)
	ctx := context.Background()
	e.addRemote(t, 0)
	bs := e.backups(t, 2)
	if _, err := e.svc.Remotes.PlanFetch(ctx, bs[1], "offsite"); !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("fetch without copies: %v", err)
	}
	if _, err := e.svc.Remotes.CopyBackup(ctx, e.admin, bs[0].ID, "nope", 0); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("copy to an unknown remote: %v", err)
	}
	e.svc.Remotes.CopyJobFailed(ctx, bs[0].ID, "nothing")
	if _, err := e.svc.Remotes.CopyBackup(ctx, e.admin, bs[0].ID, "offsite", 0); err != nil {
		t.Fatal(err)
	}
	e.svc.Remotes.CopyJobFailed(ctx, bs[0].ID, "the bucket is gone")
	cs := e.copies(t, bs[0])
	if len(cs) != 1 || cs[0].State != domain.CopyFailed || cs[0].Error != "the bucket is gone" {
		t.Fatalf("failed copy: %+v", cs)
	}
}

// A copy job whose upload fails is retried after the copy retry interval
// and then makes the copy; the failed attempt's message is kept on the job.
func TestCopyJobRetries(t *testing.T) {
	e := newOffEnv(t)
	ctx := context.Background()
	e.addRemote(t, 0)
	bs := e.backups(t, 1)
	failures := 1
	fake, _ := e.svc.Kernel.Agent(mustBackup(t, e, bs[0].ID).HostID)
	f := fake.(*agenttest.Fake)
	next := f.Task
	f.Task = func(req agentapi.Task) agentapi.TaskStatus {
		if _, ok := req.Request.(agentapi.OffsitePutRequest); ok && failures > 0 {
			failures--
			return agentapi.TaskStatus{State: agentapi.TaskFailed, Error: "connection reset by peer"}
		}
		return next(req)
	}
	if _, err := e.svc.Remotes.CopyBackup(ctx, e.admin, bs[0].ID, "offsite", 0); err != nil {
		t.Fatal(err)
	}
	e.runJobs(t)
	if cs := e.copies(t, bs[0]); len(cs) != 1 || cs[0].State != domain.CopyCopying {
		t.Fatalf("after a failed attempt: %+v", cs)
	}
	jobsNow, _ := e.st.Jobs(ctx, store.JobFilter{BackupID: bs[0].ID, All: true})
	if len(jobsNow) != 1 || jobsNow[0].State != "Queued" || !strings.Contains(jobsNow[0].LastError, "connection reset") {
		t.Fatalf("job after a failed attempt: %+v", jobsNow)
	}
	e.clk.Advance(6 * time.Minute) // backup.copy.retry.interval: 5 minutes
	e.runJobs(t)
	if cs := e.copies(t, bs[0]); len(cs) != 1 || cs[0].State != domain.CopyCopied {
		t.Fatalf("after the retry: %+v", cs)
	}
}
