package fileperm

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// The modes knib gives what it creates (see the package vocabulary).
const (
	// DirMode: root rwx, the QEMU group r-x (QEMU reaches files through
	// it), others nothing.
	DirMode os.FileMode = 0o750
	// FileMode: root rw, the QEMU group r (QEMU reads backup files and
	// boot files), others nothing.
	FileMode os.FileMode = 0o640
	// DiskMode: root and the QEMU group rw (QEMU writes it), others
	// nothing.
	DiskMode os.FileMode = 0o660
)

// QEMUConf is libvirt's QEMU driver configuration file.
const QEMUConf = "/etc/libvirt/qemu.conf"

// DefaultGroups are the groups libvirt runs QEMU with when qemu.conf sets
// none, by distribution: the first that exists on the host is taken.
var DefaultGroups = []string{"libvirt-qemu", "qemu", "kvm"}

// Perms gives what knib creates on a host its modes and the QEMU group.
type Perms struct {
	// GID is the QEMU group's id; -1 when it is unknown: files keep the
	// group they were created with, and Check reports nothing about
	// groups.
	GID int
	// Group is the QEMU group's name (its number when it has none).
	Group string
}

// Unknown is the Perms of a host whose QEMU group could not be found.
var Unknown = Perms{GID: -1}

// Detect finds the QEMU group from the qemu.conf at conf (a missing file is
// libvirt's defaults): its `group` setting, a name or "+gid", or else the
// first of DefaultGroups that exists. On error it returns Unknown.
func Detect(conf string) (Perms, error) {
	name, err := confGroup(conf)
	if err != nil {
		return Unknown, err
	}
	if name != "" {
		p, err := lookup(name)
		if err != nil {
			return Unknown, fmt.Errorf("qemu group %q from %s: %w", name, conf, err)
		}
		return p, nil
	}
	for _, g := range DefaultGroups {
		if p, err := lookup(g); err == nil {
			return p, nil
		}
	}
	return Unknown, fmt.Errorf("no qemu group: %s sets none and none of %s exists", conf, strings.Join(DefaultGroups, ", "))
}

// Host is Detect of QEMUConf, run once per process.
var Host = sync.OnceValues(func() (Perms, error) { return Detect(QEMUConf) })

// lookup resolves a group name, or "+gid" as libvirt writes a number.
func lookup(name string) (Perms, error) {
	if n, ok := strings.CutPrefix(name, "+"); ok {
		gid, err := strconv.Atoi(n)
		if err != nil || gid < 0 {
			return Unknown, fmt.Errorf("invalid group id %q", name)
		}
		if g, err := user.LookupGroupId(n); err == nil {
			return Perms{GID: gid, Group: g.Name}, nil
		}
		return Perms{GID: gid, Group: n}, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return Unknown, err
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return Unknown, fmt.Errorf("group %s: invalid id %q", name, g.Gid)
	}
	return Perms{GID: gid, Group: g.Name}, nil
}

// confGroup returns the value of the `group = "..."` line of a libvirt
// configuration file, "" when it has none or the file does not exist.
func confGroup(conf string) (string, error) {
	f, err := os.Open(conf)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("qemu configuration: %w", err)
	}
	defer f.Close()
	group := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), "=")
		if !ok || strings.TrimSpace(key) != "group" {
			continue
		}
		val = strings.TrimSpace(val)
		if !strings.HasPrefix(val, `"`) {
			return "", fmt.Errorf("%s: group: want a quoted string, got %q", conf, val)
		}
		end := strings.Index(val[1:], `"`)
		if end < 0 {
			return "", fmt.Errorf("%s: group: unterminated string %q", conf, val)
		}
		group = val[1 : 1+end] // the last setting wins, as in libvirt
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("qemu configuration %s: %w", conf, err)
	}
	return group, nil
}

// MkdirAll makes dir and its missing parents; each directory it creates
// gets DirMode (whatever the umask) and the QEMU group. Existing
// directories are left as they are.
func (p Perms) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err == nil {
			if !st.IsDir() {
				return fmt.Errorf("mkdir %s: %s is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("mkdir %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, DirMode); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue // made by someone else meanwhile: theirs to set
			}
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
		if err := p.set(d, DirMode); err != nil {
			return err
		}
	}
	return nil
}

// File gives a file knib wrote FileMode and the QEMU group.
func (p Perms) File(path string) error { return p.set(path, FileMode) }

// Disk gives a file QEMU writes DiskMode and the QEMU group.
func (p Perms) Disk(path string) error { return p.set(path, DiskMode) }

