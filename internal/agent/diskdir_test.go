package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if st, err := os.Stat(fresh); err != nil || !st.IsDir() || st.Mode().Perm() != 0o755 {
		t.Fatalf("created disk directory: %v %v", err, st)
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
