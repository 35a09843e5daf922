package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/fileperm"
	"github.com/knib/knib/internal/qemuimg"
)

// CheckStorageRoot refuses a storage root that is not an absolute, clean
// path to an existing directory (symbolic links to one are fine).
func CheckStorageRoot(root string) error {
	if root == "" || !filepath.IsAbs(root) || filepath.Clean(root) != root || root == "/" {
		return fmt.Errorf("backup storage %q must be an absolute, clean path other than /", root)
	}
	st, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup storage %s does not exist on this host", root)
	}
	if err != nil {
		return fmt.Errorf("backup storage %s: %w", root, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("backup storage %s is not a directory", root)
	}
	return nil
}

// inStorage turns a path relative to a storage root (a request's
// agentapi.InStorage) into an absolute one, refusing anything that would
// leave the storage, and a missing root: there is no default storage.
func inStorage(root, rel string) (string, error) {
	if root == "" {
		return "", errors.New("the task names no backup storage")
	}
	// The root itself ("." or "a/..") is not a path inside it: deleting
	// such a "backup directory" would remove the whole storage.
	if rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(rel) || filepath.Clean(rel) == "." {
		return "", fmt.Errorf("storage path %q is not a relative path inside the storage", rel)
	}
	return filepath.Join(root, rel), nil
}

// statStorage measures the task's storage.
func (a *Local) statStorage(ctx context.Context, req agentapi.StorageStatRequest, progress func(float64, string)) (any, error) {
	root := req.Storage
	if err := CheckStorageRoot(root); err != nil {
		return nil, cleanError{err}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(root, &st); err != nil {
		return nil, cleanError{fmt.Errorf("backup storage %s: %w", root, err)}
	}
	return agentapi.StorageStatResult{Path: root, Capacity: int64(st.Blocks) * int64(st.Bsize), Free: int64(st.Bavail) * int64(st.Bsize)}, nil
}

// copyStorage copies backups from req.From into the task's storage, makes
// absolute backing pointers into the source relative, and verifies every
// disk file: its bytes hash to the recorded hash, and its backing chain
// (qemu-img info --backing-chain) resolves entirely inside the target.
func (a *Local) copyStorage(ctx context.Context, req agentapi.StorageCopyRequest, progress func(float64, string)) (any, error) {
	to := req.Storage
	if err := CheckStorageRoot(to); err != nil {
		return nil, cleanError{err}
	}
	if err := CheckStorageRoot(req.From); err != nil {
		return nil, cleanError{fmt.Errorf("source: %w", err)}
	}
	if req.From == to {
		return nil, cleanError{errors.New("source and target storage are the same directory")}
	}
	// Check every path before copying anything.
	var total int64
	for _, b := range req.Backups {
		if !strings.HasPrefix(b.Dir, "backups"+string(filepath.Separator)) {
			return nil, cleanError{fmt.Errorf("refusing to copy %q: not a backup directory", b.Dir)}
		}
		src, err := inStorage(req.From, b.Dir)
		if err != nil {
			return nil, cleanError{err}
		}
		if _, err := inStorage(to, b.Dir); err != nil {
			return nil, cleanError{err}
		}
		for _, f := range b.Files {
			if _, err := inStorage(req.From, f.Path); err != nil {
				return nil, cleanError{err}
			}
			if !strings.HasPrefix(f.Path, b.Dir+string(filepath.Separator)) {
				return nil, cleanError{fmt.Errorf("file %q is not in its backup directory %q", f.Path, b.Dir)}
			}
		}
		err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return err
		})
		if err != nil {
			return nil, cleanError{fmt.Errorf("backup %s on the source storage: %w", b.ID, err)}
		}
	}
	res := agentapi.StorageCopyResult{Rebased: []string{}, Hashes: map[string]map[string]string{}}
	var done int64
	for _, b := range req.Backups {
		src, _ := inStorage(req.From, b.Dir)
		dst, _ := inStorage(to, b.Dir)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			target := filepath.Join(dst, rel)
			switch {
			case d.IsDir():
				return a.perm.MkdirAll(target)
			case !d.Type().IsRegular():
				return fmt.Errorf("%s is not a regular file", p)
			case strings.HasSuffix(p, ".part") || strings.HasSuffix(p, compressedSuffix):
				return nil // interrupted writes: not part of the backup
			}
			progress(90*float64(done)/float64(max(total, 1)), "copying "+filepath.Join(b.Dir, rel))
			n, err := copyPart(ctx, p, target, a.perm)
			done += n
			res.Copied++
			res.Bytes += n
			return err
		})
		if err != nil {
			return res, fmt.Errorf("copy backup %s: %w", b.ID, err)
		}
		syncDir(dst)
		syncDir(filepath.Dir(dst))
	}
	progress(90, "verifying")
	// The copies must hash to the recorded hashes (the integrity check of
	// every read path): a damaged source stops the migration, and the
	// caller removes the copies.
	var expect []agentapi.ChainFile
	for _, b := range req.Backups {
		for _, f := range b.Files {
			expect = append(expect, agentapi.ChainFile{BackupID: b.ID, Disk: f.Disk, Path: f.Path, Hash: f.Hash})
		}
	}
	damaged, err := checkFiles(ctx, to, expect)
	if err != nil {
		return res, err
	}
	if len(damaged) > 0 {
		return res, &DamageError{Damaged: damaged}
	}
	for _, b := range req.Backups {
		for _, f := range b.Files {
			dst, _ := inStorage(to, f.Path)
			rebased, err := a.relativeBacking(ctx, dst, req.From, to)
			if err != nil {
				return res, err
			}
			if rebased {
				h, err := HashFile(dst)
				if err != nil {
					return res, err
				}
				if res.Hashes[b.ID] == nil {
					res.Hashes[b.ID] = map[string]string{}
				}
				res.Hashes[b.ID][f.Disk] = h
				res.Rebased = append(res.Rebased, f.Path)
			}
			chain, err := a.img.Info(ctx, dst, qemuimg.InfoOptions{BackingChain: true, ForceShare: true})
			if err != nil {
				return res, fmt.Errorf("verify %s: %w", f.Path, err)
			}
			for _, l := range chain {
				p := filepath.Clean(l.Filename)
				if !strings.HasPrefix(p, to+string(filepath.Separator)) {
					return res, fmt.Errorf("verify %s: its backing chain reaches %s, outside the target storage", f.Path, l.Filename)
				}
			}
		}
	}
	return res, nil
}

