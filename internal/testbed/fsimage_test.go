package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPatternReader(t *testing.T) {
	a, _ := io.ReadAll(PatternReader("/a", 100))
	b, _ := io.ReadAll(PatternReader("/b", 100))
	if len(a) != 100 || bytes.Equal(a, b) || bytes.Equal(a[:8], a[8:16]) {
		t.Fatalf("pattern not per path and offset: %x / %x", a[:16], b[:16])
	}
	// Reading in odd pieces gives the same bytes.
	r := PatternReader("/a", 100)
	var got []byte
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
	}
	if !bytes.Equal(got, a) {
		t.Fatal("pattern depends on read sizes")
	}
	f := FileSpec{Path: "/s", Type: TypeFile, Size: 5 * SparseChunk, Sparse: true}
	c, _ := io.ReadAll(f.Content())
	p, _ := io.ReadAll(PatternReader("/s", f.Size))
	if int64(len(c)) != f.Size || !bytes.Equal(c[:SparseChunk], p[:SparseChunk]) ||
		!bytes.Equal(c[len(c)-SparseChunk:], p[len(p)-SparseChunk:]) ||
		!bytes.Equal(c[SparseChunk:len(c)-SparseChunk], make([]byte, len(c)-2*SparseChunk)) {
		t.Fatal("sparse content wrong")
	}
}

func TestValidateSpecs(t *testing.T) {
	ok := DiskSpec{Table: "gpt", Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8, Files: UnixFiles(time.Unix(0, 0))}}}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]DiskSpec{
		"no volumes":     {Table: "gpt"},
		"two whole-disk": {Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8}, {FSType: "ext4", SizeMiB: 8}}},
		"bad fs":         {Volumes: []VolumeSpec{{FSType: "zfs", SizeMiB: 8}}},
		"lvm no vg":      {Table: "lvm", Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8}}},
		"relative":       {Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8, Files: []FileSpec{{Path: "a", Type: "file"}}}}},
		"dotdot":         {Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8, Files: []FileSpec{{Path: "/a/../b", Type: "file"}}}}},
		"vfat symlink":   {Volumes: []VolumeSpec{{FSType: "vfat", SizeMiB: 8, Files: []FileSpec{{Path: "/l", Type: "symlink", Target: "x"}}}}},
		"vfat name":      {Volumes: []VolumeSpec{{FSType: "vfat", SizeMiB: 8, Files: []FileSpec{{Path: "/a\\b", Type: "file"}}}}},
		"vfat case":      {Volumes: []VolumeSpec{{FSType: "vfat", SizeMiB: 8, Files: []FileSpec{{Path: "/A", Type: "file"}, {Path: "/a", Type: "file"}}}}},
		"hardlink first": {Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8, Files: []FileSpec{{Path: "/h", Type: "hardlink", Target: "/f"}, {Path: "/f", Type: "file"}}}}},
		"small sparse":   {Volumes: []VolumeSpec{{FSType: "ext4", SizeMiB: 8, Files: []FileSpec{{Path: "/s", Type: "file", Size: 100, Sparse: true}}}}},
	} {
		if err := d.validate(); err == nil {
			t.Errorf("%s: validate accepted %+v", name, d)
		}
	}
}

// requireGuestfs returns guestfish's environment, or skips (fails under
// KNIB_TEST_REQUIRE_INFRA=1) when guestfish, its environment file, the
// host's file system tools or root are missing.
func requireGuestfs(t *testing.T) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds disk images with libguestfs")
	}
	for _, tool := range []string{"guestfish", "qemu-img", "sfdisk", "mkfs.ext4", "mkfs.btrfs", "mkfs.xfs", "mkfs.vfat", "mcopy"} {
		if _, err := lookTool(tool); err != nil {
			unavailable(t, err.Error())
		}
	}
	if os.Geteuid() != 0 {
		unavailable(t, "not running as root (file owners in test images)")
	}
	env, err := GuestfsEnv()
	if err != nil {
		unavailable(t, err.Error())
	}
	return env
}

