package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/testbed"
)

// migWrite is one write between backups: a pattern in vdb (1 MiB at
// offset MiB) and a line in /data/v on vda.
type migWrite struct {
	pattern byte
	offset  int64
	text    string
}

// TestLiveMigrationKeepsTheChain is the seed's "Interactions with other
// functionalities" 1-5 across two libvirt daemons, the VM migrated live with
// virsh (outside knib) and backed up at once, before any inventory refresh:
//
//  1. A → B, plain live migration (disk files and their chains stay): the
//     next backup runs on B and is incremental on both disks;
//  2. B → A with vdb's storage copied (--copy-storage-all --migrate-disks
//     vdb: a new flat file, no delta): incremental on vda, full on vdb;
//  3. A → B without --persistent/--undefinesource (A keeps a shut-off
//     definition of the same uuid, B runs a transient one): the catalogue
//     keeps the VM on B through inventory passes, and the backup runs on B,
//     incremental;
//
// each backup holding exactly the data written before it (both disks), and
// backups from before the migrations still restorable.
func TestLiveMigrationKeepsTheChain(t *testing.T) {
	s, hostB := crossHost(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-mig", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	lB := testbed.ConnectHost(t, hostB)
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })
	onA := dom
	onB := &testbed.Domain{Name: dom.Name, UUID: dom.UUID, L: lB, Targets: dom.Targets,
		QEMULog: filepath.Join(hostB.QEMULogDir, dom.Name+".log")}
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "mig")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	var done []migWrite
	write := func(d *testbed.Domain, w migWrite) {
		t.Helper()
		if err := d.WriteDisk(ctxT(t), 1, w.pattern, w.offset, 1<<20); err != nil {
			t.Fatal(err)
		}
		guest(t, d, "echo "+w.text+" > /data/v && sync")
		done = append(done, w)
	}
	write(onA, migWrite{0x11, 0, "m1"})
	b1 := s.backup(dom.Name)
	write(onA, migWrite{0x22, 1 << 20, "m2"})
	b2 := s.backup(dom.Name)
	if b1.Type != "full" || b2.Type != "incremental" {
		t.Fatalf("before the migration: b1 %s, b2 %s", b1.Type, b2.Type)
	}
	write(onA, migWrite{0x33, 2 << 20, "m3"})

	// 1. Plain live migration A → B; back up at once.
	migrate(t, "qemu:///system", hostB.URI, dom.Name, "--persistent", "--undefinesource")
	neverMissing(t, s, dom.Name)
	// A restore started now must not take the VM for a deleted one on A
	// (which it would define there again and write its disks): it runs
	// on B, and a restore needs it stopped.
	if msg := s.Fail(nil, 1, "backup", "restore", b2.ID); !strings.Contains(msg, "stop it") {
		t.Fatalf("restore of the migrated VM: %s", msg)
	}
	reattach(t, onB)
	b3 := s.backup(dom.Name)
	checkMigBackup(t, s, b3, b2.ID, map[string]bool{"vda": false, "vdb": false}, done)
	checkVMOn(t, s, dom.Name, "hostb", "Running")
	if _, err := onA.L.DomainLookupByName(dom.Name); err == nil {
		t.Fatal("after --undefinesource the VM is still defined on host A")
	}
	write(onB, migWrite{0x44, 3 << 20, "m4"})

	// 2. B → A with vdb's storage copied into a new, flat file.
	copied := filepath.Join(dom.Dir, "copied", "vdb.qcow2")
	migrateCopyingDisk(t, hostB.URI, "qemu:///system", dom.Name, "vdb", copied, 32<<20)
	reattach(t, onA)
	// Right after the move (the seed's interaction row 2): the copied vdb
	// has no delta, vda still runs on its knib delta.
	s.CLI("host", "refresh")
	moved := s.vmDisks(dom.Name)
	if moved.Disks[1].Source != copied || len(moved.Disks[1].Backing) != 0 {
		t.Fatalf("right after the move vdb should be the flat copied file: %+v", moved.Disks[1])
	}
	if !strings.Contains(filepath.Base(moved.Disks[0].Source), "knib-delta.") || len(moved.Disks[0].Backing) == 0 {
		t.Fatalf("right after the move vda should still run on its knib delta: %+v", moved.Disks[0])
	}
	b4 := s.backup(dom.Name)
	checkMigBackup(t, s, b4, b3.ID, map[string]bool{"vda": false, "vdb": true}, done)
	checkVMOn(t, s, dom.Name, "localhost", "Running")
	v := s.vmDisks(dom.Name)
	if v.Disks[1].Source == copied || len(v.Disks[1].Backing) != 1 || v.Disks[1].Backing[0].Path != copied {
		t.Fatalf("after b4, vdb should be a knib delta on the copied file: %+v", v.Disks[1])
	}
	// The delta vdb left behind on the old chain is a left-over: removed.
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*.vdb.*")); len(left) != 0 {
		t.Fatalf("the old delta of the copied disk is left over: %v", left)
	}
	// The backup taken after the migration restores exactly: a new VM from
	// b4, its vdb compared with the VM's own (nothing was written since)
	// and its file system read.
	restoredEqual(t, s, b4.ID, v.Disks[1].Source, "m4\n")
	write(onA, migWrite{0x55, 4 << 20, "m5"})

	// 3. A → B, plain virsh migrate: A keeps a shut-off definition of the
	// same uuid, B runs a transient domain. The inventory keeps the VM on B.
	migrate(t, "qemu:///system", hostB.URI, dom.Name)
	neverMissing(t, s, dom.Name)
	reattach(t, onB)
	if st, err := onA.State(); err != nil || st != libvirt.DomainShutoff {
		t.Fatalf("host A should keep a shut-off definition: state %d, %v", st, err)
	}
	b5 := s.backup(dom.Name)
	checkMigBackup(t, s, b5, b4.ID, map[string]bool{"vda": false, "vdb": false}, done)
	for range 3 {
		checkVMOn(t, s, dom.Name, "hostb", "Running")
		time.Sleep(time.Second)
	}
	if msg := s.Fail(nil, 1, "backup", "restore", b4.ID); !strings.Contains(msg, "stop it") {
		t.Fatalf("restore of the VM running on B, stopped on A: %s", msg)
	}
	// Host A's stale definition was not touched by the backup on B.
	xml := run(t, "virsh", "-c", "qemu:///system", "dumpxml", "--inactive", dom.Name)
	if strings.Contains(xml, b5.ID) {
		t.Fatalf("the backup on B changed the stale definition on A:\n%s", xml)
	}
	write(onB, migWrite{0x66, 5 << 20, "m6"})
	b6 := s.backup(dom.Name)
	checkMigBackup(t, s, b6, b5.ID, map[string]bool{"vda": false, "vdb": false}, done)

	// Backups from before the migrations restore too (b2: m2, two patterns).
	raw := flatten(t, s.storage(fileOf(t, b2, "vdb")))
	if !pattern(t, raw, 0x22, 1<<20, 1<<20) || !pattern(t, raw, 0, 2<<20, 1<<20) {
		t.Fatal("b2's vdb content changed")
	}
	restoredEqual(t, s, b2.ID, "", "m2\n")
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "another host") || strings.Contains(l, "disk copied full") {
			t.Log(l)
		}
	}
	if strings.Contains(s.Log(), "level=ERROR") {
		t.Errorf("server errors:\n%s", s.Log())
	}
}

