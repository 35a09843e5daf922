package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/crashpoint"
	"github.com/knib/knib/internal/qemuimg"
)

const compressedSuffix = ".compressed"

func (a *Local) compress(ctx context.Context, req agentapi.CompressRequest, progress func(float64, string)) (any, error) {
	var total int64
	paths := make([]string, len(req.Files))
	for i, f := range req.Files {
		p, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		paths[i], total = p, total+st.Size()
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(req.Storage, &fs); err != nil {
		return nil, err
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	if need := int64(float64(total) * req.MinFreeFactor); free < need {
		return nil, fmt.Errorf("not enough free space on the backup storage to compress: %d bytes free, %d needed (backup size %d x backup.compression.minimum.free.storage %g)",
			free, need, total, req.MinFreeFactor)
	}
	res := agentapi.CompressResult{}
	rateLimit := req.RateLimitMBps
	if rateLimit >= 1 {
		ok, err := a.img.ConvertRateLimit(ctx)
		if err != nil {
			return nil, fmt.Errorf("check qemu-img for a rate limit: %w", err)
		}
		if !ok {
			// The specification fails the job; knib compresses without the
			// limit and says so (the job's message and the log).
			res.RateLimitSkipped = fmt.Sprintf("backup.compression.rate.limit %d MB/s not applied: this qemu-img has no convert -r (QEMU 5.2 or later)", rateLimit)
			a.log.Warn("compression rate limit not applied", "reason", res.RateLimitSkipped)
			rateLimit = 0
		}
	}
	// The files are compressed at the same time (each qemu-img with its
	// own coroutines): a backup's small disks do not wait for its big one.
	progress(0, fmt.Sprintf("compressing %d files", len(req.Files)))
	files, err := allAtOnce(req.Files, func(i int, f agentapi.RestoreFile) (agentapi.CompressedFile, error) {
		return a.compressFile(ctx, req, f, paths[i], rateLimit)
	})
	if err != nil {
		return res, err
	}
	res.Files = files
	return res, nil
}

// allAtOnce runs fn on every item at the same time and returns the results
// in the items' order, or every error joined.
func allAtOnce[T, R any](items []T, fn func(int, T) (R, error)) ([]R, error) {
	out := make([]R, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = fn(i, it)
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// compressFile writes the compressed copy of one backup file (src) to
// src.compressed: qemu-img convert into src.compressed.part, one fsync, one
// rename. A copy left complete by an earlier attempt is kept.
func (a *Local) compressFile(ctx context.Context, req agentapi.CompressRequest, f agentapi.RestoreFile, src string, rateLimit int64) (agentapi.CompressedFile, error) {
	dst := src + compressedSuffix
	infos, err := a.img.Info(ctx, src, qemuimg.InfoOptions{ForceShare: true})
	if err != nil || len(infos) == 0 {
		return agentapi.CompressedFile{}, fmt.Errorf("inspect %s: %w", src, err)
	}
	lib := req.Library
	if lib == "" || infos[0].Compat() == "0.10" {
		lib = "zlib" // qcow2 v2 images know no other compression
	}
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		part := dst + ".part"
		os.Remove(part)
		// -t unsafe: qemu-img does not flush; the fsync below is the one
		// that makes the copy durable.
		opts := qemuimg.ConvertOptions{Src: src, SrcFormat: "qcow2", Dst: part, DstFormat: "qcow2", ForceShare: true,
			Compress: true, CompressionType: lib, Coroutines: req.Coroutines, OutOfOrder: true, DstCache: "unsafe"}
		if rateLimit >= 1 {
			opts.RateLimit = rateLimit << 20
		}
		if bf := infos[0].BackingFilename; bf != "" {
			// Keep the same (relative) backing file: the chain stays as it is.
			opts.BackingFile, opts.BackingFormat = bf, "qcow2"
		}
		a.log.Info("compressing a backup file", "file", src, "library", lib, "coroutines", req.Coroutines, "rate_limit_mbps", req.RateLimitMBps)
		// While qemu-img writes, the written pages are sent to the disk
		// (without waiting), so that the fsync after it has little left.
		stop := startWriteback(part)
		err := a.img.Convert(ctx, opts)
		stop()
		if err == nil {
			err = a.perm.File(part) // qemu-img's umask made it 0644
		}
		if err != nil {
			os.Remove(part)
			return agentapi.CompressedFile{}, err
		}
		crashpoint.Hit("compression.before-rename")
		if err := syncFile(part); err != nil {
			return agentapi.CompressedFile{}, err
		}
		if err := os.Rename(part, dst); err != nil {
			return agentapi.CompressedFile{}, err
		}
	}
	st, err := os.Stat(dst)
	if err != nil {
		return agentapi.CompressedFile{}, err
	}
	orig, err := os.Stat(src)
	if err != nil {
		return agentapi.CompressedFile{}, err
	}
	return agentapi.CompressedFile{Disk: f.Disk, Path: f.Path, Size: st.Size(), UncompressedSize: orig.Size(), Library: lib}, nil
}

// writebackEvery is how often startWriteback starts the writeback of a
// file being written.
const writebackEvery = 100 * time.Millisecond

// startWriteback starts, every writebackEvery until stop is called, the
// writeback of the dirty pages of path (sync_file_range SYNC_FILE_RANGE_WRITE:
// it neither waits for the writes nor makes anything durable; the caller
// still fsyncs). path may not exist yet: it is opened once it does. stop
// returns once the loop has ended.
func startWriteback(path string) (stop func()) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		var fh *os.File
		defer func() {
			if fh != nil {
				fh.Close()
			}
		}()
		for {
			select {
			case <-done:
				return
			case <-time.After(writebackEvery):
			}
			if fh == nil {
				var err error
				if fh, err = os.Open(path); err != nil {
					fh = nil
					continue
				}
			}
			// Best effort: an error here only means the fsync does it all.
			_ = unix.SyncFileRange(int(fh.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

func (a *Local) finalizeCompression(ctx context.Context, req agentapi.FinalizeCompressionRequest, progress func(float64, string)) (any, error) {
	res := agentapi.CompressResult{}
	if req.Cleanup {
		return res, cleanupCompressed(req)
	}
	// The files are finalized at the same time.
	files, err := allAtOnce(req.Files, func(_ int, f agentapi.RestoreFile) (agentapi.CompressedFile, error) {
		return finalizeFile(req.Storage, f)
	})
	if err != nil {
		return nil, err
	}
	res.Files = files
	return res, nil
}

// finalizeFile swaps the compressed copy of one backup file in (if not
// done yet) and hashes the result.
func finalizeFile(storage string, f agentapi.RestoreFile) (agentapi.CompressedFile, error) {
	p, err := inStorage(storage, f.Path)
	if err != nil {
		return agentapi.CompressedFile{}, err
	}
	c := agentapi.CompressedFile{Disk: f.Disk, Path: f.Path}
	syncErr := make(chan error, 1)
	syncErr <- nil
	if _, err := os.Stat(p + compressedSuffix); err == nil {
		orig, err := os.Stat(p)
		if err != nil {
			return c, err
		}
		c.UncompressedSize = orig.Size()
		// The swap is one rename: readers see the old or the new file,
		// both complete and with the same content.
		if err := os.Rename(p+compressedSuffix, p); err != nil {
			return c, err
		}
		// The directory's fsync runs while the file is hashed.
		<-syncErr
		go func() { syncErr <- syncDir(filepath.Dir(p)) }()
	}
	st, err := os.Stat(p)
	if err != nil {
		<-syncErr
		return c, err
	}
	c.Size = st.Size()
	if c.UncompressedSize == 0 {
		c.UncompressedSize = c.Size
	}
	c.Hash, err = HashFile(p)
	if serr := <-syncErr; serr != nil {
		return c, serr
	}
	return c, err
}

// cleanupCompressed removes the compressed copies of a compression that
// failed for good, and the partial ones; the backup files stay as they are.
func cleanupCompressed(req agentapi.FinalizeCompressionRequest) error {
	var errs []error
	for _, f := range req.Files {
		p, err := inStorage(req.Storage, f.Path)
		if err != nil {
			return err
		}
		for _, leftover := range []string{p + compressedSuffix, p + compressedSuffix + ".part"} {
			if err := os.Remove(leftover); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