func (p Perms) set(path string, mode os.FileMode) error {
	if p.GID >= 0 {
		if err := os.Lchown(path, -1, p.GID); err != nil {
			if !errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("set the group of %s to %s: %w", path, p.Group, err)
			}
			// A file system that refuses the group (NFS with root_squash):
			// QEMU reads the file as any other user, so others keep read
			// (and search) as before knib set modes; knib agent's host
			// check lists such paths.
			mode |= 0o004
			if mode&0o100 != 0 || mode.IsDir() || mode&0o010 != 0 {
				mode |= 0o001
			}
		}
	}
	if err := os.Chmod(path, mode&os.ModePerm); err != nil {
		return fmt.Errorf("set the mode of %s: %w", path, err)
	}
	return nil
}

// want is the permission bits (st_mode & 07777) a path of the tree should
// have: no bits for others; for the QEMU group read on files and read and
// search on directories. Other bits are kept.
func want(perm uint32, typ fs.FileMode) uint32 {
	perm &^= 0o007
	switch {
	case typ.IsDir():
		perm |= 0o050
	case typ.IsRegular():
		perm |= 0o040
	}
	return perm
}

// entry is one path of a walked tree with what is wrong with it.
type entry struct {
	path     string
	typ      fs.FileMode
	perm     uint32
	gid      int
	wantPerm uint32
	groupBad bool
}

// walk calls fn for every path under root (root included; a symbolic link
// as root is followed, others are skipped) that is not as it should be.
// Paths that vanish during the walk are skipped.
func (p Perms) walk(root string, fn func(e entry) error) error {
	if r, err := filepath.EvalSymlinks(root); err == nil {
		root = r
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path != root {
				return nil
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no file status", path)
		}
		e := entry{path: path, typ: info.Mode().Type(), perm: st.Mode & 0o7777, gid: int(st.Gid)}
		e.wantPerm = want(e.perm, e.typ)
		e.groupBad = p.GID >= 0 && e.gid != p.GID
		if e.wantPerm == e.perm && !e.groupBad {
			return nil
		}
		return fn(e)
	})
}

// maxErrors bounds the errors Tighten collects; it goes on past them.
const maxErrors = 5

// Tighten gives every path of the tree under root (root included) what
// Check asks for: other users' bits off, the QEMU group's read (and search)
// bits on, the QEMU group. It returns how many paths it changed; it goes on
// after a path it cannot change and returns the errors with the count.
func (p Perms) Tighten(root string) (int, error) {
	changed := 0
	var errs []error
	err := p.walk(root, func(e entry) error {
		var err error
		if e.wantPerm != e.perm {
			err = syscall.Chmod(e.path, e.wantPerm)
			if err != nil {
				err = fmt.Errorf("set the mode of %s: %w", e.path, err)
			}
		}
		if err == nil && e.groupBad {
			if err = os.Lchown(e.path, -1, p.GID); err != nil {
				err = fmt.Errorf("set the group of %s to %s: %w", e.path, p.Group, err)
			}
		}
		switch {
		case err == nil:
			changed++
		case errors.Is(err, fs.ErrNotExist):
		case len(errs) < maxErrors:
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("tighten %s: %w", root, err))
	}
	return changed, errors.Join(errs...)
}

// MaxProblems bounds the problems Check lists; one more line counts the
// rest.
const MaxProblems = 20

// Check lists the problems of the tree under root (root included), one
// line each: the path and what is wrong. It changes nothing.
func (p Perms) Check(root string) ([]string, error) {
	var out []string
	more := 0
	err := p.walk(root, func(e entry) error {
		if len(out) >= MaxProblems {
			more++
			return nil
		}
		out = append(out, p.problem(e))
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("check %s: %w", root, err)
	}
	if more > 0 {
		out = append(out, fmt.Sprintf("%d more paths under %s with the same kinds of problems", more, root))
	}
	return out, nil
}

// problem says what is wrong with one path.
func (p Perms) problem(e entry) string {
	var what []string
	if e.perm&0o007 != 0 {
		what = append(what, "other users have access")
	}
	if lacks := e.wantPerm &^ e.perm; lacks != 0 {
		what = append(what, fmt.Sprintf("the group lacks %s", map[bool]string{true: "read and search", false: "read"}[e.typ.IsDir()]))
	}
	if e.groupBad {
		name := strconv.Itoa(e.gid)
		if g, err := user.LookupGroupId(name); err == nil {
			name = g.Name
		}
		what = append(what, fmt.Sprintf("group %s, not the QEMU group %s", name, p.Group))
	}
	return fmt.Sprintf("%s: mode %04o: %s", e.path, e.perm, strings.Join(what, "; "))
}