// migrate live-migrates a domain between two libvirt daemons of this
// machine with virsh (direct, not peer to peer: the source daemon cannot
// open the second daemon's socket URI itself), QEMU's migration stream on
// 127.0.0.1.
func migrate(t *testing.T, from, to, name string, flags ...string) {
	t.Helper()
	args := append([]string{"-c", from, "migrate", "--live", "--unsafe"}, flags...)
	args = append(args, name, to, "tcp://127.0.0.1")
	run(t, "virsh", args...)
}

// migrateCopyingDisk live-migrates a domain and copies one disk's storage
// (flattened: the whole chain) into a new file, whose definition has no
// backing chain; the other disks keep their files.
func migrateCopyingDisk(t *testing.T, from, to, name, target, newFile string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(newFile), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", newFile, strconv.FormatInt(size, 10))
	dir := t.TempDir()
	files := map[string]string{}
	for _, kind := range []string{"live", "persistent"} {
		args := []string{"-c", from, "dumpxml", "--migratable", name}
		if kind == "persistent" {
			args = append(args, "--inactive")
		}
		var d libvirtxml.Domain
		if err := d.Unmarshal(run(t, "virsh", args...)); err != nil {
			t.Fatal(err)
		}
		found := false
		for i, disk := range d.Devices.Disks {
			if disk.Target != nil && disk.Target.Dev == target {
				d.Devices.Disks[i].Source = &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: newFile}}
				d.Devices.Disks[i].BackingStore = nil
				found = true
			}
		}
		if !found {
			t.Fatalf("%s: no disk %s", name, target)
		}
		doc, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		files[kind] = filepath.Join(dir, kind+".xml")
		if err := os.WriteFile(files[kind], []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "virsh", "-c", from, "migrate", "--live", "--unsafe", "--persistent", "--undefinesource",
		"--copy-storage-all", "--migrate-disks", target, "--xml", files["live"], "--persistent-xml", files["persistent"],
		name, to, "tcp://127.0.0.1")
}