// relativeBacking rewrites an absolute backing pointer of file into the
// source (or target) storage as a path relative to the file's directory in
// the target (qemu-img rebase -u: the header only). Relative pointers are
// kept: they resolve the same in every storage.
func (a *Local) relativeBacking(ctx context.Context, file, from, to string) (bool, error) {
	infos, err := a.img.Info(ctx, file, qemuimg.InfoOptions{ForceShare: true})
	if err != nil {
		return false, err
	}
	bf := infos[0].BackingFilename
	if bf == "" || !filepath.IsAbs(bf) {
		return false, nil
	}
	var target string
	switch {
	case strings.HasPrefix(bf, from+string(filepath.Separator)):
		target = filepath.Join(to, strings.TrimPrefix(bf, from+string(filepath.Separator)))
	case strings.HasPrefix(bf, to+string(filepath.Separator)):
		target = bf
	default:
		return false, fmt.Errorf("%s has a backing file outside the backup storage: %s", file, bf)
	}
	rel, err := filepath.Rel(filepath.Dir(file), target)
	if err != nil {
		return false, err
	}
	format := infos[0].BackingFilenameFormat
	if format == "" {
		format = "qcow2"
	}
	if err := a.img.Rebase(ctx, file, rel, format, true); err != nil {
		return false, err
	}
	return true, nil
}

// copyPart copies src to dst through dst.part (writePart).
func copyPart(ctx context.Context, src, dst string, perm fileperm.Perms) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	var n int64
	err = writePart(dst, perm, func(w io.Writer) error {
		n, err = io.Copy(w, in)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("copy %s: %w", src, err)
	}
	return n, nil
}

// writePart writes a backup file at dst through dst.part: fill writes its
// bytes, then the part gets the backup files' mode and group
// (fileperm.FileMode in the QEMU group), is fsynced and renamed. On any
// error the part is removed and nothing is at dst that was not there.
func writePart(dst string, perm fileperm.Perms, fill func(w io.Writer) error) error {
	part := dst + ".part"
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, fileperm.FileMode)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = perm.File(part)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, dst)
	}
	if err != nil {
		os.Remove(part)
	}
	return err
}
