package guestfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Volume is a device that holds a file system (or that libguestfs found
// nothing mountable on, Type "unknown").
type Volume struct {
	Device string // /dev/sda, /dev/sda1, /dev/VG/LV
	// Drive is the index of the drive (0 for sda); -1 for a logical volume.
	Drive int
	// Partition is the partition number; 0 for a whole drive or a logical
	// volume.
	Partition int
	// Table is the drive's partition table ("gpt", "msdos") for a partition.
	Table string
	// LV is "VG/LV" for a logical volume.
	LV    string
	Type  string // ext4, xfs, vfat, btrfs, ntfs, swap, unknown, ...
	Label string
	Size  int64 // bytes of the device
	// Total and Used are the file system's bytes, when it could be mounted.
	Total, Used int64
}

// Mountable reports whether the volume holds a file system one can browse.
func (v Volume) Mountable() bool { return v.Type != "unknown" && v.Type != "swap" && v.Type != "" }

var sdName = regexp.MustCompile(`^/dev/sd([a-z]+?)(\d*)$`)

// driveIndex maps "a".."z","aa"... to 0, 1, ...
func driveIndex(letters string) int {
	n := 0
	for _, c := range letters {
		n = n*26 + int(c-'a') + 1
	}
	return n - 1
}

// Volumes lists the devices with file systems, with their sizes and, for
// the mountable ones, how much is used (each is mounted in turn).
func (h *Handle) Volumes(ctx context.Context) ([]Volume, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	out, err := h.call(ctx, nil, "list-filesystems")
	if err != nil {
		return nil, err
	}
	var vols []Volume
	tables := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dev, typ, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		v := Volume{Device: dev, Type: typ, Drive: -1}
		if m := sdName.FindStringSubmatch(dev); m != nil {
			v.Drive = driveIndex(m[1])
			if m[2] != "" {
				v.Partition, _ = strconv.Atoi(m[2])
				drive := "/dev/sd" + m[1]
				if _, seen := tables[drive]; !seen {
					t, err := h.call(ctx, nil, "part-get-parttype", drive)
					if err == nil {
						tables[drive] = strings.TrimSpace(string(t))
					} else {
						tables[drive] = ""
					}
				}
				v.Table = tables[drive]
			}
		} else if rest, ok := strings.CutPrefix(dev, "/dev/"); ok && strings.Count(rest, "/") == 1 {
			v.LV = rest
		}
		if size, err := h.call(ctx, nil, "blockdev-getsize64", dev); err == nil {
			v.Size, _ = strconv.ParseInt(strings.TrimSpace(string(size)), 10, 64)
		}
		if v.Mountable() {
			if label, err := h.call(ctx, nil, "vfs-label", dev); err == nil {
				v.Label = strings.TrimSuffix(string(label), "\n")
			}
			if err := h.mount(ctx, dev); err == nil {
				if st, err := h.call(ctx, nil, "statvfs", "/"); err == nil {
					f := fields(st)
					bsize, blocks, bfree := f["bsize"], f["blocks"], f["bfree"]
					v.Total, v.Used = bsize*blocks, bsize*(blocks-bfree)
				}
			}
		}
		vols = append(vols, v)
	}
	return vols, nil
}

// mount makes dev the mounted file system (read-only). Caller holds h.mu.
func (h *Handle) mount(ctx context.Context, dev string) error {
	if h.mounted == dev {
		return nil
	}
	if h.mounted != "" {
		if _, err := h.call(ctx, nil, "umount-all"); err != nil {
			return err
		}
		h.mounted = ""
	}
	_, err := h.call(ctx, nil, "mount-ro", dev, "/")
	if err != nil {
		// A file system with a dirty log (xfs) mounts read-only only
		// without replaying it.
		if _, err2 := h.call(ctx, nil, "mount-options", "ro,norecovery", dev, "/"); err2 != nil {
			return err
		}
	}
	h.mounted = dev
	return nil
}

