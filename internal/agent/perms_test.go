package agent

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/fileperm"
	"github.com/knib/knib/internal/qemuimg"
)

// testGroup gives the agent a QEMU group no file has yet (giving files
// away takes root).
func testGroup(t *testing.T, a *Local) fileperm.Perms {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("changing a file's group to another group needs root")
	}
	a.perm, a.permErr = fileperm.Perms{GID: 4242, Group: "g4242"}, nil
	return a.perm
}

func modeOf(t *testing.T, path string) (uint32, int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Mode & 0o7777, int(st.Gid)
}

// Everything a backup, an incremental, a restore and a quick restore write
// is the agent's private tree: 0750 directories and 0640 files in the
// QEMU group in the storage, 0660 disks beside the VM's; the host check
// finds nothing, and then finds a file an operator opened to everyone.
func TestWhatTheAgentWritesIsPrivate(t *testing.T) {
	e := newHostEnv(t, false)
	testGroup(t, e.a)
	e.a.cfg.StoragePath = e.storage
	if err := e.a.TightenStorage(); err != nil { // t.TempDir is 0700
		t.Fatal(err)
	}
	out, err := e.a.takeBackup(e.ctx, e.fullRequest("b1"), noProgress)
	if err != nil {
		t.Fatal(err)
	}
	b1 := out.(agentapi.TakeBackupResult)
	delta := DeltaPath(e.base, e.uuid, "vda", "b1")
	if mode, gid := modeOf(t, delta); mode != 0o660 || gid != 4242 {
		t.Fatalf("delta made by qemu-img: %04o group %d", mode, gid)
	}
	inc := agentapi.TakeBackupRequest{InStorage: agentapi.InStorage{Storage: e.storage}, BackupID: "b2", DomainUUID: e.uuid,
		Dir: "backups/" + e.uuid + "/b2", Disks: []agentapi.BackupDiskPlan{{Target: "vda", Frozen: delta, Delta: delta,
			MergeInto: e.base, Layers: []string{delta}, ParentFile: b1.Files[0].Path}}}
	out, err = e.a.takeBackup(e.ctx, inc, noProgress)
	if err != nil {
		t.Fatal(err)
	}
	b2 := out.(agentapi.TakeBackupResult)
	rec := agentapi.ReconcileRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid}
	if _, err := e.a.reconcile(e.ctx, rec, noProgress); err != nil {
		t.Fatal(err)
	}
	req := agentapi.RestoreRequest{InStorage: agentapi.InStorage{Storage: e.storage}, DomainUUID: e.uuid,
		Dir: "backups/" + e.uuid + "/b2", Files: []agentapi.RestoreFile{{Disk: "vda", Path: b2.Files[0].Path}}}
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatal(err)
	}
	if mode, gid := modeOf(t, e.base); mode != 0o660 || gid != 4242 {
		t.Fatalf("restored disk: %04o group %d, want 0660 group 4242", mode, gid)
	}
	req.Quick = true
	if _, err := e.a.restore(e.ctx, req, noProgress); err != nil {
		t.Fatal(err)
	}
	if mode, gid := modeOf(t, e.base); mode != 0o660 || gid != 4242 {
		t.Fatalf("quick restore's overlay: %04o group %d, want 0660 group 4242", mode, gid)
	}
	n := 0
	err = filepath.WalkDir(e.storage, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		want := uint32(0o640)
		if d.IsDir() {
			want = 0o750
		}
		if mode, gid := modeOf(t, p); mode != want || gid != 4242 {
			t.Errorf("%s: %04o group %d, want %04o group 4242", p, mode, gid, want)
		}
		n++
		return nil
	})
	if err != nil || n < 10 {
		t.Fatalf("walked %d paths: %v", n, err)
	}
	if probs, err := e.a.CheckHost(); err != nil || len(probs) != 0 {
		t.Fatalf("host check: %v %v", probs, err)
	}
	manifest := filepath.Join(e.storage, "backups", e.uuid, "b1", "manifest.json")
	if err := os.Chmod(manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	probs, err := e.a.CheckHost()
	if err != nil || len(probs) != 1 || !strings.HasPrefix(probs[0], manifest+": mode 0644: other users have access") {
		t.Fatalf("host check of an opened file: %v %v", probs, err)
	}
}

// A storage an older knib wrote is tightened by the first task that works
// in it, once: the agent does not walk it again for every task.
func TestFirstTaskTightensItsStorage(t *testing.T) {
	e := newHostEnv(t, false)
	testGroup(t, e.a)
	old := filepath.Join(e.storage, "backups", "vm", "b0")
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(old, "vda.qcow2")
	if err := os.WriteFile(file, []byte("disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	run := func(id string) {
		t.Helper()
		req := agentapi.StorageStatRequest{InStorage: agentapi.InStorage{Storage: e.storage}}
		if err := e.a.StartTask(ctx, agentapi.StorageStat.Task(id, req)); err != nil {
			t.Fatal(err)
		}
		e.a.tasks.wait(id)
		if st, err := e.a.TaskStatus(ctx, id); err != nil || st.State != agentapi.TaskSucceeded {
			t.Fatalf("task %s: %+v %v", id, st, err)
		}
	}
	run("stat-1")
	for p, want := range map[string]uint32{e.storage: 0o750, old: 0o750, file: 0o640} {
		if mode, gid := modeOf(t, p); mode != want || gid != 4242 {
			t.Errorf("%s: %04o group %d, want %04o group 4242", p, mode, gid, want)
		}
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	run("stat-2")
	if mode, _ := modeOf(t, file); mode != 0o644 {
		t.Fatalf("the second task walked the storage again: %04o", mode)
	}
}

// A storage migration's copies are private too, whatever the source's
// modes.
func TestStorageCopiesArePrivate(t *testing.T) {
	ctx := context.Background()
	from, to := t.TempDir(), t.TempDir()
	a := &Local{img: qemuimg.Default}
	testGroup(t, a)
	b1 := "backups/vm/b1"
	if err := os.MkdirAll(filepath.Join(from, b1), 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(from, b1, "vda.qcow2")
	if err := a.img.Create(ctx, disk, "qcow2", 4<<20, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(from, b1, "manifest.json"), []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{disk, filepath.Join(from, b1, "manifest.json")} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := HashFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	req := agentapi.StorageCopyRequest{From: from, Backups: []agentapi.StorageCopyBackup{
		{ID: "b1", Dir: b1, Files: []agentapi.StorageCopyFile{{Disk: "vda", Path: b1 + "/vda.qcow2", Hash: h}}}}}
	req.Storage = to
	if _, err := a.copyStorage(ctx, req, noProgress); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]uint32{
		filepath.Join(to, "backups"): 0o750, filepath.Join(to, b1): 0o750,
		filepath.Join(to, b1, "vda.qcow2"): 0o640, filepath.Join(to, b1, "manifest.json"): 0o640,
	} {
		if mode, gid := modeOf(t, p); mode != want || gid != 4242 {
			t.Errorf("%s: %04o group %d, want %04o group 4242", p, mode, gid, want)
		}
	}
}
