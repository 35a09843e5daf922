package agent

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/knib/knib/internal/fileperm"
)

func TestCheckDiskDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "disks", "b")
	if err := CheckDiskDir(fresh); err != nil {
		t.Fatalf("missing directory not created: %v", err)
	}
	// QEMU reaches it through its group; other users do not.
	perm, err := fileperm.Host()
	if err != nil {
		t.Skipf("no QEMU group on this host: %v", err)
	}
	for _, d := range []string{filepath.Join(dir, "disks"), fresh} {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil || st.Mode&0o7777 != 0o750 || int(st.Gid) != perm.GID {
			t.Fatalf("created disk directory %s: %v mode %04o group %d, want 0750 group %d", d, err, st.Mode&0o7777, st.Gid, perm.GID)
		}
	}
	if err := CheckDiskDir(fresh); err != nil {
		t.Fatalf("existing directory refused: %v", err)
	}
	for d, want := range map[string]string{
		"":            "absolute",
		"rel/dir":     "absolute",
		dir + "/../x": "clean",
		dir + "/":     "clean",
		"/":           "other than /",
		file:          "not a directory",
	} {
		err := CheckDiskDir(d)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("disk dir %q: got %v, want an error containing %q", d, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "rel")); err == nil {
		t.Error("a refused directory was created")
	}
}
