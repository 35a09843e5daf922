package testbed

// Disk images with guest file systems, the fixtures of the file-level
// restore's tests.
//
// A guest file system is untrusted data, so nothing here mounts one in the
// host's kernel. File systems are made and filled on the host by tools that
// write an image file without mounting it (mkfs.ext4 -d, mkfs.btrfs
// --rootdir, mkfs.vfat + mcopy, mkfs.xfs, mkntfs); whatever those cannot do
// runs in the libguestfs appliance (its own VM) through one guestfish per
// BuildDisk or AmendVolume:
//
//   - ext4: everything on the host (mkfs.ext4 -d keeps modes, owners, times,
//     symlinks, hard links and holes).
//   - btrfs: mkfs.btrfs --rootdir keeps all but holes (btrfs-progs 6.2 writes
//     a sparse file's zeros); the appliance truncates each sparse file to its
//     first 4 KiB and extends it again, which makes the hole.
//   - vfat: mkfs.vfat, then mcopy -s -m from a staging tree (TZ=UTC). vfat
//     has no owners, modes, symlinks or hard links: its specs may list only
//     files and dirs, Mode/UID/GID are ignored (the appliance shows root and
//     its mount's default mode); names must be valid long names (none of
//     "*/:<>?\| or control characters, no trailing dot or space, unique
//     regardless of case); times are stored as UTC wall-clock with 2 s
//     precision, rounded down. Sparse files are written whole.
//   - xfs: mkfs.xfs on the host (xfsprogs 6.1 refuses less than 300 MiB),
//     content in the appliance: its protofile (mkfs.xfs -p) cannot express
//     names with white space, times, hard links or holes.
//   - ntfs: mkntfs on the host, content in the appliance (ntfs-3g): symlinks,
//     hard links, times and holes work; ntfs-3g without a user mapping has
//     no owners or modes, so Mode/UID/GID are ignored (everything shows as
//     root, 0777).
//
// In the appliance big files cost time (uploads run at ~37 MB/s under TCG):
// keep them on ext4 or btrfs.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unsafe"
)

// GuestfsEnvFile holds the KEY=VALUE lines guestfish needs on this machine
// (the supermin kernel, the direct backend under TCG); scripts/setup.sh
// writes it.
const GuestfsEnvFile = "/var/cache/knib/gfk/env"

// SparseChunk is how much data a sparse FileSpec holds at its start and at
// its end; everything between is a hole.
const SparseChunk = 4096

// FileSpec is one file system object a test image holds, as written.
//
// What a test may compare after reading it back: Type, Size and content
// everywhere; Target of symlinks; Mode, UID and GID on ext4, btrfs and xfs
// (not vfat, ntfs); MTime to the second (vfat: rounded down to an even
// second). Hard links share one inode with their target, so only Path and
// Target of a "hardlink" count. Directories that are not listed but needed
// as parents are made with mode 0755, owned by root, with an unspecified
// mtime; a listed directory's mtime is set after everything inside it is
// written.
type FileSpec struct {
	Path   string    // absolute inside the file system, e.g. "/dir/odd name\n.txt"
	Type   string    // "file", "dir", "symlink", "hardlink"
	Mode   uint32    // permission bits (0644); ignored for symlinks and hard links
	UID    int       // owner
	GID    int       // group
	MTime  time.Time // second precision; zero: left as made
	Data   []byte    // file content when Size is 0
	Size   int64     // big or sparse files: the content is PatternReader(Path, Size) (Data must be nil)
	Sparse bool      // a Size-byte file with data (pattern bytes) only in its first and last SparseChunk bytes
	Target string    // symlink target, or for "hardlink" the path of the file it links to
}

// FileSpec types.
const (
	TypeFile     = "file"
	TypeDir      = "dir"
	TypeSymlink  = "symlink"
	TypeHardlink = "hardlink"
)

