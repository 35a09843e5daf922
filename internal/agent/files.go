package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/guestfs"
)

// fileHelpers runs the isolated helpers (libguestfs appliances) that read
// backups' file systems: one per backup, reused while calls come, ended
// after the idle timeout, at most MaxHelpers per host. Each helper's pid is
// noted in dir, so that the helpers of a dead agent process are ended when
// the next one serves (EndOrphanedHelpers; a helper never outlives its agent
// for long).
type fileHelpers struct {
	clk clock.Clock
	dir string // pid notes: <dir>/<pid>

	mu      sync.Mutex
	helpers map[string]*fileHelper // by backup id
	closed  bool
	stop    chan struct{}
}

type fileHelper struct {
	key      string // the disk files it reads
	ready    chan struct{}
	h        *guestfs.Handle
	err      error
	vols     []agentapi.FileVolume
	devs     map[string]string // volume name → device in the helper
	users    int
	lastUsed time.Time
	idle     time.Duration
}

func newFileHelpers(clk clock.Clock, name, storage string) *fileHelpers {
	sum := sha256.Sum256([]byte(name + "\x00" + storage))
	f := &fileHelpers{clk: clk, dir: filepath.Join(os.TempDir(), "knib-file-helpers", hex.EncodeToString(sum[:8])),
		helpers: map[string]*fileHelper{}, stop: make(chan struct{})}
	go f.expire()
	return f
}

// EndOrphanedHelpers ends the file-restore helpers that an earlier process
// of this agent (same host name and storage) left when it died. Call it
// once, when the agent starts serving, before any file request.
func (a *Local) EndOrphanedHelpers() { a.files.reap() }

// reap ends helpers noted by an earlier agent process of this host.
func (f *fileHelpers) reap() {
	notes, _ := os.ReadDir(f.dir)
	for _, n := range notes {
		if pid, err := strconv.Atoi(n.Name()); err == nil {
			guestfs.Kill(pid)
		}
		os.Remove(filepath.Join(f.dir, n.Name()))
	}
}

// expire ends idle helpers.
func (f *fileHelpers) expire() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		f.mu.Lock()
		var ended []*fileHelper
		for id, fh := range f.helpers {
			if fh.h != nil && fh.users == 0 && clock.Since(f.clk, fh.lastUsed) > fh.idle {
				delete(f.helpers, id)
				ended = append(ended, fh)
			}
		}
		f.mu.Unlock()
		for _, fh := range ended {
			f.end(fh)
		}
	}
}

func (f *fileHelpers) end(fh *fileHelper) {
	if fh.h == nil {
		return
	}
	pid := fh.h.PID()
	fh.h.Close()
	os.Remove(filepath.Join(f.dir, strconv.Itoa(pid)))
}

// closeAll ends every helper (the agent stops).
func (f *fileHelpers) closeAll() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	close(f.stop)
	all := f.helpers
	f.helpers = map[string]*fileHelper{}
	f.mu.Unlock()
	for _, fh := range all {
		<-fh.ready
		f.end(fh)
	}
}

// close ends the helper of one backup.
func (f *fileHelpers) close(backupID string) {
	f.mu.Lock()
	fh := f.helpers[backupID]
	delete(f.helpers, backupID)
	f.mu.Unlock()
	if fh != nil {
		<-fh.ready
		f.end(fh)
	}
}

var errNoHelper = fmt.Errorf("every file-restore helper of this host is busy: %w", domain.ErrUnavailable)

