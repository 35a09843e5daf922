package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knib/knib/internal/testbed"
)

// TestRestoresCheckTheBackupHashes damages backup files on the storage, a
// different way for each read path, and checks that the read path refuses
// with the backup, the file and both hashes in its message, that the VM
// keeps its disks and data, that nothing half-written is left, and that the
// backup becomes NotValid; then that --accept-damaged restores anyway and
// says so.
//
//   - restore of an incremental whose parent (a full backup) has one byte
//     flipped;
//   - restore-volume of a backup whose file was truncated;
//   - create-vm of a backup whose file was replaced by another valid qcow2
//     of the same size;
//   - quick restore of an incremental with one byte flipped: the VM starts,
//     the consolidation stops, the VM keeps its overlays and is marked;
//   - storage migration of a chain with a flipped byte.
func TestRestoresCheckTheBackupHashes(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-damage", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "damage", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	const mib = 1 << 20
	write := func(p byte, at int64) {
		t.Helper()
		if err := dom.WriteDisk(ctxT(t), 1, p, at, mib); err != nil {
			t.Fatal(err)
		}
	}
	fileOf := func(b Backup, disk string) string {
		t.Helper()
		for _, f := range b.Files {
			if f.Disk == disk {
				return s.storage(f.Path)
			}
		}
		t.Fatalf("backup %s has no file of %s", b.ID, disk)
		return ""
	}
	flipLast := func(path string) {
		t.Helper()
		fh, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		fi, _ := fh.Stat()
		b := make([]byte, 1)
		fh.ReadAt(b, fi.Size()-1)
		b[0] ^= 0x01
		if _, err := fh.WriteAt(b, fi.Size()-1); err != nil {
			t.Fatal(err)
		}
	}
	// vdb is what the VM's vdb reads now, flattened.
	vdb := func() string {
		t.Helper()
		for _, d := range s.vmDisks(dom.Name).Disks {
			if d.Target == "vdb" {
				return flatten(t, d.Source)
			}
		}
		t.Fatal("the VM has no vdb")
		return ""
	}
	damaged := func(id string) string {
		t.Helper()
		var b struct {
			ValidationStatus string `json:"validation_status"`
			ValidationReason string `json:"validation_reason"`
		}
		s.MustJSON(&b, "backup", "show", id)
		if b.ValidationStatus != "NotValid" || !strings.HasPrefix(b.ValidationReason, "damaged: ") {
			t.Fatalf("backup %s after its damage was found: %s %q", id, b.ValidationStatus, b.ValidationReason)
		}
		return b.ValidationReason
	}
	// An operation that fails, as one line (-o json: no progress lines).
	fail := func(args ...string) string {
		t.Helper()
		return s.Fail(nil, 1, append(args, "-o", "json")...)
	}
	refused := func(msg string, b Backup) {
		t.Helper()
		if !strings.Contains(msg, b.ID) || !strings.Contains(msg, "hashes to") || !strings.Contains(msg, "recorded xxh3-128:") {
			t.Fatalf("the refusal does not name backup %s, its file and both hashes: %s", b.ID, msg)
		}
	}

	// 1. Restore of an incremental whose full parent has a flipped byte.
	write(0x61, 0)
	b1 := s.backup(dom.Name)
	write(0x62, mib)
	b2 := s.backup(dom.Name)
	write(0x63, 2*mib) // newer than every backup: a refused restore keeps it
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	flipLast(fileOf(b1, "vdb"))
	refused(fail("backup", "restore", b2.ID), b1)
	if v := s.vmDisks(dom.Name); v.State != "Stopped" || v.LastError != "" {
		t.Fatalf("the VM after a refused restore: %+v", v)
	}
	if raw := vdb(); !pattern(t, raw, 0x63, 2*mib, mib) || !pattern(t, raw, 0x62, mib, mib) {
		t.Fatal("a refused restore changed the VM's data")
	}
	if reason := damaged(b1.ID); !strings.Contains(reason, "a restore") {
		t.Fatalf("reason %q does not say what found the damage", reason)
	}
	// Known damaged now: refused before any file is read, with the way out.
	if msg := fail("backup", "restore", b2.ID); !strings.Contains(msg, "--accept-damaged") || !strings.Contains(msg, b1.ID) {
		t.Fatalf("restore of a backup known damaged: %s", msg)
	}
	var accepted struct {
		Damaged []string `json:"damaged"`
	}
	s.MustJSON(&accepted, "backup", "restore", b2.ID, "--accept-damaged")
	if len(accepted.Damaged) != 1 || !strings.Contains(accepted.Damaged[0], b1.ID) {
		t.Fatalf("a restore with --accept-damaged must list what it restored anyway: %+v", accepted)
	}
	if raw := vdb(); !pattern(t, raw, 0x62, mib, mib) || pattern(t, raw, 0x63, 2*mib, mib) {
		t.Fatal("the accepted restore did not restore the backup's data")
	}
	if reason := damaged(b1.ID); !strings.Contains(reason, "accept_damaged") {
		t.Fatalf("the catalogue does not record the accepted restore: %q", reason)
	}

	// 2. restore-volume of a truncated file: no disk is attached, no file is left.
	b3 := s.backup(dom.Name) // the restore ended the chain: a full backup
	f3 := fileOf(b3, "vda")
	fi, err := os.Stat(f3)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f3, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	disks := len(s.vmDisks(dom.Name).Disks)
	refused(fail("backup", "restore-volume", b3.ID, "--disk", "vda", "--vm", dom.Name), b3)
	if n := len(s.vmDisks(dom.Name).Disks); n != disks {
		t.Fatalf("a refused volume restore attached a disk: %d disks, had %d", n, disks)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dom.Disks[0]), "*restore*")); len(left) != 0 {
		t.Fatalf("a refused volume restore left %v", left)
	}
	damaged(b3.ID)

	// 3. create-vm of a file replaced by another valid qcow2 of the same size.
	s.CLI("chain", "finish", dom.Name)
	b4 := s.backup(dom.Name)
	f4 := fileOf(b4, "vda")
	fi, err = os.Stat(f4)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", other, "64M")
	if err := os.Truncate(other, fi.Size()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f4, raw, fi.Mode()); err != nil {
		t.Fatal(err)
	}
	removeVM(t, "knib-t-damclone")
	t.Cleanup(func() { removeVM(t, "knib-t-damclone") })
	refused(fail("backup", "create-vm", b4.ID, "--name", "knib-t-damclone"), b4)
	if l, err := testbed.Dial(); err == nil {
		if _, err := l.DomainLookupByName("knib-t-damclone"); err == nil {
			t.Fatal("a refused create-vm defined the VM")
		}
		l.Disconnect()
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dom.Disks[0]), "knib-t-damclone*")); len(left) != 0 {
		t.Fatalf("a refused create-vm left %v", left)
	}
	damaged(b4.ID)

	// 4. Quick restore of an incremental with a flipped byte: the VM runs
	// at once; the consolidation finds the damage, stops, and the VM keeps
	// running on its overlays, marked. Repaired, the consolidation resumes.
	s.CLI("chain", "finish", dom.Name)
	b5 := s.backup(dom.Name)
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	write(0x64, 3*mib)
	b6 := s.backup(dom.Name)
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	f6 := fileOf(b6, "vdb")
	intact, err := os.ReadFile(f6)
	if err != nil {
		t.Fatal(err)
	}
	flipLast(f6)
	var quick struct {
		Consolidated *bool `json:"consolidated"`
	}
	s.MustJSON(&quick, "backup", "restore", b6.ID, "--quick-restore")
	if quick.Consolidated == nil || *quick.Consolidated {
		t.Fatalf("quick restore of a damaged incremental: %+v", quick)
	}
	v := s.vmDisks(dom.Name)
	if v.State != "RestoreError" || !strings.Contains(v.LastError, "consolidation stopped") || !strings.Contains(v.LastError, b6.ID) {
		t.Fatalf("the VM after a consolidation stopped by damage: %+v", v)
	}
	onStorage := false
	for _, d := range v.Disks {
		for _, l := range d.Backing {
			onStorage = onStorage || strings.HasPrefix(l.Path, filepath.Join(s.DataDir, "storage"))
		}
	}
	if !onStorage {
		t.Fatalf("the VM lost its overlays on the backup files: %+v", v.Disks)
	}
	damaged(b6.ID)
	if err := os.WriteFile(f6, intact, 0o644); err != nil {
		t.Fatal(err)
	}
	s.CLI("vm", "consolidate", dom.Name)
	if v := s.vmDisks(dom.Name); v.State != "Running" || v.LastError != "" {
		t.Fatalf("the VM after its consolidation resumed: %+v", v)
	}
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	got := guest(t, dom, "dd if=/dev/vdb bs=1M skip=3 count=1 2>/dev/null | md5sum")
	want := guest(t, dom, "dd if=/dev/zero bs=1M count=1 2>/dev/null | tr '\\000' 'd' | md5sum")
	if got != want {
		t.Fatalf("the quick-restored vdb: %s, want %s", got, want)
	}

	// 5. Storage migration of a chain with a flipped byte: nothing moves.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	dirB := filepath.Join(s.DataDir, "storage-b")
	if err := os.MkdirAll(dirB, 0o755); err != nil {
		t.Fatal(err)
	}
	s.CLI("storage", "add", "--zone", "default", "--path", dirB, "--name", "b")
	flipLast(fileOf(b5, "vda"))
	refused(fail("storage", "migrate", "--from", "default", "--to", "b", "--vm", dom.Name), b5)
	if left, _ := filepath.Glob(filepath.Join(dirB, "backups", "*", "*")); len(left) != 0 {
		t.Fatalf("a refused migration left copies: %v", left)
	}
	damaged(b5.ID)
	if _, err := os.Stat(fileOf(b5, "vda")); err != nil {
		t.Fatalf("a refused migration moved the source: %v", err)
	}
}
