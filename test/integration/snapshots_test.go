package integration

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/knib/knib/internal/testbed"
)

type snapshot struct {
	ID, Name, Status string
}

func (s *Server) snapshot(vm, name string) snapshot {
	s.t.Helper()
	var sn snapshot
	s.MustJSON(&sn, "snapshot", "create", vm, "--name", name)
	if sn.Status != "Ready" {
		s.t.Fatalf("snapshot %s: %+v", name, sn)
	}
	return sn
}

// files lists the /data files of the guest, sorted, as one string.
func files(t *testing.T, d *testbed.Domain) string {
	t.Helper()
	out := strings.Fields(guest(t, d, "ls /data | grep -v lost+found || true"))
	sort.Strings(out)
	return strings.Join(out, " ")
}

func restart(t *testing.T, d *testbed.Domain) {
	t.Helper()
	if err := d.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

func boot(t *testing.T, d *testbed.Domain) {
	t.Helper()
	if err := d.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
}

// snapFiles counts the VM snapshot overlays in a disk's chain.
func snapFiles(v VMDisks, disk int) int {
	n := 0
	d := v.Disks[disk]
	all := []string{d.Source}
	for _, l := range d.Backing {
		all = append(all, l.Path)
	}
	for _, p := range all {
		if strings.HasPrefix(filepath.Base(p), "knib-snap.") {
			n++
		}
	}
	return n
}

// TestDiskOnlySnapshots is the seed's "Tests related to disk-only VM
// snapshots", checking the guest's files at every step.
func TestDiskOnlySnapshots(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-snaps", Start: true})
	s := StartServer(t, "")
	s.CLI("host", "refresh")
	guest(t, dom, "echo 0 > /data/f0 && sync")
	s1 := s.snapshot(dom.Name, "s1") // 1.
	guest(t, dom, "echo 1 > /data/f1 && sync")
	s2 := s.snapshot(dom.Name, "s2") // 2.
	guest(t, dom, "echo 2 > /data/f2 && sync")

	restart(t, dom) // 3. revert to s2
	s.CLI("snapshot", "revert", s2.ID)
	boot(t, dom)
	if got := files(t, dom); got != "f0 f1" {
		t.Fatalf("after reverting to s2: %q", got)
	}
	if v := s.vmDisks(dom.Name); snapFiles(v, 0) != 2 {
		t.Fatalf("chain after reverting to s2: %+v", v.Disks[0])
	}
	restart(t, dom) // 4. revert to s1
	s.CLI("snapshot", "revert", s1.ID)
	boot(t, dom)
	if got := files(t, dom); got != "f0" {
		t.Fatalf("after reverting to s1: %q", got)
	}
	if v := s.vmDisks(dom.Name); snapFiles(v, 0) != 1 {
		t.Fatalf("chain after reverting to s1: %+v", v.Disks[0])
	}
	guest(t, dom, "echo 3 > /data/f3 && sync")
	s3 := s.snapshot(dom.Name, "s3") // 5.
	guest(t, dom, "echo 4 > /data/f4 && sync")

	chain := func(v VMDisks) string {
		out := []string{v.Disks[0].Source}
		for _, l := range v.Disks[0].Backing {
			out = append(out, l.Path)
		}
		return strings.Join(out, " <- ")
	}
	before := s.vmDisks(dom.Name)
	var del snapshot
	s.MustJSON(&del, "snapshot", "delete", s1.ID) // 6. s1 is a branch point: logical only
	if del.Status != "Removed" {
		t.Fatalf("deleting s1: %+v", del)
	}
	// Marked Removed, still listed, its files kept on storage and the chain unchanged.
	var listed []snapshot
	s.MustJSON(&listed, "snapshot", "list", dom.Name)
	removed := false
	for _, sn := range listed {
		removed = removed || (sn.ID == s1.ID && sn.Status == "Removed")
	}
	if !removed {
		t.Fatalf("s1 should be listed as Removed: %+v", listed)
	}
	s1Files, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-snap.*."+s1.ID+"*"))
	if len(s1Files) == 0 {
		t.Fatal("s1's files are gone from storage")
	}
	for _, f := range s1Files {
		run(t, "qemu-img", "check", "-U", "-q", f)
	}
	if v := s.vmDisks(dom.Name); chain(v) != chain(before) {
		t.Fatalf("removing s1 changed the chain: %s -> %s", chain(before), chain(v))
	}
	s.MustJSON(&del, "snapshot", "delete", s3.ID) // 7. merged with the current disk
	if del.Status != "Deleted" {
		t.Fatalf("deleting s3: %+v", del)
	}
	// s3's overlay is merged and gone: one layer fewer, the data intact.
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-snap.*."+s3.ID+"*")); len(left) != 0 {
		t.Fatalf("s3's overlay is left: %v", left)
	}
	v := s.vmDisks(dom.Name)
	if snapFiles(v, 0) != snapFiles(before, 0)-1 || len(v.Disks[0].Backing) != len(before.Disks[0].Backing)-1 {
		t.Fatalf("deleting s3 should drop one layer: %s -> %s", chain(before), chain(v))
	}
	if got := files(t, dom); got != "f0 f3 f4" {
		t.Fatalf("guest files after merging s3: %q", got)
	}
	run(t, "qemu-img", "check", "-U", "-q", v.Disks[0].Source)
	s.MustJSON(&del, "snapshot", "delete", s2.ID) // 8. gone, and s1 merged with the current disk
	if del.Status != "Deleted" {
		t.Fatalf("deleting s2: %+v", del)
	}
	var left []snapshot
	s.MustJSON(&left, "snapshot", "list", dom.Name)
	if len(left) != 0 {
		t.Fatalf("snapshots left: %+v", left)
	}
	v = s.vmDisks(dom.Name)
	if v.Disks[0].Source != dom.Disks[0] || len(v.Disks[0].Backing) != 0 {
		t.Fatalf("everything should be merged into the disk: %+v", v.Disks[0])
	}
	if got := files(t, dom); got != "f0 f3 f4" {
		t.Fatalf("guest files after merging: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-*")); len(left) != 0 {
		t.Fatalf("overlay files left: %v", left)
	}
}