// VolumeSpec is one file system on a disk image.
type VolumeSpec struct {
	FSType  string // ext4, xfs, vfat, btrfs, ntfs
	Label   string // file system label ("" none)
	SizeMiB int
	Files   []FileSpec
	// LV names the logical volume of an "lvm" disk; default "lv<index>".
	LV string
}

// DiskSpec is a disk image: a whole-disk file system (Table == "") or a
// partition table ("gpt" or "mbr") with one partition per volume, in order,
// the first at 1 MiB, each SizeMiB long; LVM: Table "lvm" puts one PV on the
// whole disk, a VG named by VG and one LV per volume.
type DiskSpec struct {
	Table   string
	VG      string
	Volumes []VolumeSpec
}

// GuestfsEnv returns os.Environ() plus the lines of GuestfsEnvFile, the
// environment to run guestfish with.
func GuestfsEnv() ([]string, error) {
	b, err := os.ReadFile(GuestfsEnvFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("libguestfs environment %s missing (run make setup): %w", GuestfsEnvFile, err)
	}
	if err != nil {
		return nil, fmt.Errorf("libguestfs environment: %w", err)
	}
	env := os.Environ()
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); !ok || k == "" {
			return nil, fmt.Errorf("libguestfs environment %s: bad line %q", GuestfsEnvFile, line)
		}
		env = append(env, line)
	}
	return env, nil
}

// PatternReader returns the deterministic content of a big file: the 8-byte
// little-endian word at offset o (a multiple of 8) is o xor the 64-bit
// FNV-1a hash of path.
func PatternReader(path string, size int64) io.Reader {
	return &patternReader{key: patternKey(path), end: size}
}

func patternKey(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

type patternReader struct {
	key      uint64
	off, end int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.end {
		return 0, io.EOF
	}
	if rest := r.end - r.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	for i := range p {
		o := r.off + int64(i)
		w := uint64(o&^7) ^ r.key
		p[i] = byte(w >> (8 * uint(o&7)))
	}
	r.off += int64(len(p))
	return len(p), nil
}

// sparseChunks returns the data of a sparse spec: its first and its last
// SparseChunk bytes.
func sparseChunks(f FileSpec) (head, tail []byte) {
	k := patternKey(f.Path)
	head, tail = make([]byte, SparseChunk), make([]byte, SparseChunk)
	(&patternReader{key: k, end: SparseChunk}).Read(head)
	(&patternReader{key: k, off: f.Size - SparseChunk, end: f.Size}).Read(tail)
	return head, tail
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// ContentSize is the size of a "file" spec's content.
func (f FileSpec) ContentSize() int64 {
	if f.Size > 0 {
		return f.Size
	}
	return int64(len(f.Data))
}

// Content returns the content of a "file" spec: Data, the pattern of Size
// bytes, or for a sparse file pattern bytes in its first and last
// SparseChunk bytes with zeros between.
func (f FileSpec) Content() io.Reader {
	if f.Size == 0 {
		return strings.NewReader(string(f.Data))
	}
	if !f.Sparse {
		return PatternReader(f.Path, f.Size)
	}
	k := patternKey(f.Path)
	return io.MultiReader(
		&patternReader{key: k, off: 0, end: SparseChunk},
		io.LimitReader(zeroReader{}, f.Size-2*SparseChunk),
		&patternReader{key: k, off: f.Size - SparseChunk, end: f.Size})
}

// Device is the appliance's device of volume vol when the disk is the first
// drive: /dev/sda (whole disk), /dev/sdaN (partition N = vol+1) or
// /dev/VG/LV.
func (d DiskSpec) Device(vol int) (string, error) {
	return d.deviceOn("sda", vol)
}

func (d DiskSpec) deviceOn(drive string, vol int) (string, error) {
	if vol < 0 || vol >= len(d.Volumes) {
		return "", fmt.Errorf("no volume %d (disk has %d)", vol, len(d.Volumes))
	}
	switch d.Table {
	case "":
		return "/dev/" + drive, nil
	case "gpt", "mbr":
		return fmt.Sprintf("/dev/%s%d", drive, vol+1), nil
	case "lvm":
		return "/dev/" + d.VG + "/" + d.lvName(vol), nil
	}
	return "", fmt.Errorf("unknown partition table %q", d.Table)
}

func (d DiskSpec) lvName(vol int) string {
	if lv := d.Volumes[vol].LV; lv != "" {
		return lv
	}
	return fmt.Sprintf("lv%d", vol)
}

// --- validation ---------------------------------------------------------------

func lvmName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("+_.-", c)) {
			return false
		}
	}
	return true
}

