package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// TestRestoreForms: a volume restored onto another running VM (its guest
// reads the backed-up data), a new VM from a backup (its guest has the
// backup's data, the original is untouched), a volume of a deleted VM's
// backup restored onto another VM (only its result and verification are
// checked), and the restore of the deleted VM (defined again from the stored
// definition; its guest's data is checked). The restore of a detached disk
// is in TestDisksThatChange.
func TestRestoreForms(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-rforms", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	other := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-rother", Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "forms")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "echo keep > /data/keep && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x6b, 2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b := s.backup(dom.Name)
	guest(t, dom, "echo later > /data/later && sync")

	// A volume from the backup, attached to another running VM.
	var res struct {
		Disks []struct{ Target, Path, Verified string }
	}
	s.MustJSON(&res, "backup", "restore-volume", b.ID, "--disk", "vdb", "--vm", other.Name)
	if len(res.Disks) != 1 || !verifiedCopy(res.Disks[0].Verified) {
		t.Fatalf("restore-volume: %+v", res)
	}
	target := res.Disks[0].Target
	// The guest sees the new disk (hot-plugged: it shows up after a moment)
	// with the backed-up data.
	guest(t, other, "i=0; while [ ! -b /dev/"+target+" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -b /dev/"+target)
	got := guest(t, other, "dd if=/dev/"+target+" bs=1M skip=2 count=1 2>/dev/null | md5sum")
	want := guest(t, other, "dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'k' | md5sum")
	if got != want {
		t.Fatalf("attached volume content: %s vs %s", got, want)
	}

	// A new VM from the backup, started: it has the data, the original is untouched.
	var created struct {
		ID      string
		VM      string
		Started bool
	}
	removeVM(t, "knib-t-rclone")
	t.Cleanup(func() { removeVM(t, "knib-t-rclone") })
	s.MustJSON(&created, "backup", "create-vm", b.ID, "--name", "knib-t-rclone", "--start")
	if created.ID == "" || created.ID == dom.UUID || !created.Started {
		t.Fatalf("create-vm: %+v", created)
	}
	clone := attach(t, dom, "knib-t-rclone", created.ID)
	if err := clone.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, clone, "cat /data/keep; ls /data"); !strings.HasPrefix(got, "keep\n") || strings.Contains(got, "later") {
		t.Fatalf("new VM's data: %q", got)
	}
	if got := guest(t, dom, "cat /data/later"); got != "later\n" {
		t.Fatalf("the original VM changed: %q", got)
	}
	var cloneVM struct{ Disks []struct{ Source string } }
	s.MustJSON(&cloneVM, "vm", "show", "knib-t-rclone")
	for _, d := range cloneVM.Disks {
		for _, orig := range dom.Disks {
			if d.Source == orig {
				t.Fatalf("the new VM uses the original's disk %s", orig)
			}
		}
	}

	// The VM deleted from libvirt: restore defines it again.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := dom.L.DomainUndefine(dom.Dom); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	// A volume of the deleted VM's backup still restores onto another VM.
	s.MustJSON(&res, "backup", "restore-volume", b.ID, "--disk", "vda", "--vm", other.Name)
	if len(res.Disks) != 1 || !verifiedCopy(res.Disks[0].Verified) {
		t.Fatalf("restore-volume of a deleted VM's backup: %+v", res)
	}
	// The other VM's guest sees the hot-plugged disk and reads the deleted
	// VM's file system from it (the seed's restoreVolume row 4).
	vol := res.Disks[0].Target
	guest(t, other, "i=0; while [ ! -b /dev/"+vol+" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -b /dev/"+vol)
	if got := guest(t, other, "mkdir -p /mnt/r && mount -o ro /dev/"+vol+" /mnt/r && cat /mnt/r/keep; ls /mnt/r; umount /mnt/r"); !strings.HasPrefix(got, "keep\n") || strings.Contains(got, "later") {
		t.Fatalf("the deleted VM's volume read in the other guest: %q", got)
	}
	var restored map[string]any
	s.MustJSON(&restored, "backup", "restore", b.ID)
	if restored["defined"] != true {
		t.Fatalf("restore of a deleted VM: %v", restored)
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/keep; ls /data"); !strings.HasPrefix(got, "keep\n") || strings.Contains(got, "later") {
		t.Fatalf("restored VM's data: %q", got)
	}
	if !pattern(t, flatten(t, dom.Disks[1]), 0x6b, 2<<20, 1<<20) {
		t.Fatal("restored vdb misses the pattern")
	}
}

