package guestfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestParseStructs(t *testing.T) {
	out := []byte("[0] = {\n  st_mode: 33188\n  st_size: 8\n  st_uid: 1000\n  st_mtime_sec: 100\n  st_mtime_nsec: 5\n}\n[1] = {\n  st_mode: 41471\n  st_ino: -1\n}\n")
	l := fieldsList(out)
	if len(l) != 2 {
		t.Fatalf("%d structs", len(l))
	}
	e := entryOf(l[0])
	if e.Type != "file" || e.Mode != 0o644 || e.Size != 8 || e.UID != 1000 || e.MTime.UnixNano() != 100e9+5 {
		t.Fatalf("entry %+v", e)
	}
	if entryOf(l[1]).Type != "symlink" {
		t.Fatalf("second %+v", l[1])
	}
	if f := fields([]byte("bsize: 4096\nblocks: 10\n")); f["bsize"] != 4096 || f["blocks"] != 10 {
		t.Fatalf("single struct %v", f)
	}
}

func TestErrorMessage(t *testing.T) {
	if m := errorMessage("libguestfs: error: ls0: opendir: /x: No such file or directory\n"); m != "ls0: opendir: /x: No such file or directory" {
		t.Fatalf("%q", m)
	}
	if m := errorMessage("some warning\n"); m != "" {
		t.Fatalf("%q", m)
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{"/": "/", "/a/../../b": "/b", "/a//b/": "/a/b"} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Fatalf("%q: %q %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a/b", "/a\x00b"} {
		if _, err := CleanPath(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestListSafeNames(t *testing.T) {
	if !listSafe("a b\nc\"d") || listSafe("it's") || listSafe(`back\slash`) {
		t.Fatal("listSafe")
	}
}

// realEnv returns the libguestfs environment, skipping the test without it
// (failing it when KNIB_TEST_REQUIRE_INFRA=1).
func realEnv(t *testing.T) Config {
	t.Helper()
	env, err := LoadEnv(DefaultEnvFile)
	if err == nil {
		_, err = exec.LookPath("guestfish")
	}
	if err != nil {
		if os.Getenv("KNIB_TEST_REQUIRE_INFRA") == "1" {
			t.Fatalf("libguestfs unavailable and KNIB_TEST_REQUIRE_INFRA=1: %v", err)
		}
		t.Skipf("libguestfs unavailable: %v", err)
	}
	return Config{Env: env}
}

// TestHandleReadsAGuestFileSystem builds an ext4 image in libguestfs'
// appliance (never in the host's kernel), then reads it read-only: volumes,
// a listing with odd names and a symlink, a file, a tar of a directory, an
// error that leaves the handle usable, and paths that try to leave.
func TestHandleReadsAGuestFileSystem(t *testing.T) {
	cfg := realEnv(t)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "d.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	odd := "odd name\n\"q\" it's \\ é"
	build := exec.Command("guestfish", "--format=qcow2", "-a", img, "run", ":", "part-disk", "/dev/sda", "gpt", ":",
		"mkfs", "ext4", "/dev/sda1", "label:data", ":", "mount", "/dev/sda1", "/", ":", "mkdir-p", "/d/sub", ":",
		"write", "/d/"+odd, "odd", ":", "write", "/d/sub/f", "hello", ":", "ln-s", "/etc/passwd", "/d/abs", ":",
		"ln", "/d/sub/f", "/d/hard", ":", "chmod", "0750", "/d/sub", ":", "chown", "1000", "100", "/d/sub/f")
	build.Env = cfg.env()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	h, err := Launch(ctx, cfg, []Drive{{Path: img, Format: "qcow2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	vols, err := h.Volumes(ctx)
	if err != nil || len(vols) != 1 {
		t.Fatalf("volumes %+v %v", vols, err)
	}
	if v := vols[0]; v.Device != "/dev/sda1" || v.Type != "ext4" || v.Label != "data" || v.Partition != 1 || v.Table != "gpt" || v.Used <= 0 || v.Total < v.Used {
		t.Fatalf("volume %+v", v)
	}
	// The partition's offset (sysfs) is parted's, and is kept.
	out, err := h.call(ctx, nil, "part-list", "/dev/sda")
	if err != nil {
		t.Fatal(err)
	}
	parts := fieldsList(out)
	for range 2 {
		drive, start, err := h.DeviceOnDrive(ctx, "/dev/sda1")
		if err != nil || drive != 0 || len(parts) != 1 || start != parts[0]["part_start"] || start <= 0 {
			t.Fatalf("sda1 on drive %d at %d (%v), parted says %v", drive, start, err, parts)
		}
	}
	if _, _, err := h.DeviceOnDrive(ctx, "/dev/sda9"); err == nil {
		t.Fatal("a missing partition has an offset")
	}
	// An error does not end the helper.
	if _, err := h.List(ctx, "/dev/sda1", "/nope"); err == nil {
		t.Fatal("listing a missing directory worked")
	}
	es, err := h.List(ctx, "/dev/sda1", "/d")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	for _, e := range es {
		got[e.Name] = e
	}
	if len(es) != 4 || got[odd].Size != 3 || got["abs"].Type != "symlink" || got["abs"].Target != "/etc/passwd" ||
		got["sub"].Mode != 0o750 || got["hard"].Links != 2 {
		t.Fatalf("listing %+v", es)
	}
	var buf bytes.Buffer
	if err := h.Download(ctx, "/dev/sda1", "/d/nope", &buf); err == nil {
		t.Fatalf("download of a missing file: %q", buf.String())
	}
	// The absolute symlink resolves inside the guest: there is no
	// /etc/passwd in this file system.
	if e, err := h.Stat(ctx, "/dev/sda1", "/d/abs/"); err == nil {
		t.Fatalf("stat through an absolute symlink: %+v", e)
	}
	buf.Reset()
	if err := h.Download(ctx, "/dev/sda1", "/d/../../d/sub/f", &buf); err != nil || buf.String() != "hello" {
		t.Fatalf("download %q %v", buf.String(), err)
	}
	buf.Reset()
	if err := h.TarOut(ctx, "/dev/sda1", "/d", &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	members := map[string]*tar.Header{}
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		members[hd.Name] = hd
	}
	if f := members["./sub/f"]; f == nil || f.Uid != 1000 || f.Gid != 100 {
		t.Fatalf("tar members %v", members)
	}
	if members["./"+odd] == nil {
		t.Fatalf("tar lacks the odd name: %v", members)
	}
	pid := h.PID()
	if err := h.Close(); err != nil || IsGuestfish(pid) {
		t.Fatalf("close: %v, alive %v", err, IsGuestfish(pid))
	}
	if _, err := h.List(ctx, "/dev/sda1", "/"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}