// TestBackupsAndSnapshotsInterleaved is steps 6-16 of the seed's
// "Interactions with other functionalities".
func TestBackupsAndSnapshotsInterleaved(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-mix", DiskSizes: []int64{64 << 20, 16 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "mix")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	guest(t, dom, "echo 1 > /data/file1 && sync")
	b1 := s.backup(dom.Name) // 6.
	guest(t, dom, "echo 2 > /data/file2 && sync")
	s1 := s.snapshot(dom.Name, "s1") // 7.
	guest(t, dom, "echo 3 > /data/file3 && sync")
	s2 := s.snapshot(dom.Name, "s2") // 8.
	guest(t, dom, "echo 4 > /data/file4 && sync")
	b2 := s.backup(dom.Name) // 9.
	if b2.Type != "incremental" || b2.ParentID != b1.ID {
		t.Fatalf("b2 after snapshots must continue the chain: %+v", b2)
	}
	guest(t, dom, "echo 5 > /data/file5 && sync")
	b3 := s.backup(dom.Name) // 10.
	if b3.Type != "incremental" || b3.ParentID != b2.ID {
		t.Fatalf("b3: %+v", b3)
	}
	// The collapsed incremental b2 holds files 1-4.
	raw := flatten(t, s.storage(b2.Files[0].Path))
	for _, f := range []string{"/file1", "/file2", "/file3", "/file4"} {
		if _, ok := ext4Cat(t, raw, f); !ok {
			t.Fatalf("b2 misses %s", f)
		}
	}

	restart(t, dom) // 11.
	s.CLI("snapshot", "revert", s1.ID)
	boot(t, dom)
	if got := files(t, dom); got != "file1 file2" {
		t.Fatalf("revert s1: %q", got)
	}
	if v := s.vmDisks(dom.Name); v.ChainHead != "" {
		t.Fatalf("reverting to a snapshot older than the chain head ends the chain: %+v", v)
	}
	restart(t, dom) // 12.
	s.CLI("snapshot", "revert", s2.ID)
	boot(t, dom)
	if got := files(t, dom); got != "file1 file2 file3" {
		t.Fatalf("revert s2: %q", got)
	}
	// A restore is refused while snapshots exist.
	restart(t, dom)
	if msg := s.Fail(nil, 1, "backup", "restore", b1.ID); !strings.Contains(msg, "snapshot") {
		t.Fatalf("restore with snapshots: %s", msg)
	}
	s.CLI("snapshot", "delete", s1.ID) // 13.
	s.CLI("snapshot", "delete", s2.ID)
	for _, c := range []struct {
		b    Backup
		want string
	}{{b1, "file1"}, {b2, "file1 file2 file3 file4"}, {b3, "file1 file2 file3 file4 file5"}} { // 14-16.
		s.CLI("backup", "restore", c.b.ID)
		boot(t, dom)
		if got := files(t, dom); got != c.want {
			t.Fatalf("restore %s: %q, want %q", c.b.ID, got, c.want)
		}
		restart(t, dom)
	}
	s.checkRestorable(s.backups(dom.Name))
}