// Entry is one directory entry (lstat: a symlink is described, not followed).
type Entry struct {
	Name   string
	Type   string // file, dir, symlink, char, block, fifo, socket
	Mode   uint32 // permission bits with setuid, setgid and sticky
	UID    int64
	GID    int64
	Size   int64
	Links  int64
	Inode  int64
	MTime  time.Time
	Target string // symlink target

	blockSize int64 // of its file system, when Ext4Extents read it
}

// CleanPath checks a path inside a guest file system: absolute, no NUL; it
// is returned cleaned ("..": at most up to the root).
func CleanPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q holds a NUL byte", p)
	}
	return path.Clean(p), nil
}

// Stat describes p (not following a final symlink) in dev's file system.
func (h *Handle) Stat(ctx context.Context, dev, p string) (Entry, error) {
	var e Entry
	err := h.onMounted(ctx, dev, func() error {
		var err error
		e, err = h.lstat(ctx, p)
		e.Name = path.Base(p)
		return err
	})
	return e, err
}

func (h *Handle) lstat(ctx context.Context, p string) (Entry, error) {
	out, err := h.call(ctx, nil, "lstatns", p)
	if err != nil {
		return Entry{}, err
	}
	e := entryOf(fields(out))
	if e.Type == "symlink" {
		t, err := h.call(ctx, nil, "readlink", p)
		if err != nil {
			return Entry{}, err
		}
		e.Target = strings.TrimSuffix(string(t), "\n")
	}
	return e, nil
}

// List reads directory dir of dev's file system, sorted by name.
func (h *Handle) List(ctx context.Context, dev, dir string) ([]Entry, error) {
	var es []Entry
	err := h.onMounted(ctx, dev, func() error {
		var err error
		es, err = h.list(ctx, dir)
		return err
	})
	return es, err
}

