package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Backup is the JSON of `knib backup list`.
type Backup struct {
	ID          string `json:"id"`
	VMID        string `json:"vm_id"`
	Type        string `json:"type"`
	Isolated    bool   `json:"isolated"`
	ParentID    string `json:"parent_id"`
	Status      string `json:"status"`
	Size        int64  `json:"size"`
	VirtualSize int64  `json:"virtual_size"`
	ChainHead   bool   `json:"chain_head"`
	EndOfChain  bool   `json:"end_of_chain"`
	Files       []struct {
		Disk string `json:"disk"`
		Path string `json:"path"`
		Hash string `json:"hash"`
	} `json:"files"`
}

// VMDisks is the disk part of `knib vm show -o json`.
type VMDisks struct {
	State     string `json:"state"`
	Busy      string `json:"busy"`
	ChainHead string `json:"chain_head"`
	LastError string `json:"last_error"`
	Disks     []struct {
		Target  string                          `json:"target"`
		Source  string                          `json:"source"`
		Backing []struct{ Path, Format string } `json:"backing_chain"`
	} `json:"disks"`
}

// backup takes a backup and returns it.
func (s *Server) backup(vm string, flags ...string) Backup {
	s.t.Helper()
	var b Backup
	s.MustJSON(&b, append([]string{"backup", "create", vm}, flags...)...)
	if b.Status != "BackedUp" {
		s.t.Fatalf("backup of %s: %+v", vm, b)
	}
	return b
}

// backups lists a VM's backups by id.
func (s *Server) backups(vm string) map[string]Backup {
	s.t.Helper()
	var list []Backup
	s.MustJSON(&list, "backup", "list", "--vm", vm)
	out := map[string]Backup{}
	for _, b := range list {
		out[b.ID] = b
	}
	return out
}

func (s *Server) vmDisks(vm string) VMDisks {
	s.t.Helper()
	s.CLI("host", "refresh")
	var v VMDisks
	s.MustJSON(&v, "vm", "show", vm)
	return v
}

// deltas returns the knib deltas in a VM's disk chains.
func (v VMDisks) deltas() []string {
	var out []string
	for _, d := range v.Disks {
		for _, p := range append([]string{d.Source}, func() []string {
			var b []string
			for _, l := range d.Backing {
				b = append(b, l.Path)
			}
			return b
		}()...) {
			if strings.HasPrefix(filepath.Base(p), "knib-delta.") {
				out = append(out, p)
			}
		}
	}
	return out
}

func (s *Server) storage(rel string) string { return filepath.Join(s.DataDir, "storage", rel) }

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// flatten converts a backup file with its backing chain to a raw image.
func flatten(t *testing.T, file string) string {
	t.Helper()
	raw := filepath.Join(t.TempDir(), filepath.Base(file)+".raw")
	run(t, "qemu-img", "convert", "-U", "-O", "raw", file, raw)
	return raw
}

// pattern reports whether a raw image holds byte p in [off, off+n).
func pattern(t *testing.T, raw string, p byte, off, n int64) bool {
	t.Helper()
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(buf, bytes.Repeat([]byte{p}, int(n)))
}

// ext4Cat reads a file from an ext4 raw image without mounting it.
func ext4Cat(t *testing.T, raw, path string) (string, bool) {
	t.Helper()
	cmd := exec.Command("debugfs", "-R", "cat "+path, raw)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs: %v %s", err, errb.String())
	}
	if strings.Contains(errb.String(), "File not found") {
		return "", false
	}
	return out.String(), true
}

// checkRestorable proves every listed backup restores: each file is
// unchanged since the backup (hash) and passes qemu-img check, and a real
// restore (a new VM from the backup, which knib verifies disk by disk with
// qemu-img compare) succeeds.
func (s *Server) checkRestorable(backups map[string]Backup) {
	t := s.t
	t.Helper()
	for _, b := range backups {
		if b.Status != "BackedUp" {
			continue
		}
		for _, f := range b.Files {
			file := s.storage(f.Path)
			run(t, "qemu-img", "check", "-q", file)
			if got := hashFile(t, file); got != f.Hash {
				t.Fatalf("backup %s disk %s: hash %s, recorded %s", b.ID, f.Disk, got, f.Hash)
			}
		}
		name := "knib-t-rcheck"
		removeVM(t, name)
		var res struct {
			Disks []struct{ Target, Verified string }
		}
		s.MustJSON(&res, "backup", "create-vm", b.ID, "--name", name)
		removeVM(t, name)
		if len(res.Disks) != len(b.Files) {
			t.Fatalf("restore of backup %s wrote %d disks, want %d", b.ID, len(res.Disks), len(b.Files))
		}
		for _, d := range res.Disks {
			if !verifiedCopy(d.Verified) {
				t.Fatalf("restore of backup %s: disk %s not verified", b.ID, d.Target)
			}
		}
	}
}

// fullDisks returns the disks a backup copied full.
func (s *Server) fullDisks(id string) map[string]bool {
	s.t.Helper()
	var b struct {
		Files []struct {
			Disk string `json:"disk"`
			Full bool   `json:"full"`
		} `json:"files"`
	}
	s.MustJSON(&b, "backup", "show", id)
	out := map[string]bool{}
	for _, f := range b.Files {
		out[f.Disk] = f.Full
	}
	return out
}

// waitValidationTornDown waits until the validation VM of the backup is
// gone and no validation overlay is left in the storage: the teardown runs
// once the verdict is in.
func (s *Server) waitValidationTornDown(backupID string) {
	s.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out := run(s.t, "virsh", "-c", "qemu:///system", "list", "--all", "--name")
		left, _ := os.ReadDir(s.storage("validation"))
		if !strings.Contains(out, "knib-validate-"+backupID[:8]) && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("validation VM or overlays left 30 s after the verdict: %s, %v", out, left)
		}
	}
}
