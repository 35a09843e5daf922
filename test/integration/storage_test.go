package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// StorageJSON is the JSON of `knib storage list`.
type StorageJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Zone     string `json:"zone"`
	Path     string `json:"path"`
	Tag      string `json:"tag"`
	Enabled  bool   `json:"enabled"`
	Capacity int64  `json:"capacity"`
	Free     int64  `json:"free"`
	Used     int64  `json:"used"`
}

func (s *Server) storages() map[string]StorageJSON {
	s.t.Helper()
	var list []StorageJSON
	s.MustJSON(&list, "storage", "list")
	out := map[string]StorageJSON{}
	for _, st := range list {
		out[st.Name] = st
	}
	return out
}

// storageOf returns the id of the storage holding a backup.
func (s *Server) storageOf(id string) string {
	s.t.Helper()
	var b struct {
		StorageID string `json:"storage_id"`
	}
	s.MustJSON(&b, "backup", "show", id)
	return b.StorageID
}

// TestBackupStorages: two storages besides the default one; an offering's
// storage tag places the chain; a full and two incrementals with data
// written between are migrated to the other storage (files moved, verified,
// the source emptied), the chain continues there, and the newest backup
// restores with all the data; remove is refused while a storage holds
// backups and allowed after; disabled storages receive no new chain; bad
// paths are refused with 4xx.
func TestBackupStorages(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-stor", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")

	// The default storage is the data directory's.
	st := s.storages()
	if d, ok := st["default"]; !ok || d.Path != filepath.Join(s.DataDir, "storage") || d.Zone != "default" || !d.Enabled || d.Capacity <= 0 {
		t.Fatalf("default storage: %+v", st)
	}

	// Bad input: refused with a clear message, over the CLI and with 4xx over HTTP.
	dirA, dirB := filepath.Join(s.DataDir, "nfs-a"), filepath.Join(s.DataDir, "nfs-b")
	for _, d := range []string{dirA, dirB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	notDir := filepath.Join(s.DataDir, "a-file")
	os.WriteFile(notDir, []byte("x"), 0o600)
	for path, want := range map[string]string{
		"relative/dir":                      "absolute",
		dirA + "/../nfs-a":                  `".."`,
		dirA + "/":                          "clean",
		filepath.Join(s.DataDir, "missing"): "does not exist",
		notDir:                              "not a directory",
	} {
		msg := s.Fail(nil, 1, "storage", "add", "--zone", "default", "--path", path)
		if !strings.Contains(msg, want) {
			t.Errorf("storage add --path %q: %q, want it to say %q", path, msg, want)
		}
	}
	if msg := s.Fail(nil, 1, "storage", "add", "--zone", "nowhere", "--path", dirA); !strings.Contains(msg, "not found") {
		t.Errorf("unknown zone: %q", msg)
	}
	token, err := os.ReadFile(filepath.Join(s.DataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"relative/dir", dirA + "/../nfs-a"} {
		body, _ := json.Marshal(map[string]string{"zone": "default", "path": path})
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/storages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("POST /storages path %q: %d %s, want 400 problem+json", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if n := len(s.storages()); n != 1 {
		t.Fatalf("refused input added storages: %d", n)
	}

	s.CLI("storage", "add", "--zone", "default", "--path", dirA, "--name", "nfs-a", "--tag", "fast")
	s.CLI("storage", "add", "--zone", "default", "--path", dirB, "--name", "nfs-b")
	if msg := s.Fail(nil, 1, "storage", "add", "--zone", "default", "--path", dirB, "--name", "again"); !strings.Contains(msg, "exists already") {
		t.Errorf("same path twice: %q", msg)
	}
	st = s.storages()
	a, b := st["nfs-a"], st["nfs-b"]
	if len(st) != 3 || a.Tag != "fast" || !a.Enabled || a.Capacity <= 0 || b.Path != dirB {
		t.Fatalf("storages: %+v", st)
	}

	// The tagged offering places the chain on nfs-a, whatever the free space says.
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "tagged", "--storage-tag", "fast", "--backup-chain-size", "0")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "echo one > /data/one && sync")
	b1 := s.backup(dom.Name)
	if err := dom.WriteDisk(ctxT(t), 1, 0x11, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	guest(t, dom, "echo two > /data/two && sync")
	b2 := s.backup(dom.Name)
	if err := dom.WriteDisk(ctxT(t), 1, 0x22, 3<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b3 := s.backup(dom.Name)
	if b1.Type != "full" || b2.Type != "incremental" || b2.ParentID != b1.ID || b3.Type != "incremental" || b3.ParentID != b2.ID {
		t.Fatalf("chain: %s %s/%s %s/%s", b1.Type, b2.Type, b2.ParentID, b3.Type, b3.ParentID)
	}
	chain := []Backup{b1, b2, b3}
	for _, bk := range chain {
		if got := s.storageOf(bk.ID); got != a.ID {
			t.Fatalf("backup %s is on storage %s, want nfs-a %s", bk.ID, got, a.ID)
		}
		for _, f := range bk.Files {
			if _, err := os.Stat(filepath.Join(dirA, f.Path)); err != nil {
				t.Fatalf("backup %s disk %s not on nfs-a: %v", bk.ID, f.Disk, err)
			}
			if _, err := os.Stat(s.storage(f.Path)); err == nil {
				t.Fatalf("backup %s disk %s also on the default storage", bk.ID, f.Disk)
			}
		}
	}
	if u := s.storages()["nfs-a"].Used; u <= 0 {
		t.Fatalf("nfs-a usage %d after three backups", u)
	}

	// A storage holding backups cannot be removed.
	if msg := s.Fail(nil, 1, "storage", "remove", "nfs-a"); !strings.Contains(msg, "live backup") {
		t.Fatalf("remove nfs-a: %q", msg)
	}
	if msg := s.Fail(nil, 1, "storage", "migrate", "--from", "nfs-a", "--to", "nfs-a"); !strings.Contains(msg, "same storage") {
		t.Fatalf("migrate to itself: %q", msg)
	}

	// Migrate the whole chain to nfs-b.
	var moved struct {
		Moved []string `json:"moved"`
	}
	s.MustJSON(&moved, "storage", "migrate", "--from", "nfs-a", "--to", "nfs-b", "--vm", dom.Name)
	if len(moved.Moved) != 3 {
		t.Fatalf("migrate moved %v, want the 3 backups", moved.Moved)
	}
	after := s.backups(dom.Name)
	for _, bk := range chain {
		if got := s.storageOf(bk.ID); got != b.ID {
			t.Fatalf("backup %s is on %s after the migration, want nfs-b", bk.ID, got)
		}
		if _, err := os.Stat(filepath.Join(dirA, "backups", dom.UUID, bk.ID)); !os.IsNotExist(err) {
			t.Fatalf("backup %s still on nfs-a: %v", bk.ID, err)
		}
		for _, f := range after[bk.ID].Files {
			file := filepath.Join(dirB, f.Path)
			run(t, "qemu-img", "check", "-q", file)
			if got := hashFile(t, file); got != f.Hash {
				t.Fatalf("migrated %s: hash %s, recorded %s", f.Path, got, f.Hash)
			}
			// The backing chain resolves inside nfs-b.
			var infos []struct {
				Filename string `json:"filename"`
			}
			if err := json.Unmarshal([]byte(run(t, "qemu-img", "info", "-U", "--output=json", "--backing-chain", file)), &infos); err != nil {
				t.Fatal(err)
			}
			wantLayers := map[string]int{b1.ID: 1, b2.ID: 2, b3.ID: 3}[bk.ID]
			if len(infos) != wantLayers {
				t.Fatalf("%s: %d layers, want %d", f.Path, len(infos), wantLayers)
			}
			for _, l := range infos {
				if !strings.HasPrefix(filepath.Clean(l.Filename), dirB+"/") {
					t.Fatalf("%s: layer %s outside nfs-b", f.Path, l.Filename)
				}
			}
		}
	}
	if u := s.storages()["nfs-a"].Used; u != 0 {
		t.Fatalf("nfs-a still uses %d bytes", u)
	}

	// The chain continues on its new storage.
	guest(t, dom, "echo three > /data/three && sync")
	b4 := s.backup(dom.Name)
	if b4.Type != "incremental" || b4.ParentID != b3.ID || s.storageOf(b4.ID) != b.ID {
		t.Fatalf("b4 after the migration: %+v on %s", b4, s.storageOf(b4.ID))
	}

	// The newest backup restores with all the data.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b4.ID)
	if !pattern(t, flatten(t, dom.Disks[1]), 0x11, 1<<20, 1<<20) || !pattern(t, flatten(t, dom.Disks[1]), 0x22, 3<<20, 1<<20) {
		t.Fatal("after restoring b4, vdb misses the patterns written before b2 and b3")
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/one /data/two /data/three"); got != "one\ntwo\nthree\n" {
		t.Fatalf("after restoring b4: %q", got)
	}

	// nfs-a is empty now: it can go.
	s.CLI("storage", "remove", "nfs-a")
	if _, ok := s.storages()["nfs-a"]; ok {
		t.Fatal("nfs-a still listed after remove")
	}
	if msg := s.Fail(nil, 1, "storage", "remove", "nfs-b"); !strings.Contains(msg, "live backup") {
		t.Fatalf("remove nfs-b: %q", msg)
	}

	// Disabled storages receive no new chain: with every storage of the zone
	// disabled the backup is refused and nothing is recorded; enabling one
	// sends the chain there, not to the still disabled default.
	var plain struct{ ID string }
	s.MustJSON(&plain, "offering", "create", "--name", "plain", "--allow-quick-restore")
	s.CLI("vm", "unassign", dom.Name)
	s.CLI("vm", "assign", dom.Name, "--offering", plain.ID)
	s.CLI("storage", "disable", "nfs-b")
	s.CLI("storage", "disable", "default")
	before := len(s.backups(dom.Name))
	if msg := s.Fail(nil, 1, "backup", "create", dom.Name); !strings.Contains(msg, "disabled") {
		t.Fatalf("backup with every storage disabled: %q", msg)
	}
	if n := len(s.backups(dom.Name)); n != before {
		t.Fatalf("a refused backup changed the catalogue: %d backups, had %d", n, before)
	}
	s.CLI("storage", "enable", "nfs-b")
	b5 := s.backup(dom.Name)
	if b5.Type != "full" || s.storageOf(b5.ID) != b.ID {
		t.Fatalf("b5: %s on %s, want a full backup on nfs-b", b5.Type, s.storageOf(b5.ID))
	}
	s.CLI("storage", "enable", "default")

	// A quick restore runs the VM on the files of nfs-b and consolidates it
	// off them; meanwhile nothing could move or remove those files.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	s.MustJSON(&res, "backup", "restore", b5.ID, "--quick-restore")
	if res["consolidated"] != true {
		t.Fatalf("quick restore from nfs-b: %v", res)
	}
	v := s.vmDisks(dom.Name)
	if v.State != "Running" {
		t.Fatalf("quick restore must start the VM: %+v", v)
	}
	for _, d := range v.Disks {
		for _, l := range d.Backing {
			if strings.HasPrefix(l.Path, dirB+"/") {
				t.Fatalf("disk %s still reads nfs-b after consolidation: %+v", d.Target, d.Backing)
			}
		}
	}
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/one /data/two /data/three"); got != "one\ntwo\nthree\n" {
		t.Fatalf("after the quick restore of b5: %q", got)
	}
}

// TestStorageMigrateCrash kills the server during `knib storage migrate`
// after the copy (the catalogue still names the source) and after the
// switch (the source files are still there), restarts it, and proves that
// reconciliation alone rolls the first back (the partial copy goes, the
// source is intact) and finishes the second (the source files go), with
// every backup restorable.
func TestStorageMigrateCrash(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-stcrash", Start: true})
	s := StartServer(t, "")
	dirA, dirB := filepath.Join(s.DataDir, "src"), filepath.Join(s.DataDir, "dst")
	for _, d := range []string{dirA, dirB} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s.CLI("storage", "add", "--zone", "default", "--path", dirA, "--tag", "src")
	s.CLI("storage", "add", "--zone", "default", "--path", dirB)
	st := s.storages()
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "src", "--storage-tag", "src")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "echo crash > /data/c && sync")
	b1 := s.backup(dom.Name)
	if err := dom.WriteDisk(ctxT(t), 0, 0x33, 40<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	waitRecovered(t, s, dom.Name) // b2's merge ends before the server is killed
	backupDirs := func(root string) []string {
		left, _ := filepath.Glob(filepath.Join(root, "backups", dom.UUID, "*"))
		return left
	}
	// intact checks the backups on root: hashes as recorded, qemu-img check.
	intact := func(root string) {
		t.Helper()
		for _, bk := range s.backups(dom.Name) {
			for _, f := range bk.Files {
				file := filepath.Join(root, f.Path)
				run(t, "qemu-img", "check", "-q", file)
				if got := hashFile(t, file); got != f.Hash {
					t.Fatalf("%s: hash %s, recorded %s", file, got, f.Hash)
				}
			}
		}
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("reconciliation did not %s:\n%s", what, s.Log())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	crash := func(point, from, to string) {
		t.Helper()
		s.Restart("KNIB_CRASH_AT=" + point)
		if r := s.Run(nil, "storage", "migrate", "--from", from, "--to", to, "--async"); r.Code != 0 {
			t.Fatalf("storage migrate: %s", r.Stderr)
		}
		if err := s.Wait(3 * time.Minute); err != nil {
			t.Fatalf("the crash point was not reached: %v\n%s", err, s.Log())
		}
		if !strings.Contains(s.Log(), "crash point "+point) {
			t.Fatalf("server died elsewhere:\n%s", s.Log())
		}
		s.Restart()
	}

	// 1. Killed after the copy, before the switch: rolled back.
	crash("storage.migrate.before-switch", "src", "dst")
	waitFor("remove the partial copy", func() bool { return len(backupDirs(dirB)) == 0 })
	for _, id := range []string{b1.ID, b2.ID} {
		if got := s.storageOf(id); got != st["src"].ID {
			t.Fatalf("backup %s on %s after the rollback, want src", id, got)
		}
	}
	if len(backupDirs(dirA)) != 2 {
		t.Fatalf("source after the rollback: %v", backupDirs(dirA))
	}
	intact(dirA)

	// 2. Killed after the switch: the source files go.
	crash("storage.migrate.after-switch", "src", "dst")
	waitFor("remove the source files", func() bool { return len(backupDirs(dirA)) == 0 })
	for _, id := range []string{b1.ID, b2.ID} {
		if got := s.storageOf(id); got != st["dst"].ID {
			t.Fatalf("backup %s on %s after the switch, want dst", id, got)
		}
	}
	intact(dirB)

	// The migrated chain restores (a new VM from the newest backup,
	// verified with qemu-img compare) and holds the data.
	name := "knib-t-stcrash-new"
	removeVM(t, name)
	t.Cleanup(func() { removeVM(t, name) })
	var res struct {
		Disks []struct{ Target, Path, Verified string }
	}
	s.MustJSON(&res, "backup", "create-vm", b2.ID, "--name", name)
	if len(res.Disks) != 1 || !verifiedCopy(res.Disks[0].Verified) {
		t.Fatalf("create-vm from the migrated backup: %+v", res)
	}
	if !pattern(t, flatten(t, res.Disks[0].Path), 0x33, 40<<20, 1<<20) {
		t.Fatal("the migrated backup misses the data written before it")
	}
	// A migration with nothing left to move is refused and changes nothing.
	if msg := s.Fail(nil, 1, "storage", "migrate", "--from", "src", "--to", "dst"); !strings.Contains(msg, "no backups") {
		t.Fatalf("empty migration: %q", msg)
	}
}
