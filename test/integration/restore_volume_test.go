package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/knib/knib/internal/testbed"
)

// volumeRestore is the answer of `knib backup restore-volume`.
type volumeRestore struct {
	VM           string
	Host         string
	Started      bool
	Consolidated *bool
	Disks        []struct{ Target, Path, Verified string }
}

// TestRestoreVolumeRows is the seed's restoreVolumeFromBackupAndAttachToVM
// table on one VM with two disks: a volume restored onto the same VM while
// it runs (row 2) and while it is stopped (row 1), each as a full copy and
// as a quick restore (row 5: an overlay on the backup file, consolidated
// while the VM runs; a stopped VM is started on it, never turned into a
// full copy), and a quick restore onto the stopped VM with --host, which
// starts it on host B (row 6). Every restored disk is read in the guest.
func TestRestoreVolumeRows(t *testing.T) {
	s, hostB := crossHost(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-rvol", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	lB := testbed.ConnectHost(t, hostB)
	t.Cleanup(func() { testbed.RemoveDomain(lB, dom.Name) })
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "rvol", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	if err := dom.WriteDisk(ctxT(t), 1, 0x71, 2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b := s.backup(dom.Name)
	// Written after the backup: a restored volume must not have it.
	if err := dom.WriteDisk(ctxT(t), 1, 0x72, 2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}

	// reads checks in the guest that device target holds the backed-up
	// pattern (hot-plugged devices show up after a moment).
	reads := func(d *testbed.Domain, target string) {
		t.Helper()
		guest(t, d, "i=0; while [ ! -b /dev/"+target+" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -b /dev/"+target)
		got := guest(t, d, "dd if=/dev/"+target+" bs=1M skip=2 count=1 2>/dev/null | md5sum")
		want := guest(t, d, "dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'q' | md5sum")
		if got != want {
			t.Fatalf("restored %s: %s, want the backed-up pattern %s", target, got, want)
		}
	}
	restore := func(flags ...string) volumeRestore {
		t.Helper()
		var res volumeRestore
		s.MustJSON(&res, append([]string{"backup", "restore-volume", b.ID, "--disk", "vdb", "--vm", dom.Name}, flags...)...)
		if len(res.Disks) != 1 {
			t.Fatalf("restore-volume %v: %+v", flags, res)
		}
		return res
	}
	// consolidated checks that a quick restore's disk no longer reads the
	// backup file.
	consolidated := func(res volumeRestore) {
		t.Helper()
		if res.Consolidated == nil || !*res.Consolidated || res.Disks[0].Verified != "overlay on the backup file" {
			t.Fatalf("quick volume restore: %+v", res)
		}
		for _, d := range s.vmDisks(dom.Name).Disks {
			if d.Target == res.Disks[0].Target && (d.Source != res.Disks[0].Path || len(d.Backing) != 0) {
				t.Fatalf("disk %s after consolidation: %s, backing %+v", d.Target, d.Source, d.Backing)
			}
		}
	}

	// Row 2: the VM runs; a full copy, then a quick restore.
	res := restore()
	if !verifiedCopy(res.Disks[0].Verified) || res.Started {
		t.Fatalf("volume restore onto the running VM: %+v", res)
	}
	reads(dom, res.Disks[0].Target)
	res = restore("--quick-restore")
	consolidated(res)
	reads(dom, res.Disks[0].Target)

	// --host needs a quick restore and a stopped VM; a refusal changes nothing.
	if msg := s.Fail(nil, 1, "backup", "restore-volume", b.ID, "--disk", "vdb", "--vm", dom.Name, "--host", "hostb"); !strings.Contains(msg, "quick") {
		t.Fatalf("--host without a quick restore: %s", msg)
	}
	if msg := s.Fail(nil, 0, "backup", "restore-volume", b.ID, "--disk", "vdb", "--vm", dom.Name, "--host", "hostb", "--quick-restore"); !strings.Contains(msg, "stopped") {
		t.Fatalf("--host onto a running VM: %s", msg)
	}
	if n := len(s.vmDisks(dom.Name).Disks); n != 4 {
		t.Fatalf("the VM has %d disks after the refusals, want 4", n)
	}

	// Row 1: the VM is stopped; a full copy leaves it stopped.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	res = restore()
	if res.Started || res.Consolidated != nil {
		t.Fatalf("volume restore onto the stopped VM: %+v", res)
	}
	var vm struct{ State, Host string }
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.State != "Stopped" {
		t.Fatalf("after a full volume restore the VM is %s", vm.State)
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	reads(dom, res.Disks[0].Target)

	// Row 5 on a stopped VM: the quick restore starts it on the overlay.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	res = restore("--quick-restore")
	if !res.Started {
		t.Fatalf("a quick volume restore did not start the stopped VM: %+v", res)
	}
	consolidated(res)
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	reads(dom, res.Disks[0].Target)

	// Row 6: stopped, quick, --host hostb: the VM starts on host B with the
	// new disk, its definition leaves host A, and its data is all there.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	oldDisks := s.vmDisks(dom.Name).Disks
	res = restore("--quick-restore", "--host", "hostb")
	if !res.Started || res.Host != "hostb" {
		t.Fatalf("quick volume restore with --host hostb: %+v", res)
	}
	consolidated(res)
	s.MustJSON(&vm, "vm", "show", dom.Name)
	if vm.Host != "hostb" || vm.State != "Running" {
		t.Fatalf("after the volume restore onto hostb the VM is %+v", vm)
	}
	d, err := lB.DomainLookupByName(dom.Name)
	if err != nil {
		t.Fatalf("the VM is not defined on host B: %v", err)
	}
	if _, err := dom.L.DomainLookupByName(dom.Name); err == nil {
		t.Fatal("the VM is still defined on host A")
	}
	onB := &testbed.Domain{Name: dom.Name, UUID: dom.UUID, L: lB, Dom: d}
	if err := onB.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	reads(onB, res.Disks[0].Target)
	// The VM's own disks are the same files, and vdb still has what was
	// written after the backup.
	for i, disk := range s.vmDisks(dom.Name).Disks[:len(oldDisks)] {
		if disk.Source != oldDisks[i].Source {
			t.Fatalf("disk %s moved from %s to %s", disk.Target, oldDisks[i].Source, disk.Source)
		}
	}
	got := guest(t, onB, "dd if=/dev/vdb bs=1M skip=2 count=1 2>/dev/null | md5sum")
	want := guest(t, onB, "dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'r' | md5sum")
	if got != want {
		t.Fatalf("vdb on host B: %s, want what was written after the backup", got)
	}
	// The backup files are untouched.
	for _, f := range s.backups(dom.Name)[b.ID].Files {
		if _, err := os.Stat(s.storage(f.Path)); err != nil {
			t.Fatal(err)
		}
	}
}