// TestQuickRestore: the VM runs at once on overlays backed by the backup
// files, then consolidation makes it independent of the backup storage.
func TestQuickRestore(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-quick", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	var plain, quick struct{ ID string }
	s.MustJSON(&plain, "offering", "create", "--name", "plain")
	s.MustJSON(&quick, "offering", "create", "--name", "quick", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", plain.ID)
	guest(t, dom, "echo v1 > /data/v && sync")
	bPlain := s.backup(dom.Name)
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if msg := s.Fail(nil, 1, "backup", "restore", bPlain.ID, "--quick-restore"); !strings.Contains(msg, "quick restore") {
		t.Fatalf("quick restore refused by the offering: %s", msg)
	}
	// Users may not choose the host.
	s.CLI("account", "create", "bob")
	var tok struct{ Token string }
	s.MustJSON(&tok, "token", "create", "--account", "bob")
	s.CLI("vm", "set-owner", dom.Name, "--account", "bob")
	if msg := s.Fail([]string{"KNIB_TOKEN=" + tok.Token}, 1, "backup", "restore", bPlain.ID, "--quick-restore", "--host", "localhost"); !strings.Contains(msg, "admin") {
		t.Fatalf("--host for users: %s", msg)
	}

	s.CLI("vm", "unassign", dom.Name)
	s.CLI("vm", "assign", dom.Name, "--offering", quick.ID)
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	guest(t, dom, "echo v2 > /data/v && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x71, 4<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b := s.backup(dom.Name)
	guest(t, dom, "echo v3 > /data/v && sync")
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	s.MustJSON(&res, "backup", "restore", b.ID, "--quick-restore", "--host", "localhost")
	if res["consolidated"] != true {
		t.Fatalf("quick restore: %v", res)
	}
	// The VM is running and no disk depends on backup storage any more.
	v := s.vmDisks(dom.Name)
	if v.State != "Running" {
		t.Fatalf("quick restore must start the VM: %+v", v)
	}
	for _, d := range v.Disks {
		if len(d.Backing) != 0 {
			t.Fatalf("disk %s still has a backing chain after consolidation: %+v", d.Target, d.Backing)
		}
	}
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/v"); got != "v2\n" {
		t.Fatalf("quick-restored data: %q", got)
	}
	// What the guest reads from vdb is the backed-up pattern ('q' = 0x71).
	got := guest(t, dom, "dd if=/dev/vdb bs=1M skip=4 count=1 2>/dev/null | md5sum")
	want := guest(t, dom, "dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'q' | md5sum")
	if got != want {
		t.Fatalf("quick-restored vdb: %s, want %s", got, want)
	}
	// And the backup files are still intact: they were never written.
	s.checkRestorable(s.backups(dom.Name))

	// create-vm --quick-restore (issue 11 R8): the new VM runs at once on
	// overlays over the backup files, is consolidated off them, and holds
	// the backup's data; the original VM is untouched.
	guest(t, dom, "echo v4 > /data/v && sync")
	orig := s.vmDisks(dom.Name)
	const clone = "knib-t-scqclone"
	removeVM(t, clone)
	t.Cleanup(func() { removeVM(t, clone) })
	var created struct {
		ID           string `json:"id"`
		Started      bool   `json:"started"`
		Consolidated *bool  `json:"consolidated"`
		Disks        []struct{ Target, Path, Verified string }
	}
	s.MustJSON(&created, "backup", "create-vm", b.ID, "--name", clone, "--quick-restore", "--start")
	if created.ID == "" || created.ID == dom.UUID || !created.Started || created.Consolidated == nil || !*created.Consolidated ||
		len(created.Disks) != 2 {
		// The state and last error of the new VM say why (a VM whose QEMU
		// died during the block pull is shut off).
		t.Fatalf("quick create-vm: %+v (consolidated %v); the new VM: %+v", created, created.Consolidated != nil && *created.Consolidated, s.vmDisks(clone))
	}
	for _, d := range created.Disks {
		if d.Verified != "overlay on the backup file" {
			t.Fatalf("quick create-vm disk %s: %q, want an overlay on the backup file", d.Target, d.Verified)
		}
	}
	cv := s.vmDisks(clone)
	if cv.State != "Running" || len(cv.Disks) != 2 {
		t.Fatalf("the quick-created VM: %+v", cv)
	}
	for _, d := range cv.Disks {
		if len(d.Backing) != 0 || strings.HasPrefix(d.Source, s.storage("")) {
			t.Fatalf("quick-created disk %s still reads backup storage: %s %+v", d.Target, d.Source, d.Backing)
		}
		for _, o := range orig.Disks {
			if d.Source == o.Source {
				t.Fatalf("the quick-created VM uses the original's disk %s", o.Source)
			}
		}
	}
	c := attach(t, dom, clone, created.ID)
	if err := c.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, c, "cat /data/v"); got != "v2\n" {
		t.Fatalf("quick-created VM's data: %q", got)
	}
	if got := guest(t, c, "dd if=/dev/vdb bs=1M skip=4 count=1 2>/dev/null | md5sum"); got != want {
		t.Fatalf("quick-created vdb: %s, want %s", got, want)
	}
	if got := guest(t, dom, "cat /data/v"); got != "v4\n" {
		t.Fatalf("the original VM changed: %q", got)
	}
	after := s.vmDisks(dom.Name)
	if after.State != "Running" || len(after.Disks) != len(orig.Disks) {
		t.Fatalf("the original VM changed: %+v -> %+v", orig, after)
	}
	for i := range orig.Disks {
		if after.Disks[i].Source != orig.Disks[i].Source {
			t.Fatalf("the original VM's disk %s changed: %s -> %s", orig.Disks[i].Target, orig.Disks[i].Source, after.Disks[i].Source)
		}
	}
	removeVM(t, clone)
	s.CLI("host", "refresh")
	// The VM can be backed up again.
	s.backup(dom.Name)
}