// unixFiles is a tree with odd names, links, a sparse and a big file; all
// mtimes distinct and even.
func TestBuildDisks(t *testing.T) {
	env := requireGuestfs(t)
	t0 := time.Date(2021, 3, 4, 5, 6, 8, 0, time.UTC)
	ntfs := true
	if _, err := lookTool("mkntfs"); err != nil {
		ntfs = false
	}

	t.Run("gpt", func(t *testing.T) {
		t.Parallel()
		d := DiskSpec{Table: "gpt", Volumes: []VolumeSpec{
			{FSType: "ext4", Label: "root", SizeMiB: 64, Files: append(UnixFiles(t0),
				FileSpec{Path: "/var/lib/huge", Type: TypeFile, Mode: 0o600, MTime: t0, Size: 24 << 20})},
			{FSType: "vfat", Label: "ESP", SizeMiB: 64, Files: VFATFiles(t0)},
			{FSType: "btrfs", Label: "data", SizeMiB: 128, Files: UnixFiles(t0.Add(time.Hour))},
			{FSType: "xfs", Label: "xdata", SizeMiB: 300, Files: UnixFiles(t0.Add(2 * time.Hour))},
		}}
		img := buildAndVerify(t, env, d)
		if fi, err := os.Stat(img); err == nil {
			t.Logf("gpt image: %d MiB allocated", fi.Size()>>20)
		}
	})
	t.Run("mbr", func(t *testing.T) {
		t.Parallel()
		d := DiskSpec{Table: "mbr", Volumes: []VolumeSpec{
			{FSType: "ext4", SizeMiB: 32, Files: UnixFiles(t0)},
		}}
		if ntfs {
			d.Volumes = append(d.Volumes, VolumeSpec{FSType: "ntfs", Label: "Windows", SizeMiB: 32, Files: UnixFiles(t0)})
		} else {
			t.Log("mkntfs missing: no ntfs volume")
		}
		buildAndVerify(t, env, d)
	})
	t.Run("lvm", func(t *testing.T) {
		t.Parallel()
		files := UnixFiles(t0)
		d := DiskSpec{Table: "lvm", VG: "knibvg", Volumes: []VolumeSpec{
			{FSType: "ext4", Label: "lvroot", SizeMiB: 30, Files: files, LV: "root"},
		}}
		img := buildAndVerify(t, env, d)

		// The incremental's change: one file replaced, one added, one
		// directory removed, one directory's mtime set again.
		t1 := t0.Add(24 * time.Hour)
		changed := []FileSpec{
			{Path: "/odd name with spaces.txt", Type: TypeFile, Mode: 0o644, UID: 1, GID: 2, MTime: t1, Data: []byte("changed")},
			{Path: "/new dir/new\nfile", Type: TypeFile, Mode: 0o600, MTime: t1.Add(2 * time.Second), Size: 100 << 10},
			{Path: "/new dir", Type: TypeDir, Mode: 0o711, MTime: t1.Add(4 * time.Second)},
			{Path: "/dir", Type: TypeDir, Mode: 0o755, UID: 1000, GID: 1000, MTime: t1.Add(6 * time.Second)},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := AmendVolume(ctx, img, d, 0, changed, []string{"/dir/sub"}); err != nil {
			t.Fatal(err)
		}
		var after []FileSpec
		for _, f := range files {
			if strings.HasPrefix(f.Path, "/dir/sub") || f.Path == "/dir" || f.Path == "/odd name with spaces.txt" || f.Path == "/hard" {
				continue // removed, changed, or (the hard link) its target removed
			}
			after = append(after, f)
		}
		d.Volumes[0].Files = append(after, changed...)
		verifyDisk(t, env, img, d)
	})
}

// buildAndVerify builds d in the test's temp directory, verifies it and
// returns the image's path.
func buildAndVerify(t *testing.T, env []string, d DiskSpec) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	img := filepath.Join(t.TempDir(), "disk.qcow2")
	start := time.Now()
	if err := BuildDisk(ctx, img, d); err != nil {
		t.Fatal(err)
	}
	t.Logf("BuildDisk: %v", time.Since(start).Round(time.Millisecond))
	verifyDisk(t, env, img, d)
	return img
}

