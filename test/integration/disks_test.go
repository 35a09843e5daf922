package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/testbed"
)

// TestDisksThatChange: a disk moved through libvirt (blockcopy --pivot) is
// copied full at the next backup while the other disk stays incremental, and
// older backups stay restorable (seed interactions 2-5, with the volume
// moved while the VM stays on its host: interaction 1, the VM's migration,
// is not done here); a disk attached later is copied full, is left alone by
// restoring an older backup, and is re-created by restoring a backup that
// has it after it was detached (17-20); a disk reverted outside knib (the
// seed's volume snapshot revert, 22-23, emulated by pointing the domain back
// at the disk's base file) is detected and copied full, and the delta the
// last backup left on it is gone from primary storage.
func TestDisksThatChange(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-disks", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "disks")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	if err := dom.WriteDisk(ctxT(t), 1, 0x31, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	b1 := s.backup(dom.Name)

	// 1-3. Move vdb through libvirt; the next backup copies it full.
	moved := filepath.Join(dom.Dir, "moved", "vdb.qcow2")
	os.MkdirAll(filepath.Dir(moved), 0o755)
	run(t, "virsh", "-c", "qemu:///system", "blockcopy", dom.Name, "vdb", moved, "--wait", "--pivot", "--transient-job", "--format", "qcow2")
	if err := dom.WriteDisk(ctxT(t), 1, 0x32, 1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	if full := s.fullDisks(b2.ID); b2.Type != "incremental" || full["vda"] || !full["vdb"] {
		t.Fatalf("after the move: b2 %s, full disks %v", b2.Type, full)
	}
	waitRecovered(t, s, dom.Name) // the old delta goes with the merge that follows b2
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*.vdb.*")); len(left) != 0 {
		t.Fatalf("the moved disk's old delta is left over: %v", left)
	}
	// 4. Two more backups finish normally.
	b3, b4 := s.backup(dom.Name), s.backup(dom.Name)
	if full := s.fullDisks(b3.ID); full["vda"] || full["vdb"] || b4.Type != "incremental" {
		t.Fatalf("b3 and b4 must be incremental on both disks: %v %s", full, b4.Type)
	}
	// 5. A backup from before the move restores.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b1.ID)
	v := s.vmDisks(dom.Name)
	raw := flatten(t, v.Disks[1].Source)
	if !pattern(t, raw, 0x31, 0, 1<<20) || !pattern(t, raw, 0, 1<<20, 1<<20) {
		t.Fatal("restoring b1 after the move: vdb content")
	}

	// 17-18. A new disk, written, is copied full inside an incremental backup.
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.backup(dom.Name) // new chain after the restore
	s.CLI("vm", "attach-disk", dom.Name, "--size", "16M", "--target", "vdc")
	guest(t, dom, "i=0; while [ ! -b /dev/vdc ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; dd if=/dev/zero bs=1M count=2 2>/dev/null | tr '\\000' 'c' > /dev/vdc && sync")
	b5 := s.backup(dom.Name)
	if full := s.fullDisks(b5.ID); b5.Type != "incremental" || !full["vdc"] || full["vda"] {
		t.Fatalf("b5 with the new disk: %s %v", b5.Type, full)
	}
	// 19. Restoring b4 (before vdc existed) leaves vdc alone.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b4.ID)
	v = s.vmDisks(dom.Name)
	if len(v.Disks) != 3 || !pattern(t, flatten(t, v.Disks[2].Source), 'c', 0, 2<<20) {
		t.Fatalf("vdc after restoring b4: %+v", v)
	}
	// 20. Detach vdc, restore b5: vdc is re-created, attached, and holds its data.
	s.CLI("vm", "detach-disk", dom.Name, "vdc")
	if v := s.vmDisks(dom.Name); len(v.Disks) != 2 {
		t.Fatalf("detach: %+v", v)
	}
	var res struct {
		Disks []struct {
			Target, Path string
			Attached     bool
		}
	}
	s.MustJSON(&res, "backup", "restore", b5.ID)
	v = s.vmDisks(dom.Name)
	if len(v.Disks) != 3 || v.Disks[2].Target != "vdc" || !pattern(t, flatten(t, v.Disks[2].Source), 'c', 0, 2<<20) {
		t.Fatalf("vdc after restoring b5: %+v %+v", v, res)
	}

	// A disk reverted outside knib (the domain pointed back at its base file,
	// dropping the delta) is detected and copied full.
	b6 := s.backup(dom.Name)
	v = s.vmDisks(dom.Name)
	if !strings.HasPrefix(filepath.Base(v.Disks[0].Source), "knib-delta.") || len(v.Disks[0].Backing) == 0 {
		t.Fatalf("vda should run on b6's delta: %+v", v.Disks[0])
	}
	base := v.Disks[0].Backing[0].Path
	inactive, err := dom.L.DomainGetXMLDesc(dom.Dom, libvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(inactive); err != nil {
		t.Fatal(err)
	}
	def.Devices.Disks[0].Source.File.File = base
	def.Devices.Disks[0].BackingStore = nil
	xml, _ := def.Marshal()
	if _, err := dom.L.DomainDefineXML(xml); err != nil {
		t.Fatal(err)
	}
	b7 := s.backup(dom.Name)
	waitRecovered(t, s, dom.Name)
	if full := s.fullDisks(b7.ID); !full["vda"] || full["vdb"] || b7.ParentID != b6.ID {
		t.Fatalf("b7 after reverting vda outside knib: parent %s full %v", b7.ParentID, full)
	}
	// 23. The delta b6 left on vda is gone from primary storage; every disk
	// runs on b7's delta now.
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*.vda."+b6.ID+"*")); len(left) != 0 {
		t.Fatalf("b6's vda delta is left over after the revert: %v", left)
	}
	v = s.vmDisks(dom.Name)
	if d := v.deltas(); len(d) != len(v.Disks) {
		t.Fatalf("after b7, one delta per disk: %v", d)
	} else {
		for _, p := range d {
			if !strings.Contains(filepath.Base(p), "."+b7.ID+".") {
				t.Fatalf("after b7, delta %s is not b7's", p)
			}
		}
	}
	s.checkRestorable(s.backups(dom.Name))
}