// reattach looks the migrated domain up on its new daemon and waits for its
// guest agent.
func reattach(t *testing.T, d *testbed.Domain) {
	t.Helper()
	h, err := d.L.DomainLookupByName(d.Name)
	if err != nil {
		t.Fatalf("after the migration: %v", err)
	}
	d.Dom = h
	if err := d.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// checkMigBackup checks a backup after a migration: incremental on parent,
// the disks copied full as wanted, and its files holding every write so
// far (vdb's patterns, vda's /data/v) and nothing else in vdb's first MiBs.
func checkMigBackup(t *testing.T, s *Server, b Backup, parent string, wantFull map[string]bool, done []migWrite) {
	t.Helper()
	if b.Type != "incremental" || b.ParentID != parent {
		t.Fatalf("backup %s: %s on %s, want incremental on %s", b.ID, b.Type, b.ParentID, parent)
	}
	full := s.fullDisks(b.ID)
	for disk, want := range wantFull {
		if full[disk] != want {
			t.Fatalf("backup %s: full disks %v, want %v", b.ID, full, wantFull)
		}
	}
	raw := flatten(t, s.storage(fileOf(t, b, "vdb")))
	for _, w := range done {
		if !pattern(t, raw, w.pattern, w.offset, 1<<20) {
			t.Fatalf("backup %s: vdb lacks 0x%02x at %d", b.ID, w.pattern, w.offset)
		}
	}
	if !pattern(t, raw, 0, int64(len(done))<<20, 1<<20) {
		t.Fatalf("backup %s: vdb has data after the last write", b.ID)
	}
	last := done[len(done)-1].text + "\n"
	if got, ok := ext4Cat(t, flatten(t, s.storage(fileOf(t, b, "vda"))), "/v"); !ok || got != last {
		t.Fatalf("backup %s: /data/v is %q, want %q", b.ID, got, last)
	}
}

func fileOf(t *testing.T, b Backup, disk string) string {
	t.Helper()
	for _, f := range b.Files {
		if f.Disk == disk {
			return f.Path
		}
	}
	t.Fatalf("backup %s has no file for %s: %+v", b.ID, disk, b.Files)
	return ""
}

// checkVMOn checks the catalogue's host and state of the VM after an
// inventory pass.
func checkVMOn(t *testing.T, s *Server, name, host, state string) {
	t.Helper()
	s.CLI("host", "refresh")
	var vm struct {
		Host  string `json:"host"`
		State string `json:"state"`
	}
	s.MustJSON(&vm, "vm", "show", name)
	if vm.Host != host || vm.State != state {
		t.Fatalf("vm %s: %+v, want on %s %s\n%s", name, vm, host, state, s.Log())
	}
}

// neverMissing watches the VM in the catalogue after a migration while
// the inventory catches up (Paused for a moment is what the hosts showed
// during the switch-over): never Missing or Stopped, Running on host B in
// the end.
func neverMissing(t *testing.T, s *Server, name string) {
	t.Helper()
	var seen []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var vm struct {
			Host  string `json:"host"`
			State string `json:"state"`
		}
		s.MustJSON(&vm, "vm", "show", name)
		seen = append(seen, vm.Host+"/"+vm.State)
		if vm.State == "Missing" || vm.State == "Stopped" {
			t.Fatalf("vm %s after the migration: %v\n%s", name, seen, s.Log())
		}
		if vm.Host == "hostb" && vm.State == "Running" && len(seen) >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vm %s is not Running on hostb after the migration: %v\n%s", name, seen, s.Log())
		}
	}
	t.Logf("catalogue after the migration: %v", seen)
}

// restoredEqual makes a new VM on host A from a backup (knib verifies each
// disk against the backup), checks /data/v in its vda and, when like is
// set, that its vdb equals that image.
func restoredEqual(t *testing.T, s *Server, backupID, like, wantV string) {
	t.Helper()
	const name = "knib-t-mig-r"
	removeVM(t, name)
	var res struct {
		Disks []struct{ Target, Path, Verified string }
	}
	s.MustJSON(&res, "backup", "create-vm", backupID, "--name", name, "--host", "localhost")
	defer func() {
		removeVM(t, name)
		for _, d := range res.Disks {
			os.Remove(d.Path)
		}
	}()
	for _, d := range res.Disks {
		if !verifiedCopy(d.Verified) {
			t.Fatalf("create-vm from %s: disk %s not verified: %+v", backupID, d.Target, res)
		}
		switch d.Target {
		case "vda":
			if got, ok := ext4Cat(t, flatten(t, d.Path), "/v"); !ok || got != wantV {
				t.Fatalf("create-vm from %s: /data/v %q, want %q", backupID, got, wantV)
			}
		case "vdb":
			if like != "" {
				run(t, "qemu-img", "compare", "-U", like, d.Path)
			}
		}
	}
}