// acquire returns the backup's helper, started if needed; release it with
// the returned function.
func (f *fileHelpers) acquire(ctx context.Context, src agentapi.FileSource, drives []guestfs.Drive) (*fileHelper, func(), error) {
	key := fmt.Sprint(drives)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil, nil, fmt.Errorf("the agent is stopping: %w", domain.ErrUnavailable)
	}
	fh := f.helpers[src.BackupID]
	if fh != nil && fh.key != key {
		// The backup's files changed (compressed since): a new helper.
		delete(f.helpers, src.BackupID)
		go func(old *fileHelper) { <-old.ready; f.end(old) }(fh)
		fh = nil
	}
	var evict *fileHelper
	if fh == nil {
		if max := max(src.MaxHelpers, 1); len(f.helpers) >= max {
			var oldestID string
			for id, o := range f.helpers {
				if o.h != nil && o.users == 0 && (evict == nil || o.lastUsed.Before(evict.lastUsed)) {
					evict, oldestID = o, id
				}
			}
			if evict == nil {
				f.mu.Unlock()
				return nil, nil, errNoHelper
			}
			delete(f.helpers, oldestID)
		}
		fh = &fileHelper{key: key, ready: make(chan struct{}), idle: src.IdleTimeout}
		f.helpers[src.BackupID] = fh
		go f.launch(fh, drives, src)
	}
	fh.users++
	fh.idle = src.IdleTimeout
	f.mu.Unlock()
	if evict != nil {
		f.end(evict)
	}
	release := func() {
		f.mu.Lock()
		fh.users--
		fh.lastUsed = f.clk.Now()
		f.mu.Unlock()
	}
	select {
	case <-fh.ready:
	case <-ctx.Done():
		release()
		return nil, nil, ctx.Err()
	}
	if fh.err != nil {
		release()
		f.mu.Lock()
		if f.helpers[src.BackupID] == fh {
			delete(f.helpers, src.BackupID)
		}
		f.mu.Unlock()
		return nil, nil, fh.err
	}
	return fh, release, nil
}

// launch boots a helper (seconds) and reads its volumes.
func (f *fileHelpers) launch(fh *fileHelper, drives []guestfs.Drive, src agentapi.FileSource) {
	defer close(fh.ready)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env, err := guestfs.LoadEnv(guestfs.DefaultEnvFile)
	if err != nil {
		fh.err = fmt.Errorf("file-level restore needs libguestfs: %v: %w", err, domain.ErrUnavailable)
		return
	}
	h, err := guestfs.Launch(ctx, guestfs.Config{Env: env}, drives)
	if err != nil {
		fh.err = fmt.Errorf("start the file-restore helper: %w", err)
		return
	}
	if err := os.MkdirAll(f.dir, 0o700); err == nil {
		os.WriteFile(filepath.Join(f.dir, strconv.Itoa(h.PID())), []byte("guestfish\n"), 0o600)
	}
	vols, err := h.Volumes(ctx)
	if err != nil {
		f.end(&fileHelper{h: h})
		fh.err = fmt.Errorf("read the backup's volumes: %w", err)
		return
	}
	named, devs := nameVolumes(vols, src.Files)
	f.mu.Lock()
	fh.h, fh.vols, fh.devs = h, named, devs
	fh.lastUsed = f.clk.Now()
	f.mu.Unlock()
}

// gone forgets backupID's helper fh when err says its process is gone (a
// crashed appliance): the next call starts a new one.
func (f *fileHelpers) gone(backupID string, fh *fileHelper, err error) {
	if !errors.Is(err, guestfs.ErrClosed) {
		return
	}
	f.mu.Lock()
	if f.helpers[backupID] == fh {
		delete(f.helpers, backupID)
	}
	f.mu.Unlock()
	go f.end(fh)
}

