package agent

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/knib/knib/internal/fileperm"
	"github.com/knib/knib/internal/fsatomic"
)

// Who may read what the agent writes (internal/fileperm): in a backup
// storage directories are 0750 and files 0640, in the QEMU group; the disks
// it gives VMs (restored disks, overlays, deltas, new disks) are 0660 in
// the QEMU group; other users get nothing.

// storageGuard tightens each storage root once per agent process: the
// first task in a storage (or TightenStorage at start) walks it; tasks in
// the same storage meanwhile wait for that walk.
type storageGuard struct {
	mu    sync.Mutex
	roots map[string]func() error
}

// secureStorage tightens the tree of a storage root the first time this
// agent works in it (a storage written by an older knib with 0755/0644
// modes). Its error is the first walk's.
func (a *Local) secureStorage(root string) error {
	if CheckStorageRoot(root) != nil {
		return nil // the task refuses the root itself
	}
	a.secured.mu.Lock()
	if a.secured.roots == nil {
		a.secured.roots = map[string]func() error{}
	}
	walk, ok := a.secured.roots[root]
	if !ok {
		walk = sync.OnceValue(func() error {
			n, err := a.perm.Tighten(root)
			if n > 0 {
				a.log.Info("backup storage tightened: other users have no access, the QEMU group reads", "storage", root, "paths", n, "group", a.perm.Group)
			}
			if err != nil {
				return fmt.Errorf("backup storage %s: %w", root, err)
			}
			return nil
		})
		a.secured.roots[root] = walk
	}
	a.secured.mu.Unlock()
	return walk()
}

// TightenStorage gives the agent's own storage (Config.StoragePath) and
// everything in it the modes and group of internal/fileperm; servers and
// remote agents call it once at start. Other storages are tightened by the
// first task that works in them.
func (a *Local) TightenStorage() error {
	if a.permErr != nil {
		a.log.Warn("the QEMU group is unknown: backup files keep root's group, QEMU may not read them", "err", a.permErr)
	}
	if a.cfg.StoragePath == "" {
		return nil
	}
	return a.secureStorage(a.cfg.StoragePath)
}

// CheckHost is the host check of `knib agent`: the problems of this host,
// one line each (a QEMU group that cannot be found; paths of the agent's
// storage that other users may access, that belong to another group or
// that QEMU cannot read). It changes nothing.
func (a *Local) CheckHost() ([]string, error) {
	probs := []string{}
	if a.permErr != nil {
		probs = append(probs, fmt.Sprintf("the QEMU group is unknown (%v): backup files cannot be given to it", a.permErr))
	}
	if a.cfg.StoragePath == "" {
		return probs, nil
	}
	if err := CheckStorageRoot(a.cfg.StoragePath); err != nil {
		return append(probs, err.Error()), nil
	}
	found, err := a.perm.Check(a.cfg.StoragePath)
	if err != nil {
		return probs, err
	}
	return append(probs, found...), nil
}

// QEMUGroup is the group QEMU reads backups through ("" when unknown).
func (a *Local) QEMUGroup() string { return a.perm.Group }

// writeFileAtomic writes a file of a backup (domain.xml, manifest.json, a
// screenshot) atomically, 0640 in the QEMU group.
func (a *Local) writeFileAtomic(path string, data []byte) error {
	return fsatomic.WriteOwned(path, fileperm.FileMode, a.perm.GID, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// copyFile copies a boot file atomically, with mode in the QEMU group:
// fileperm.FileMode into a backup, fileperm.DiskMode back out of one
// (QEMU writes an NVRAM file).
func (a *Local) copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return fsatomic.WriteOwned(dst, mode, a.perm.GID, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