// verifyDisk reads every volume of the image in one read-only appliance
// and compares each spec's type, mode, owners, mtime, size, content and
// link target with what the file system holds.
func verifyDisk(t *testing.T, env []string, img string, d DiskSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()

	type item struct {
		vol int
		f   FileSpec
	}
	var items []item
	args := GuestfishArgs(img, "qcow2", true, nil)
	args = append(args, ":", "list-filesystems")
	marker := func(n int) string { return fmt.Sprintf("@@knib-%d@@", n) }
	for v, vol := range d.Volumes {
		dev, err := d.Device(v)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, ":", "mount-ro", dev, "/")
		for _, f := range vol.Files {
			args = append(args, ":", "echo", marker(len(items)), ":", "lstatns", f.Path)
			switch f.Type {
			case TypeFile, TypeHardlink:
				args = append(args, ":", "checksum", "sha256", f.Path)
			case TypeSymlink:
				args = append(args, ":", "readlink", f.Path)
			}
			items = append(items, item{v, f})
		}
		args = append(args, ":", "umount", "/")
	}
	out, err := runTool(ctx, env, "guestfish", args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verify (one guestfish): %v", time.Since(start).Round(time.Millisecond))

	// Split at the marker lines: blocks[0] is list-filesystems' output.
	blocks := []string{""}
	for _, line := range strings.SplitAfter(out, "\n") {
		if strings.TrimSuffix(line, "\n") == marker(len(blocks)-1) {
			blocks = append(blocks, "")
			continue
		}
		blocks[len(blocks)-1] += line
	}
	if len(blocks) != len(items)+1 {
		t.Fatalf("guestfish output has %d blocks, want %d:\n%s", len(blocks), len(items)+1, out)
	}
	for v, vol := range d.Volumes {
		dev, _ := d.Device(v)
		if want := dev + ": " + vol.FSType + "\n"; !strings.Contains(blocks[0], want) {
			// libguestfs lists LVs as /dev/VG/LV and may list the PV too.
			t.Errorf("list-filesystems lacks %q:\n%s", want, blocks[0])
		}
	}

	specs := map[string]FileSpec{}
	inodes := map[string]int64{}
	for i, it := range items {
		f, fsType := it.f, d.Volumes[it.vol].FSType
		key := fmt.Sprintf("%d:%s", it.vol, f.Path)
		specs[key] = f
		name := fmt.Sprintf("%s %q", fsType, f.Path)
		st, rest := parseStat(blocks[i+1])
		inodes[key] = st["st_ino"]

		wantType := map[string]int64{TypeFile: 0o100000, TypeHardlink: 0o100000, TypeDir: 0o040000, TypeSymlink: 0o120000}[f.Type]
		if got := st["st_mode"] & 0o170000; got != wantType {
			t.Errorf("%s: type %o, want %o", name, got, wantType)
			continue
		}
		var target FileSpec // what holds the metadata: the spec, or a hard link's target
		switch f.Type {
		case TypeHardlink:
			target = specs[fmt.Sprintf("%d:%s", it.vol, f.Target)]
			if ino := inodes[fmt.Sprintf("%d:%s", it.vol, f.Target)]; st["st_ino"] != ino || st["st_nlink"] < 2 {
				t.Errorf("%s: inode %d nlink %d, want the inode %d of %q shared", name, st["st_ino"], st["st_nlink"], ino, f.Target)
			}
		default:
			target = f
		}
		owners := fsType != "vfat" && fsType != "ntfs"
		if owners && f.Type != TypeSymlink {
			if got := uint32(st["st_mode"] & 0o7777); got != target.Mode {
				t.Errorf("%s: mode %04o, want %04o", name, got, target.Mode)
			}
		}
		if owners && (st["st_uid"] != int64(target.UID) || st["st_gid"] != int64(target.GID)) {
			t.Errorf("%s: owner %d:%d, want %d:%d", name, st["st_uid"], st["st_gid"], target.UID, target.GID)
		}
		if !target.MTime.IsZero() {
			want := target.MTime.Unix()
			if fsType == "vfat" {
				want &^= 1
			}
			if st["st_mtime_sec"] != want {
				t.Errorf("%s: mtime %d, want %d", name, st["st_mtime_sec"], want)
			}
		}
		switch f.Type {
		case TypeFile, TypeHardlink:
			if st["st_size"] != target.ContentSize() {
				t.Errorf("%s: size %d, want %d", name, st["st_size"], target.ContentSize())
			}
			h := sha256.New()
			io.Copy(h, target.Content())
			if got, want := strings.TrimSpace(rest), hex.EncodeToString(h.Sum(nil)); got != want {
				t.Errorf("%s: sha256 %s, want %s", name, got, want)
			}
			if target.Sparse && fsType != "vfat" && st["st_blocks"]*512 > target.Size/2 {
				t.Errorf("%s: %d bytes allocated of %d: no hole", name, st["st_blocks"]*512, target.Size)
			}
		case TypeSymlink:
			if got := strings.TrimSuffix(rest, "\n"); got != f.Target {
				t.Errorf("%s: target %q, want %q", name, got, f.Target)
			}
			if st["st_size"] != int64(len(f.Target)) {
				t.Errorf("%s: size %d, want %d", name, st["st_size"], len(f.Target))
			}
		}
	}
}

// parseStat reads lstatns' "st_xxx: N" lines at the start of a block and
// returns them and the rest of the block.
func parseStat(block string) (map[string]int64, string) {
	st := map[string]int64{}
	rest := block
	for rest != "" {
		line, after, _ := strings.Cut(rest, "\n")
		k, v, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(k, "st_") {
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			break
		}
		st[k] = n
		rest = after
	}
	return st, rest
}
