package integration

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/knib/knib/internal/testbed"
)

// qemuGID is the group libvirt runs QEMU with, as libvirt itself reports
// it: the DAC security model's base label ("+uid:+gid") in the host's
// capabilities.
func qemuGID(t *testing.T) int {
	t.Helper()
	l := testbed.Connect(t)
	raw, err := l.Capabilities()
	if err != nil {
		t.Fatal(err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(string(raw)); err != nil {
		t.Fatal(err)
	}
	for _, m := range caps.Host.SecModel {
		if m.Name != "dac" {
			continue
		}
		for _, l := range m.Labels {
			if l.Type != "kvm" {
				continue
			}
			_, g, ok := strings.Cut(strings.TrimSpace(l.Value), ":")
			gid, err := strconv.Atoi(strings.TrimPrefix(g, "+"))
			if !ok || err != nil {
				t.Fatalf("DAC base label %q", l.Value)
			}
			return gid
		}
	}
	t.Fatalf("libvirt reports no DAC base label for kvm:\n%s", raw)
	return -1
}

// private checks that no path under root (root included) lets other users
// in and that each belongs to the QEMU group; it returns how many paths
// it checked.
func private(t *testing.T, root string, gid int) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		checkPrivate(t, p, gid)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkPrivate(t *testing.T, path string, gid int) {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o007 != 0 || int(st.Gid) != gid {
		t.Errorf("%s: mode %04o group %d: want no bits for other users and the QEMU group %d", path, st.Mode&0o7777, st.Gid, gid)
	}
}

// hostCheck runs `knib agent` without --server: the host check of the
// server's data directory.
func (s *Server) hostCheck() (problems []string, code int) {
	s.t.Helper()
	r := s.Run(nil, "agent", "--data-dir", s.DataDir)
	var out struct {
		QEMUGroup string   `json:"qemu_group"`
		Problems  []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil || out.Problems == nil || out.QEMUGroup == "" {
		s.t.Fatalf("knib agent: exit %d, %v: %s%s", r.Code, err, r.Stdout, r.Stderr)
	}
	return out.Problems, r.Code
}

// TestBackupFilesArePrivate: a storage an older knib left open is
// tightened at start; full and incremental backups (compressed, validated
// with a screenshot), a restore and a quick restore of a real guest leave
// nothing in the storage, nor any restored disk, that other users may
// read, and all of it in the QEMU group; the restored VM boots on its disk
// with its data, and the quick-restored one too. `knib agent` checks the
// host: nothing to report, until a file is opened to everyone.
func TestBackupFilesArePrivate(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-mode", Start: true})
	gid := qemuGID(t)

	// What a knib before this change left: 0755 and 0644, root's group.
	dataDir := dataDirFor(t)
	storage := filepath.Join(dataDir, "storage")
	oldDir := filepath.Join(storage, "backups", "old-vm", "old-backup")
	if err := os.MkdirAll(oldDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{storage, filepath.Join(storage, "backups"), filepath.Dir(oldDir), oldDir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	oldFile := filepath.Join(oldDir, "vda.qcow2")
	if err := os.WriteFile(oldFile, []byte("an old backup"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(oldFile, 0o644); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, dataDir)
	if n := private(t, storage, gid); n < 5 || t.Failed() {
		t.Fatalf("the old storage was not tightened at start (%d paths)", n)
	}
	if probs, code := s.hostCheck(); code != 0 || len(probs) != 0 {
		t.Fatalf("host check after start: exit %d: %v", code, probs)
	}
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	s.CLI("settings", "set", "backup.validation.screenshot.default.wait", "2")
	s.CLI("settings", "set", "backup.validation.max.job.retries", "0")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "modes", "--compress", "--validate",
		"--validation-steps", "screenshot", "--allow-quick-restore")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// A full and an incremental backup, each compressed and validated.
	guest(t, dom, "echo one > /data/f && sync")
	b1 := s.backup(dom.Name)
	waitCompression(t, s, dom.Name, b1.ID, "Compressed")
	if v := s.waitValidation(b1.ID); v.ValidationStatus != "Valid" || !v.HasScreenshot {
		t.Fatalf("validation of b1: %+v", v)
	}
	guest(t, dom, "echo two > /data/f && sync")
	b2 := s.backup(dom.Name)
	if b2.Type != "incremental" || b2.ParentID != b1.ID {
		t.Fatalf("b2: %+v", b2)
	}
	waitCompression(t, s, dom.Name, b2.ID, "Compressed")
	if v := s.waitValidation(b2.ID); v.ValidationStatus != "Valid" || !v.HasScreenshot {
		t.Fatalf("validation of b2: %+v", v)
	}
	s.waitValidationTornDown(b2.ID) // its console log and overlays are libvirt's until then
	for _, b := range []Backup{b1, b2} {
		if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, b.ID, "screenshot.png"))); err != nil {
			t.Fatalf("screenshot of %s: %v", b.ID, err)
		}
	}
	private(t, storage, gid)

	// Restore b2 over the VM's disk: the VM boots on it with b2's data.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b2.ID)
	for _, d := range dom.Disks {
		checkPrivate(t, d, gid)
	}
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/f"); got != "two\n" {
		t.Fatalf("restored data: %q", got)
	}
	guest(t, dom, "echo three > /data/g && sync") // the restored disk is writable

	// Quick restore of b1: the VM runs at once on overlays on the backup
	// files, then on its own disk once consolidated.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var res map[string]any
	s.MustJSON(&res, "backup", "restore", b1.ID, "--quick-restore")
	if res["consolidated"] != true {
		t.Fatalf("quick restore: %v", res)
	}
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/f; test -e /data/g || echo no-g"); got != "one\nno-g\n" {
		t.Fatalf("quick-restored data: %q", got)
	}
	guest(t, dom, "echo four > /data/g && sync")
	for _, d := range dom.Disks {
		checkPrivate(t, d, gid)
	}
	private(t, storage, gid)
	if t.Failed() {
		t.FailNow()
	}

	// The host check finds nothing; a file opened to everyone is reported.
	if probs, code := s.hostCheck(); code != 0 || len(probs) != 0 {
		t.Fatalf("host check: exit %d: %v", code, probs)
	}
	opened := s.storage(filepath.Join("backups", dom.UUID, b2.ID, "manifest.json"))
	if err := os.Chmod(opened, 0o644); err != nil {
		t.Fatal(err)
	}
	probs, code := s.hostCheck()
	if code != 1 || len(probs) != 1 || !strings.HasPrefix(probs[0], opened+": mode 0644: other users have access") {
		t.Fatalf("host check of an opened file: exit %d: %v", code, probs)
	}
}