func (d DiskSpec) validate() error {
	if len(d.Volumes) == 0 {
		return errors.New("disk spec has no volumes")
	}
	switch d.Table {
	case "":
		if len(d.Volumes) != 1 {
			return fmt.Errorf("a whole-disk file system needs exactly one volume, not %d", len(d.Volumes))
		}
	case "gpt":
	case "mbr":
		if len(d.Volumes) > 4 {
			return fmt.Errorf("mbr: %d volumes, at most 4 primary partitions", len(d.Volumes))
		}
	case "lvm":
		if !lvmName(d.VG) {
			return fmt.Errorf("lvm: bad volume group name %q", d.VG)
		}
		seen := map[string]bool{}
		for i := range d.Volumes {
			lv := d.lvName(i)
			if !lvmName(lv) || seen[lv] {
				return fmt.Errorf("lvm: bad or repeated logical volume name %q", lv)
			}
			seen[lv] = true
		}
	default:
		return fmt.Errorf("unknown partition table %q (want \"\", gpt, mbr or lvm)", d.Table)
	}
	for i, v := range d.Volumes {
		if v.SizeMiB <= 0 {
			return fmt.Errorf("volume %d: size %d MiB", i, v.SizeMiB)
		}
		if err := validateFiles(v.FSType, v.Files, nil); err != nil {
			return fmt.Errorf("volume %d (%s): %w", i, v.FSType, err)
		}
	}
	return nil
}

// validateFiles checks specs for fsType; a hard link's target must be a
// "file" listed before it, unless existing (AmendVolume) accepts it.
func validateFiles(fsType string, files []FileSpec, existing func(string) bool) error {
	switch fsType {
	case "ext4", "xfs", "vfat", "btrfs", "ntfs":
	default:
		return fmt.Errorf("unknown file system type %q", fsType)
	}
	types := map[string]string{}
	folded := map[string]string{}
	for _, f := range files {
		p := f.Path
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" || strings.ContainsRune(p, 0) {
			return fmt.Errorf("path %q: want a clean absolute path below /", p)
		}
		if _, dup := types[p]; dup {
			return fmt.Errorf("path %q listed twice", p)
		}
		types[p] = f.Type
		switch f.Type {
		case TypeFile:
			if f.Size < 0 || f.Size > 0 && f.Data != nil {
				return fmt.Errorf("%q: give Data or Size, not both", p)
			}
			if f.Sparse && f.Size <= 2*SparseChunk {
				return fmt.Errorf("%q: a sparse file needs Size > %d", p, 2*SparseChunk)
			}
		case TypeDir:
		case TypeSymlink:
			if f.Target == "" || strings.ContainsRune(f.Target, 0) {
				return fmt.Errorf("%q: bad symlink target %q", p, f.Target)
			}
		case TypeHardlink:
			if types[f.Target] != TypeFile && (existing == nil || !existing(f.Target)) {
				return fmt.Errorf("%q: hard link target %q is not a file listed before it", p, f.Target)
			}
		default:
			return fmt.Errorf("%q: unknown type %q", p, f.Type)
		}
		if fsType == "vfat" {
			if f.Type != TypeFile && f.Type != TypeDir {
				return fmt.Errorf("%q: vfat holds only files and dirs, not %s", p, f.Type)
			}
			for _, name := range strings.Split(p[1:], "/") {
				if strings.ContainsAny(name, "\"*:<>?\\|") || strings.IndexFunc(name, unicode.IsControl) >= 0 ||
					strings.HasSuffix(name, ".") || strings.HasSuffix(name, " ") {
					return fmt.Errorf("%q: not a valid vfat name", p)
				}
			}
			k := strings.ToLower(p)
			if other, dup := folded[k]; dup {
				return fmt.Errorf("%q and %q are the same name on vfat", other, p)
			}
			folded[k] = p
		}
	}
	return nil
}