// list reads a directory of the mounted file system. Caller holds h.mu.
func (h *Handle) list(ctx context.Context, dir string) ([]Entry, error) {
	if out, err := h.call(ctx, nil, "is-dir", dir); err != nil {
		return nil, err
	} else if strings.TrimSpace(string(out)) != "true" {
		return nil, &Error{Command: "ls", Message: dir + ": not a directory"}
	}
	var names bytes.Buffer
	if _, err := h.call(ctx, &names, "ls0", dir, "-"); err != nil {
		return nil, err
	}
	var entries []Entry
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := h.call(ctx, nil, "lstatnslist", dir, quoteList(batch))
		if err != nil {
			return err
		}
		sts := fieldsList(out)
		if len(sts) != len(batch) {
			return &Error{Command: "lstatnslist", Message: fmt.Sprintf("%d answers for %d names", len(sts), len(batch))}
		}
		for i, f := range sts {
			e := entryOf(f)
			e.Name = batch[i]
			entries = append(entries, e)
		}
		batch = batch[:0]
		return nil
	}
	for _, name := range strings.Split(names.String(), "\x00") {
		if name == "" {
			continue
		}
		if !listSafe(name) {
			e, err := h.lstat(ctx, path.Join(dir, name))
			if err != nil {
				return nil, err
			}
			e.Name = name
			entries = append(entries, e)
			continue
		}
		batch = append(batch, name)
		if len(batch) == 256 {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	for i := range entries {
		if entries[i].Type != "symlink" {
			continue
		}
		t, err := h.call(ctx, nil, "readlink", path.Join(dir, entries[i].Name))
		if err != nil {
			return nil, err
		}
		entries[i].Target = strings.TrimSuffix(string(t), "\n")
	}
	sortEntries(entries)
	return entries, nil
}

// TarOut streams dir of dev's file system as a tar archive (numeric owners;
// members named "./..."), the way GNU tar in the appliance writes it.
func (h *Handle) TarOut(ctx context.Context, dev, dir string, w io.Writer) error {
	return h.onMounted(ctx, dev, func() error {
		_, err := h.call(ctx, w, "tar-out", dir, "-", "numericowner:true")
		return err
	})
}

// Download streams the content of file p of dev's file system.
func (h *Handle) Download(ctx context.Context, dev, p string, w io.Writer) error {
	return h.onMounted(ctx, dev, func() error {
		_, err := h.call(ctx, w, "download", p, "-")
		return err
	})
}

// onMounted runs fn under the handle's lock with dev mounted.
func (h *Handle) onMounted(ctx context.Context, dev string, fn func() error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if err := h.mount(ctx, dev); err != nil {
		return err
	}
	return fn()
}

// listSafe reports whether name survives guestfish's string-list parser
// inside single quotes (it reads \' as a quote; other backslashes are kept
// only when no quote follows).
func listSafe(name string) bool { return !strings.ContainsAny(name, `'\`) }

func quoteList(names []string) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('\'')
		b.WriteString(n)
		b.WriteByte('\'')
	}
	return b.String()
}

// fields parses "key: value" lines of one struct.
func fields(out []byte) map[string]int64 {
	l := fieldsList(out)
	if len(l) == 0 {
		return map[string]int64{}
	}
	return l[0]
}

// fieldsList parses guestfish's printing of a struct or a list of structs
// ("[0] = {" ... "}"), numeric fields only.
func fieldsList(out []byte) []map[string]int64 {
	var list []map[string]int64
	var cur map[string]int64
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "{"):
			cur = map[string]int64{}
			list = append(list, cur)
		case line == "}" || line == "":
		default:
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			if cur == nil {
				cur = map[string]int64{}
				list = append(list, cur)
			}
			k = strings.TrimPrefix(strings.TrimPrefix(k, "st_"), "f_")
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				cur[k] = n
			}
		}
	}
	return list
}

func entryOf(f map[string]int64) Entry {
	mode := uint32(f["mode"])
	return Entry{
		Type:  typeOf(mode),
		Mode:  mode & 0o7777,
		UID:   f["uid"],
		GID:   f["gid"],
		Size:  f["size"],
		Links: f["nlink"],
		Inode: f["ino"],
		MTime: time.Unix(f["mtime_sec"], f["mtime_nsec"]).UTC(),
	}
}

func typeOf(mode uint32) string {
	switch mode & 0o170000 {
	case 0o100000:
		return "file"
	case 0o040000:
		return "dir"
	case 0o120000:
		return "symlink"
	case 0o020000:
		return "char"
	case 0o060000:
		return "block"
	case 0o010000:
		return "fifo"
	case 0o140000:
		return "socket"
	}
	return "unknown"
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Name < es[j].Name })
}

// Extent is a run of a file's content on its device, in bytes.
type Extent struct {
	Logical  int64 // offset in the file
	Physical int64 // offset on the device
	Length   int64
	// Unwritten: allocated but never written (reads as zeros).
	Unwritten bool
}

var (
	sdDevice = regexp.MustCompile(`^/dev/sd[a-z]+[0-9]*$`)
	// A leaf line of debugfs' dump_extents: level, entries, logical
	// first - last, physical first - last, length, flags.
	extentLine = regexp.MustCompile(`^\s*\d+/\s*\d+\s+\d+/\s*\d+\s+(\d+)\s*-\s*(\d+)\s+(\d+)\s*-\s*(\d+)\s+(\d+)\s*(\S*)\s*$`)
)

// Ext4Extents returns where the content of regular file p lies on dev, an
// ext4 file system (debugfs reads the inode's extent tree in the
// appliance; only the inode number and the checked device name go into
// its command). The extents are sorted and checked: in the file, not
// overlapping. The caller reads them from the device's bytes itself.
func (h *Handle) Ext4Extents(ctx context.Context, dev, p string) (Entry, []Extent, error) {
	if !sdDevice.MatchString(dev) {
		return Entry{}, nil, fmt.Errorf("device %q: extents are read on drives and partitions only", dev)
	}
	var e Entry
	var out []byte
	err := h.onMounted(ctx, dev, func() error {
		var err error
		if e, err = h.lstat(ctx, p); err != nil {
			return err
		}
		if e.Type != "file" || e.Inode <= 0 {
			return &Error{Command: "extents", Message: p + ": not a regular file"}
		}
		st, err := h.call(ctx, nil, "statvfs", "/")
		if err != nil {
			return err
		}
		e.blockSize = fields(st)["bsize"]
		// One string-list item (single-quoted), which the daemon runs
		// with sh -c: the inode number and the device only.
		cmd := fmt.Sprintf(`'debugfs -R "dump_extents -l <%d>" %s'`, e.Inode, dev)
		out, err = h.call(ctx, nil, "debug", "sh", cmd)
		return err
	})
	if err != nil {
		return Entry{}, nil, err
	}
	bs := e.blockSize
	if bs <= 0 || bs&(bs-1) != 0 {
		return Entry{}, nil, fmt.Errorf("block size %d", bs)
	}
	var exts []Extent
	for _, line := range strings.Split(string(out), "\n") {
		m := extentLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n := make([]int64, 5)
		for i := range n {
			n[i], _ = strconv.ParseInt(m[i+1], 10, 64)
		}
		if n[1]-n[0]+1 != n[4] || n[3]-n[2]+1 != n[4] {
			return Entry{}, nil, fmt.Errorf("extent line %q does not add up", line)
		}
		exts = append(exts, Extent{Logical: n[0] * bs, Physical: n[2] * bs, Length: n[4] * bs, Unwritten: strings.Contains(m[6], "Uninit")})
	}
	sort.Slice(exts, func(i, j int) bool { return exts[i].Logical < exts[j].Logical })
	var end int64
	for _, x := range exts {
		if x.Logical < end || x.Length <= 0 {
			return Entry{}, nil, fmt.Errorf("extents of %s overlap", p)
		}
		end = x.Logical + x.Length
	}
	if e.Size > 0 && len(exts) == 0 && e.Size > 60 {
		return Entry{}, nil, fmt.Errorf("no extents for %s (inline data?)", p)
	}
	return e, exts, nil
}

// DeviceOnDrive says where device dev (/dev/sdX or /dev/sdXN) lies: the
// index of its drive (in Launch's order) and its byte offset there. A
// partition's start is read from the appliance kernel's sysfs (parted's
// part-list costs half a second under TCG) once per handle: the drives are
// read-only.
func (h *Handle) DeviceOnDrive(ctx context.Context, dev string) (int, int64, error) {
	m := sdName.FindStringSubmatch(dev)
	if m == nil {
		return 0, 0, fmt.Errorf("device %q is not a drive or a partition", dev)
	}
	drive := driveIndex(m[1])
	if m[2] == "" {
		return drive, 0, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, 0, ErrClosed
	}
	if start, ok := h.starts[dev]; ok {
		return drive, start, nil
	}
	// One string-list item (single-quoted) that the daemon runs with sh
	// -c; dev matched sdName, so it holds letters and digits only.
	name := strings.TrimPrefix(dev, "/dev/")
	out, err := h.call(ctx, nil, "debug", "sh", "'cat /sys/class/block/"+name+"/start'")
	if err != nil {
		return 0, 0, err
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || sectors < 0 {
		return 0, 0, fmt.Errorf("%s: no such partition (%q)", dev, strings.TrimSpace(string(out)))
	}
	start := sectors * 512 // sysfs counts 512-byte sectors whatever the disk's
	if h.starts == nil {
		h.starts = map[string]int64{}
	}
	h.starts[dev] = start
	return drive, start, nil
}

// Pread reads count bytes at off of file p of dev's file system.
func (h *Handle) Pread(ctx context.Context, dev, p string, count, off int64) ([]byte, error) {
	var b []byte
	err := h.onMounted(ctx, dev, func() error {
		var err error
		b, err = h.call(ctx, nil, "pread", p, strconv.FormatInt(count, 10), strconv.FormatInt(off, 10))
		return err
	})
	return b, err
}
