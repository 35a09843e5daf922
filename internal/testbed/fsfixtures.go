package testbed

import "time"

// UnixFiles is a tree a Unix file system (ext4, btrfs, xfs) can hold, with
// every kind of object and odd names: directories with owners and modes,
// names with spaces, a newline, quotes, a backslash, UTF-8 and a leading
// dash, a setuid file, an empty, a sparse and a bigger file, relative,
// absolute and dangling symlinks and a hard link. Times start after t0.
func UnixFiles(t0 time.Time) []FileSpec {
	n := 0
	at := func() time.Time { n++; return t0.Add(time.Duration(2*n) * time.Second) }
	return []FileSpec{
		{Path: "/dir", Type: TypeDir, Mode: 0o755, UID: 1000, GID: 1000, MTime: at()},
		{Path: "/dir/sub", Type: TypeDir, Mode: 0o700, UID: 1000, GID: 100, MTime: at()},
		{Path: "/dir/sub/deep", Type: TypeDir, Mode: 0o750, MTime: at()},
		{Path: "/dir/sub/deep/file.txt", Type: TypeFile, Mode: 0o644, UID: 1000, GID: 1000, MTime: at(), Data: []byte("deep file\n")},
		{Path: "/odd name with spaces.txt", Type: TypeFile, Mode: 0o600, UID: 1234, GID: 5678, MTime: at(), Data: []byte("spaces")},
		{Path: "/odd\nnewline", Type: TypeFile, Mode: 0o640, MTime: at(), Data: []byte("newline\n")},
		{Path: "/quote\"double'single", Type: TypeFile, Mode: 0o644, MTime: at(), Data: []byte("quotes")},
		{Path: "/back\\slash", Type: TypeFile, Mode: 0o644, MTime: at(), Data: []byte("backslash")},
		{Path: "/ünïcödé-日本.txt", Type: TypeFile, Mode: 0o644, MTime: at(), Data: []byte("utf-8 ☃")},
		{Path: "/-leading-dash", Type: TypeFile, Mode: 0o644, MTime: at(), Data: []byte("dash")},
		{Path: "/exec.sh", Type: TypeFile, Mode: 0o4755, MTime: at(), Data: []byte("#!/bin/sh\necho hi\n")},
		{Path: "/empty", Type: TypeFile, Mode: 0o644, MTime: at()},
		{Path: "/sparse", Type: TypeFile, Mode: 0o644, MTime: at(), Size: 10 << 20, Sparse: true},
		{Path: "/big", Type: TypeFile, Mode: 0o644, MTime: at(), Size: 3<<20 + 5},
		{Path: "/link-rel", Type: TypeSymlink, UID: 1000, GID: 1000, MTime: at(), Target: "dir/sub/deep/file.txt"},
		{Path: "/dir/link-abs", Type: TypeSymlink, MTime: at(), Target: "/odd name with spaces.txt"},
		{Path: "/dir/link dangling", Type: TypeSymlink, MTime: at(), Target: "../nowhere at all"},
		{Path: "/hard", Type: TypeHardlink, Target: "/dir/sub/deep/file.txt"},
	}
}

// VFATFiles is what vfat can hold: files and dirs, odd but valid names.
func VFATFiles(t0 time.Time) []FileSpec {
	return []FileSpec{
		{Path: "/EFI", Type: TypeDir, MTime: t0.Add(2 * time.Second)},
		{Path: "/EFI/debian", Type: TypeDir, MTime: t0.Add(4 * time.Second)},
		{Path: "/EFI/debian/grubx64.efi", Type: TypeFile, MTime: t0.Add(6 * time.Second), Size: 1<<20 + 3},
		{Path: "/odd name 'q' ü.txt", Type: TypeFile, MTime: t0.Add(8 * time.Second), Data: []byte("vfat odd")},
		{Path: "/-dash", Type: TypeFile, MTime: t0.Add(10 * time.Second), Data: []byte("dash")},
		{Path: "/a long name with spaces", Type: TypeDir, MTime: t0.Add(12 * time.Second)},
		{Path: "/a long name with spaces/x", Type: TypeFile, MTime: t0.Add(14 * time.Second), Data: []byte{}},
	}
}