// attach wraps an existing domain as a testbed.Domain.
func attach(t *testing.T, like *testbed.Domain, name, uuid string) *testbed.Domain {
	t.Helper()
	d, err := like.L.DomainLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return &testbed.Domain{Name: name, UUID: uuid, L: like.L, Dom: d}
}

// removeVM destroys and undefines a VM created by a test, with its disks.
func removeVM(t *testing.T, name string) {
	l, err := testbed.Dial()
	if err != nil {
		return
	}
	defer l.Disconnect()
	d, err := l.DomainLookupByName(name)
	if err != nil {
		return
	}
	l.DomainDestroy(d)
	xml, _ := l.DomainGetXMLDesc(d, 0)
	l.DomainUndefine(d)
	var def struct {
		Devices struct {
			Disks []struct {
				Source struct {
					File string `xml:"file,attr"`
				} `xml:"source"`
			} `xml:"disk"`
		} `xml:"devices"`
	}
	if err := xmlUnmarshal(xml, &def); err == nil {
		for _, d := range def.Devices.Disks {
			if strings.Contains(d.Source.File, name) {
				removeFile(d.Source.File)
			}
		}
	}
}

var _ = json.Marshal

// TestQuickRestoreResumesAfterCrash: the server dies after the quick-restored
// VM started on its overlays, before consolidation; at restart knib resumes
// the consolidation by itself.
func TestQuickRestoreResumesAfterCrash(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-qcrash", Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "qc", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "echo q > /data/q && sync")
	b := s.backup(dom.Name)
	guest(t, dom, "rm /data/q && sync")
	restart(t, dom)
	s.Restart("KNIB_CRASH_AT=restore.before-consolidate")
	s.Run(nil, "backup", "restore", b.ID, "--quick-restore", "--async")
	if err := s.Wait(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	// The VM runs on overlays backed by the backup files now.
	if st, err := dom.State(); err != nil || st != 1 {
		t.Fatalf("after the crash the VM should run: %v %v", st, err)
	}
	s.Restart()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		v := s.vmDisks(dom.Name)
		if len(v.Disks[0].Backing) == 0 && v.LastError == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not consolidated: %+v\n%s", v, s.Log())
		}
		time.Sleep(time.Second)
	}
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/q"); got != "q\n" {
		t.Fatalf("data: %q", got)
	}
	if !strings.Contains(s.Log(), "resuming the consolidation") {
		t.Fatalf("consolidation was not resumed by recovery:\n%s", s.Log())
	}
	s.backup(dom.Name)
}

// verifiedCopy reports whether a restored disk's "verified" names a check
// of a full copy against the backup: guest digests of both, or qemu-img
// compare when the backup has compressed clusters.
func verifiedCopy(label string) bool {
	return label == "guest-visible digest (xxh3-128)" || label == "qemu-img compare"
}
