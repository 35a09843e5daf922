package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStorageRootChecks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckStorageRoot(dir); err != nil {
		t.Fatalf("existing directory refused: %v", err)
	}
	for root, want := range map[string]string{
		"":                         "absolute",
		"rel/dir":                  "absolute",
		dir + "/../x":              "clean",
		"/":                        "other than /",
		filepath.Join(dir, "nope"): "does not exist",
		file:                       "not a directory",
	} {
		err := CheckStorageRoot(root)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("root %q: got %v, want an error containing %q", root, err, want)
		}
	}
}

func TestStoragePathUsesTheTaskRoot(t *testing.T) {
	a := &Local{cfg: Config{StoragePath: "/var/lib/knib/storage"}}
	ctx := context.Background()
	if p, err := a.storagePath(ctx, "backups/v/b"); err != nil || p != "/var/lib/knib/storage/backups/v/b" {
		t.Fatalf("configured root: %q %v", p, err)
	}
	tctx := withStorageRoot(ctx, "/mnt/nfs")
	if p, err := a.storagePath(tctx, "backups/v/b"); err != nil || p != "/mnt/nfs/backups/v/b" {
		t.Fatalf("task root: %q %v", p, err)
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "backups/../../x"} {
		if p, err := a.storagePath(tctx, bad); err == nil {
			t.Errorf("%q resolved to %q", bad, p)
		}
	}
	if _, err := (&Local{}).storagePath(ctx, "backups/x"); err == nil {
		t.Error("an agent without storage resolved a path")
	}
}