// --- BuildDisk ----------------------------------------------------------------

// BuildDisk writes the disk image at image as qcow2 (replacing a file
// there).
func BuildDisk(ctx context.Context, image string, d DiskSpec) error {
	if err := d.validate(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "knib-fsimage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Layout: offsets (bytes) of the volumes on the disk.
	const mib = int64(1) << 20
	var diskSize int64
	offsets := make([]int64, len(d.Volumes))
	switch d.Table {
	case "":
		diskSize = int64(d.Volumes[0].SizeMiB) * mib
	case "gpt", "mbr":
		off := mib
		for i, v := range d.Volumes {
			offsets[i] = off
			off += int64(v.SizeMiB) * mib
		}
		diskSize = off + mib // room for GPT's backup header
	case "lvm":
		diskSize = 8 * mib // PV label and metadata area
		for _, v := range d.Volumes {
			diskSize += (int64(v.SizeMiB) + 3) / 4 * 4 * mib // 4 MiB extents
		}
	}

	// The file system images, made and filled on the host as far as possible.
	fsImages := make([]string, len(d.Volumes))
	for i, v := range d.Volumes {
		fsImages[i] = filepath.Join(tmp, fmt.Sprintf("v%d.img", i))
		stage := filepath.Join(tmp, fmt.Sprintf("stage%d", i))
		if err := makeFS(ctx, v, fsImages[i], stage, offsets[i]); err != nil {
			return fmt.Errorf("volume %d (%s): %w", i, v.FSType, err)
		}
		if err := os.RemoveAll(stage); err != nil {
			return err
		}
	}

	// The raw disk.
	raw := filepath.Join(tmp, "disk.raw")
	switch d.Table {
	case "":
		raw = fsImages[0]
	default:
		if err := truncateNew(raw, diskSize); err != nil {
			return err
		}
	}
	if d.Table == "gpt" || d.Table == "mbr" {
		if err := partition(ctx, raw, d, offsets); err != nil {
			return err
		}
		for i := range d.Volumes {
			if _, err := runTool(ctx, nil, "dd", "if="+fsImages[i], "of="+raw, "bs=1M",
				fmt.Sprintf("seek=%d", offsets[i]/mib), "conv=notrunc,sparse", "status=none"); err != nil {
				return fmt.Errorf("volume %d: %w", i, err)
			}
		}
	}

	// What the host could not do, in the appliance: LVM, the content of xfs
	// and ntfs, the holes of btrfs.
	var gf script
	var drives []string
	if d.Table == "lvm" {
		gf.cmd("pvcreate", "/dev/sda")
		gf.cmd("vgcreate", d.VG, "/dev/sda")
		for i, v := range d.Volumes {
			lv := d.lvName(i)
			gf.cmd("lvcreate", lv, d.VG, strconv.Itoa((v.SizeMiB+3)/4*4))
			src := "/dev/sd" + string(rune('b'+i))
			gf.cmd("copy-device-to-device", src, "/dev/"+d.VG+"/"+lv, "sparse:true")
			drives = append(drives, fsImages[i])
		}
	}
	upDir := filepath.Join(tmp, "up")
	for i, v := range d.Volumes {
		var files []FileSpec
		switch v.FSType {
		case "xfs", "ntfs":
			files = v.Files
		case "btrfs":
			for _, f := range v.Files {
				if f.Type == TypeFile && f.Sparse {
					files = append(files, f)
				}
			}
		}
		if len(files) == 0 {
			continue
		}
		dev, err := d.Device(i)
		if err != nil {
			return err
		}
		gf.cmd("mount", dev, "/")
		if v.FSType == "btrfs" {
			err = gf.holes(files, upDir)
		} else {
			err = gf.populate(v.FSType, files, upDir)
		}
		if err != nil {
			return fmt.Errorf("volume %d (%s): %w", i, v.FSType, err)
		}
		gf.cmd("umount", "/")
	}
	if len(gf.cmds) > 0 {
		if err := gf.run(ctx, raw, "raw", drives); err != nil {
			return err
		}
	}

	if _, err := runTool(ctx, nil, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image); err != nil {
		os.Remove(image)
		return err
	}
	return nil
}

// AmendVolume changes files in the volume number vol of the existing qcow2
// image, built from d (for the incremental backup of a test): it
// removes removePaths (recursively) first, then writes or replaces files
// (in the appliance, one guestfish). Parent directories of what changed
// get the current time as mtime unless files lists them.
func AmendVolume(ctx context.Context, image string, d DiskSpec, vol int, files []FileSpec, removePaths []string) error {
	if err := d.validate(); err != nil {
		return err
	}
	dev, err := d.Device(vol)
	if err != nil {
		return err
	}
	fsType := d.Volumes[vol].FSType
	anyFile := func(string) bool { return true } // hard links to what is there
	if err := validateFiles(fsType, files, anyFile); err != nil {
		return fmt.Errorf("volume %d (%s): %w", vol, fsType, err)
	}
	for _, p := range removePaths {
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("remove %q: want a clean absolute path below /", p)
		}
	}
	tmp, err := os.MkdirTemp("", "knib-fsamend-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var gf script
	gf.cmd("mount", dev, "/")
	for _, p := range removePaths {
		gf.cmd("rm-rf", p)
	}
	if err := gf.populate(fsType, files, filepath.Join(tmp, "up")); err != nil {
		return fmt.Errorf("volume %d (%s): %w", vol, fsType, err)
	}
	gf.cmd("umount", "/")
	return gf.run(ctx, image, "qcow2", nil)
}

// makeFS makes the file system image img of v, filled as far as the host's
// tools can; stage is a scratch directory; off is the volume's offset on
// its disk (for mkntfs' boot sector).
func makeFS(ctx context.Context, v VolumeSpec, img, stage string, off int64) error {
	if err := truncateNew(img, int64(v.SizeMiB)<<20); err != nil {
		return err
	}
	switch v.FSType {
	case "ext4":
		if err := stageTree(stage, v.Files, true); err != nil {
			return err
		}
		args := []string{"-q", "-F", "-t", "ext4", "-d", stage}
		if v.Label != "" {
			args = append(args, "-L", v.Label)
		}
		_, err := runTool(ctx, nil, "mkfs.ext4", append(args, img)...)
		return err
	case "btrfs":
		if err := stageTree(stage, v.Files, true); err != nil {
			return err
		}
		args := []string{"-q", "-f", "--rootdir", stage}
		if v.Label != "" {
			args = append(args, "-L", v.Label)
		}
		_, err := runTool(ctx, nil, "mkfs.btrfs", append(args, img)...)
		return err
	case "vfat":
		args := []string{}
		if v.Label != "" {
			args = append(args, "-n", v.Label)
		}
		if _, err := runTool(ctx, nil, "mkfs.vfat", append(args, img)...); err != nil {
			return err
		}
		if err := stageTree(stage, v.Files, false); err != nil {
			return err
		}
		entries, err := os.ReadDir(stage)
		if err != nil {
			return err
		}
		env := append(os.Environ(), "LC_ALL=C.UTF-8", "TZ=UTC")
		for _, e := range entries {
			// -s recursive, -m keep mtimes, -Q stop at the first error.
			if _, err := runTool(ctx, env, "mcopy", "-s", "-m", "-Q", "-i", img, filepath.Join(stage, e.Name()), "::/"); err != nil {
				return err
			}
		}
		return nil
	case "xfs":
		args := []string{"-q", "-f"}
		if v.Label != "" {
			args = append(args, "-L", v.Label)
		}
		_, err := runTool(ctx, nil, "mkfs.xfs", append(args, img)...)
		return err
	case "ntfs":
		args := []string{"-F", "-Q", "-q", "-s", "512", "-p", strconv.FormatInt(off/512, 10), "-H", "255", "-S", "63"}
		if v.Label != "" {
			args = append(args, "-L", v.Label)
		}
		_, err := runTool(ctx, nil, "mkntfs", append(args, img)...)
		return err
	}
	return fmt.Errorf("unknown file system type %q", v.FSType)
}

// stageTree writes files below the directory root on the host (made here,
// mode 0755): content (holes stay holes), links, then owners and modes
// (when owners) and times, directories' times last and deepest first.
func stageTree(root string, files []FileSpec, owners bool) error {
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	host := func(p string) string { return filepath.Join(root, filepath.FromSlash(p)) }
	for _, f := range files {
		p := host(f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		var err error
		switch f.Type {
		case TypeDir:
			err = os.Mkdir(p, 0o755)
			if errors.Is(err, os.ErrExist) {
				err = nil // made before as a parent
			}
		case TypeFile:
			err = writeHostFile(p, f)
		case TypeSymlink:
			err = os.Symlink(f.Target, p)
		case TypeHardlink:
			err = os.Link(host(f.Target), p)
		}
		if err != nil {
			return fmt.Errorf("stage %q: %w", f.Path, err)
		}
	}
	for _, f := range files {
		if f.Type == TypeHardlink {
			continue
		}
		p := host(f.Path)
		if owners {
			if err := os.Lchown(p, f.UID, f.GID); err != nil {
				return fmt.Errorf("stage %q (owners need root): %w", f.Path, err)
			}
		}
		if f.Type != TypeSymlink {
			if err := os.Chmod(p, os.FileMode(f.Mode&0o777)|modeBits(f.Mode)); err != nil {
				return fmt.Errorf("stage %q: %w", f.Path, err)
			}
		}
	}
	for _, f := range timeOrder(files) {
		if err := lutimes(host(f.Path), f.MTime); err != nil {
			return fmt.Errorf("stage %q: times: %w", f.Path, err)
		}
	}
	return nil
}

// modeBits converts setuid, setgid and sticky of a Unix mode to Go's.
func modeBits(m uint32) os.FileMode {
	var fm os.FileMode
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// timeOrder returns the specs whose mtime is to be set, in the order to set
// it: non-directories first, then directories deepest first.
func timeOrder(files []FileSpec) []FileSpec {
	var out, dirs []FileSpec
	for _, f := range files {
		switch {
		case f.MTime.IsZero() || f.Type == TypeHardlink:
		case f.Type == TypeDir:
			dirs = append(dirs, f)
		default:
			out = append(out, f)
		}
	}
	sort.SliceStable(dirs, func(i, j int) bool {
		return strings.Count(dirs[i].Path, "/") > strings.Count(dirs[j].Path, "/")
	})
	return append(out, dirs...)
}

// writeHostFile writes a "file" spec's content to the new host file p;
// a sparse one gets its hole.
func writeHostFile(p string, f FileSpec) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if f.Sparse {
		head, tail := sparseChunks(f)
		_, err = out.WriteAt(head, 0)
		if err == nil {
			_, err = out.WriteAt(tail, f.Size-SparseChunk)
		}
	} else {
		w := bufio.NewWriterSize(out, 1<<20)
		_, err = io.Copy(w, f.Content())
		if err == nil {
			err = w.Flush()
		}
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// lutimes sets atime and mtime of p to t without following a symlink.
func lutimes(p string, t time.Time) error {
	ts := [2]syscall.Timespec{syscall.NsecToTimespec(t.UnixNano()), syscall.NsecToTimespec(t.UnixNano())}
	b, err := syscall.BytePtrFromString(p)
	if err != nil {
		return err
	}
	atFDCWD, atSymlinkNofollow := -100, 0x100
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(atFDCWD), uintptr(unsafe.Pointer(b)),
		uintptr(unsafe.Pointer(&ts[0])), uintptr(atSymlinkNofollow), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func truncateNew(p string, size int64) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// partition writes d's partition table on the raw disk with sfdisk.
func partition(ctx context.Context, raw string, d DiskSpec, offsets []int64) error {
	var b strings.Builder
	if d.Table == "gpt" {
		b.WriteString("label: gpt\n")
	} else {
		b.WriteString("label: dos\n")
	}
	b.WriteString("unit: sectors\n")
	for i, v := range d.Volumes {
		var typ string
		switch {
		case d.Table == "gpt" && (v.FSType == "vfat" || v.FSType == "ntfs"):
			typ = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" // Microsoft basic data
		case d.Table == "gpt":
			typ = "0FC63DAF-8483-4772-8E79-3D69D8477DE4" // Linux file system
		case v.FSType == "vfat":
			typ = "c"
		case v.FSType == "ntfs":
			typ = "7"
		default:
			typ = "83"
		}
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s\n", offsets[i]/512, int64(v.SizeMiB)<<11, typ)
	}
	cmd := exec.CommandContext(ctx, toolPath("sfdisk"), "-q", "--no-reread", "--no-tell-kernel", raw)
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sfdisk: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// toolPath finds a host tool also outside PATH (lookTool), else returns the
// bare name for exec to report.
func toolPath(name string) string {
	if p, err := lookTool(name); err == nil {
		return p
	}
	return name
}

// runTool runs a host tool with an argument list (env nil: the process's) and
// returns its stdout; the error carries its output.
func runTool(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, toolPath(name), args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + "\n" + stdout.String())
		if len(msg) > 4000 {
			msg = msg[:4000] + "..."
		}
		return stdout.String(), fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return stdout.String(), nil
}

// --- guestfish ----------------------------------------------------------------

// script is a list of guestfish commands, run in one guestfish process
// (one appliance launch). Each command and each of its arguments is one
// argv element: guestfish does not parse them again.
type script struct {
	cmds [][]string
	n    int // host files staged for upload
}

func (s *script) cmd(args ...string) { s.cmds = append(s.cmds, args) }

// run runs the script against disk (format raw or qcow2, writable) with the
// extra drives attached read-only as raw (the appliance's /dev/sdb, ...).
func (s *script) run(ctx context.Context, disk, format string, extra []string) error {
	env, err := GuestfsEnv()
	if err != nil {
		return err
	}
	args := GuestfishArgs(disk, format, false, extra)
	for _, c := range s.cmds {
		args = append(append(args, ":"), c...)
	}
	if _, err := runTool(ctx, env, "guestfish", args...); err != nil {
		return err
	}
	return nil
}

// GuestfishArgs returns the argument list of a guestfish process up to and
// including "run": disk attached with format (read-only when ro), the
// extra raw images read-only after it. Append ":" and commands to it, each
// argument one element ("--" before the commands keeps a name starting with
// "-" from being taken for an option).
func GuestfishArgs(disk, format string, ro bool, extra []string) []string {
	args := []string{"--", "add", disk, "format:" + format}
	if ro {
		args = append(args, "readonly:true")
	}
	for _, e := range extra {
		args = append(args, ":", "add", e, "format:raw", "readonly:true")
	}
	return append(args, ":", "run")
}

// stage writes r to a new host file in dir for guestfish's upload
// commands and returns its path.
func (s *script) stage(dir string, r io.Reader) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	s.n++
	p := filepath.Join(dir, strconv.Itoa(s.n))
	out, err := os.Create(p)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return p, err
}

// populate adds the commands that write files into the file system mounted
// at /: parents, content, links, owners and modes (not on vfat, ntfs), then
// times. An existing non-directory at a path is replaced.
func (s *script) populate(fsType string, files []FileSpec, upDir string) error {
	dirs := map[string]bool{}
	var dirList []string
	need := func(p string) {
		for q := p; q != "/" && !dirs[q]; q = path.Dir(q) {
			dirs[q] = true
			dirList = append(dirList, q)
		}
	}
	for _, f := range files {
		need(path.Dir(f.Path))
		if f.Type == TypeDir {
			need(f.Path)
		}
	}
	sort.Slice(dirList, func(i, j int) bool {
		return strings.Count(dirList[i], "/") < strings.Count(dirList[j], "/")
	})
	for _, d := range dirList {
		s.cmd("mkdir-p", d)
	}
	for _, f := range files {
		switch f.Type {
		case TypeFile:
			s.cmd("rm-f", f.Path)
			if f.Sparse {
				h, t := sparseChunks(f)
				head, err := s.stage(upDir, strings.NewReader(string(h)))
				if err != nil {
					return err
				}
				tail, err := s.stage(upDir, strings.NewReader(string(t)))
				if err != nil {
					return err
				}
				s.cmd("upload", head, f.Path)
				s.cmd("truncate-size", f.Path, strconv.FormatInt(f.Size, 10))
				s.cmd("upload-offset", tail, f.Path, strconv.FormatInt(f.Size-SparseChunk, 10))
			} else {
				up, err := s.stage(upDir, f.Content())
				if err != nil {
					return err
				}
				s.cmd("upload", up, f.Path)
			}
		case TypeSymlink:
			s.cmd("rm-f", f.Path)
			s.cmd("ln-s", f.Target, f.Path)
		case TypeHardlink:
			s.cmd("rm-f", f.Path)
			s.cmd("ln", f.Target, f.Path)
		}
	}
	if fsType != "vfat" && fsType != "ntfs" {
		for _, f := range files {
			if f.Type == TypeHardlink {
				continue
			}
			s.cmd("lchown", strconv.Itoa(f.UID), strconv.Itoa(f.GID), f.Path)
			if f.Type != TypeSymlink {
				s.cmd("chmod", fmt.Sprintf("0%o", f.Mode&0o7777), f.Path)
			}
		}
	}
	s.times(files)
	return nil
}

// holes adds the commands that give existing sparse files (content right,
// blocks allocated) their hole: cut to the first chunk, extend, write the
// last chunk again, restore the mtime.
func (s *script) holes(files []FileSpec, upDir string) error {
	for _, f := range files {
		_, t := sparseChunks(f)
		tail, err := s.stage(upDir, strings.NewReader(string(t)))
		if err != nil {
			return err
		}
		s.cmd("truncate-size", f.Path, strconv.Itoa(SparseChunk))
		s.cmd("truncate-size", f.Path, strconv.FormatInt(f.Size, 10))
		s.cmd("upload-offset", tail, f.Path, strconv.FormatInt(f.Size-SparseChunk, 10))
	}
	s.times(files)
	return nil
}

// times adds utimens (which does not follow symlinks) for every spec with
// an mtime, directories last and deepest first; atime = mtime.
func (s *script) times(files []FileSpec) {
	for _, f := range timeOrder(files) {
		sec := strconv.FormatInt(f.MTime.Unix(), 10)
		nsec := strconv.Itoa(f.MTime.Nanosecond())
		s.cmd("utimens", f.Path, sec, nsec, sec, nsec)
	}
}
