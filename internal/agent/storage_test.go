package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/qemuimg"
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
	// No fallback to the agent's own storage: a task names its storage.
	if p, err := inStorage("", "backups/v/b"); err == nil {
		t.Fatalf("a task without a storage root resolved %q", p)
	}
	if p, err := inStorage("/mnt/nfs", "backups/v/b"); err != nil || p != "/mnt/nfs/backups/v/b" {
		t.Fatalf("task root: %q %v", p, err)
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "backups/../../x"} {
		if p, err := inStorage("/mnt/nfs", bad); err == nil {
			t.Errorf("%q resolved to %q", bad, p)
		}
	}
}

// copyStorage with the real qemu-img: an incremental whose backing pointer
// is absolute into the source storage is copied, verified against its
// recorded hash, made relative in the target (qemu-img rebase -u), and its
// chain resolves inside the target; a wrong recorded hash fails the copy.
func TestCopyStorageRebasesAbsoluteBacking(t *testing.T) {
	ctx := context.Background()
	from, to := t.TempDir(), t.TempDir()
	a := &Local{img: qemuimg.Default}
	b1, b2 := "backups/vm/b1", "backups/vm/b2"
	for _, d := range []string{b1, b2} {
		if err := os.MkdirAll(filepath.Join(from, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	base := filepath.Join(from, b1, "vda.qcow2")
	top := filepath.Join(from, b2, "vda.qcow2")
	if err := a.img.Create(ctx, base, "qcow2", 4<<20, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.img.Create(ctx, top, "qcow2", 0, &qemuimg.Backing{Path: base, Format: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(from, b2, "manifest.json"), []byte(`{}`), 0o644)
	os.WriteFile(filepath.Join(from, b2, "vda.qcow2.part"), []byte(`partial`), 0o644)
	h1, _ := HashFile(base)
	h2, _ := HashFile(top)
	req := agentapi.StorageCopyRequest{From: from, Backups: []agentapi.StorageCopyBackup{
		{ID: "b1", Dir: b1, Files: []agentapi.StorageCopyFile{{Disk: "vda", Path: b1 + "/vda.qcow2", Hash: h1}}},
		{ID: "b2", Dir: b2, Files: []agentapi.StorageCopyFile{{Disk: "vda", Path: b2 + "/vda.qcow2", Hash: h2}}},
	}}
	req.Storage = to
	out, err := a.copyStorage(ctx, req, func(float64, string) {})
	if err != nil {
		t.Fatal(err)
	}
	res := out.(agentapi.StorageCopyResult)
	if len(res.Rebased) != 1 || res.Rebased[0] != b2+"/vda.qcow2" || res.Hashes["b2"]["vda"] == "" || res.Hashes["b2"]["vda"] == h2 {
		t.Fatalf("result: %+v", res)
	}
	infos, err := a.img.Info(ctx, filepath.Join(to, b2, "vda.qcow2"), qemuimg.InfoOptions{BackingChain: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 || infos[0].BackingFilename != "../b1/vda.qcow2" || filepath.Clean(infos[1].Filename) != filepath.Join(to, b1, "vda.qcow2") {
		t.Fatalf("copied chain: %+v", infos)
	}
	if got, _ := HashFile(filepath.Join(to, b2, "vda.qcow2")); got != res.Hashes["b2"]["vda"] {
		t.Fatalf("reported hash %s, file %s", res.Hashes["b2"]["vda"], got)
	}
	if _, err := os.Stat(filepath.Join(to, b2, "manifest.json")); err != nil {
		t.Fatalf("manifest not copied: %v", err)
	}
	if _, err := os.Stat(filepath.Join(to, b2, "vda.qcow2.part")); err == nil {
		t.Fatal("a .part file was copied")
	}
	// The source is untouched.
	if got, _ := HashFile(top); got != h2 {
		t.Fatal("the source file changed")
	}

	// A copy that does not match the recorded hash fails.
	req.Backups[0].Files[0].Hash = "xxh3-128:00"
	req.Storage = t.TempDir()
	_, err = a.copyStorage(ctx, req, func(float64, string) {})
	if d := damageOf(err); len(d) != 1 || d[0].BackupID != "b1" || d[0].Recorded != "xxh3-128:00" || !strings.Contains(err.Error(), "recorded xxh3-128:00") {
		t.Fatalf("wrong hash: %v", err)
	}
	// Paths that leave the storage are refused before anything is copied.
	req.Backups[0].Dir = "backups/../../etc"
	req.Storage = t.TempDir()
	if _, err := a.copyStorage(ctx, req, func(float64, string) {}); err == nil {
		t.Fatal("a directory outside the storage was accepted")
	}
}