// nameVolumes names the helper's devices after the backup's disks.
func nameVolumes(vols []guestfs.Volume, files []agentapi.RestoreFile) ([]agentapi.FileVolume, map[string]string) {
	var out []agentapi.FileVolume
	devs := map[string]string{}
	for _, v := range vols {
		fv := agentapi.FileVolume{FSType: v.Type, Label: v.Label, Size: v.Size, Total: v.Total, Used: v.Used,
			Partition: v.Partition, Table: v.Table, Browsable: v.Mountable()}
		switch {
		case v.LV != "":
			fv.Name = v.LV
		case v.Drive >= 0 && v.Drive < len(files):
			fv.Disk = files[v.Drive].Disk
			fv.Name = fv.Disk
			if v.Partition > 0 {
				fv.Name += strconv.Itoa(v.Partition)
			}
		default:
			continue
		}
		devs[fv.Name] = v.Device
		out = append(out, fv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, devs
}

// volume picks the volume a request names: a volume name, or a disk with
// exactly one browsable volume, or (none named) the only browsable volume.
func (fh *fileHelper) volume(name string) (agentapi.FileVolume, string, error) {
	var cands []agentapi.FileVolume
	for _, v := range fh.vols {
		if !v.Browsable {
			continue
		}
		if name == "" || v.Name == name || v.Disk == name {
			cands = append(cands, v)
		}
	}
	for _, v := range cands {
		if v.Name == name {
			return v, fh.devs[v.Name], nil
		}
	}
	if len(cands) == 1 {
		return cands[0], fh.devs[cands[0].Name], nil
	}
	var names []string
	for _, v := range fh.vols {
		if v.Browsable {
			names = append(names, v.Name)
		}
	}
	if len(cands) == 0 {
		if name == "" {
			return agentapi.FileVolume{}, "", fmt.Errorf("the backup has no file system that can be read: %w", domain.ErrNotFound)
		}
		return agentapi.FileVolume{}, "", &domain.InvalidError{Field: "disk", Reason: fmt.Sprintf("no file system %q in the backup (it has: %s)", name, strings.Join(names, ", "))}
	}
	return agentapi.FileVolume{}, "", &domain.InvalidError{Field: "disk", Reason: fmt.Sprintf("the backup has several file systems: name one with --disk (%s)", strings.Join(names, ", "))}
}

// drivesOf resolves the request's disk files inside its storage.
func drivesOf(src agentapi.FileSource) ([]guestfs.Drive, error) {
	if src.BackupID == "" || len(src.Files) == 0 {
		return nil, errors.New("the request names no backup files")
	}
	var drives []guestfs.Drive
	for _, f := range src.Files {
		p, err := inStorage(src.Storage, f.Path)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("backup file of disk %s: %w", f.Disk, err)
		}
		drives = append(drives, guestfs.Drive{Path: p, Format: "qcow2"})
	}
	return drives, nil
}

// ListFiles implements agentapi.Files.
func (a *Local) ListFiles(ctx context.Context, req agentapi.ListFilesRequest) (agentapi.ListFilesResult, error) {
	drives, err := drivesOf(req.FileSource)
	if err != nil {
		return agentapi.ListFilesResult{}, err
	}
	fh, release, err := a.files.acquire(ctx, req.FileSource, drives)
	if err != nil {
		return agentapi.ListFilesResult{}, err
	}
	defer release()
	if req.Volume == "" && req.Path == "" {
		return agentapi.ListFilesResult{Volumes: fh.vols}, nil
	}
	vol, dev, err := fh.volume(req.Volume)
	if err != nil {
		return agentapi.ListFilesResult{}, err
	}
	p, err := guestfs.CleanPath(cmpOr(req.Path, "/"))
	if err != nil {
		return agentapi.ListFilesResult{}, &domain.InvalidError{Field: "path", Reason: err.Error()}
	}
	es, err := fh.h.List(ctx, dev, p)
	if err != nil {
		a.files.gone(req.BackupID, fh, err)
		return agentapi.ListFilesResult{}, guestPathError(err)
	}
	res := agentapi.ListFilesResult{Volume: vol.Name, Path: p, Entries: make([]agentapi.FileEntry, 0, len(es))}
	for _, e := range es {
		res.Entries = append(res.Entries, entryOf(e))
	}
	return res, nil
}

func entryOf(e guestfs.Entry) agentapi.FileEntry {
	return agentapi.FileEntry{Name: e.Name, Type: e.Type, Size: e.Size, Mode: e.Mode, UID: e.UID, GID: e.GID,
		MTime: e.MTime, Links: e.Links, Target: e.Target}
}

// guestPathError turns the helper's refusal of a path into a not-found.
func guestPathError(err error) error {
	var ge *guestfs.Error
	if errors.As(err, &ge) {
		return fmt.Errorf("%s: %w", ge.Message, domain.ErrNotFound)
	}
	return err
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// CloseFiles implements agentapi.Files.
func (a *Local) CloseFiles(ctx context.Context, backupID string) error {
	a.files.close(backupID)
	return nil
}

// extractPaths cleans the requested paths (sorted, duplicates dropped).
func extractPaths(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, &domain.InvalidError{Field: "paths", Reason: "name at least one path"}
	}
	var out []string
	for _, p := range paths {
		c, err := guestfs.CleanPath(p)
		if err != nil {
			return nil, &domain.InvalidError{Field: "paths", Reason: err.Error()}
		}
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
