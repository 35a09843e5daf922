package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/knib/knib/internal/clock"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
)

// runCmd runs a program (no shell) and returns its combined output.
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// timed runs a program and returns its wall time.
func timed(ctx context.Context, name string, args ...string) (float64, error) {
	start := clock.Real{}.Now()
	_, err := runCmd(ctx, name, args...)
	return clock.Since(clock.Real{}, start).Seconds(), err
}

// settle flushes the host's dirty pages (untimed) and pauses, so that a
// timed step does not pay for the writeback of the step before it.
func settle(ctx context.Context) {
	if _, err := runCmd(ctx, "sync"); err != nil {
		logf("sync: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
}

func fileSize(path string) (int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// diskUsage is `du -sk DIR` in bytes.
func diskUsage(ctx context.Context, dir string) (int64, error) {
	out, err := runCmd(ctx, "du", "-sk", dir)
	if err != nil {
		// du reports unreadable entries but still prints a total.
		if f := strings.Fields(out); len(f) < 2 {
			return 0, err
		}
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return 0, fmt.Errorf("du -sk %s: unexpected output %q", dir, out)
	}
	n, perr := strconv.ParseInt(f[len(f)-2], 10, 64)
	if perr != nil {
		return 0, fmt.Errorf("du -sk %s: unexpected output %q", dir, out)
	}
	return n * kib, nil
}

// countEntries counts the files, directories and links under dir (ext4
// needs an inode for each).
func countEntries(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(string, fs.DirEntry, error) error {
		n++
		return nil
	})
	return n
}

// imageInfo describes the ext4 image made from -src.
type imageInfo struct {
	Source     string  `json:"source"`
	SourceDu   int64   `json:"source_du_bytes"`
	Entries    int64   `json:"source_entries"`
	ImageBytes int64   `json:"image_bytes"` // the file system's size (vdb's virtual size)
	QCOW2Bytes int64   `json:"qcow2_bytes"` // the qcow2 file the VM uses as vdb
	MkfsSecs   float64 `json:"mkfs_seconds"`
}

// makeImage makes an ext4 file system holding a copy of src (mkfs.ext4 -d),
// sized du -s src plus 20% (rounded up to 64 MiB, with one inode per entry
// plus 25%), and converts it to the qcow2 file dst.
func makeImage(ctx context.Context, src, raw, dst string) (imageInfo, error) {
	info := imageInfo{Source: src}
	var err error
	if info.SourceDu, err = diskUsage(ctx, src); err != nil {
		return info, err
	}
	info.Entries = countEntries(src)
	inodes := info.Entries + info.Entries/4 + 1024
	var lastErr error
	// du plus 20%; should the file system's own overhead not fit (very many
	// small files), plus 50%.
	for _, grow := range []int64{120, 150} {
		size := (info.SourceDu*grow/100 + 64*mib - 1) / (64 * mib) * (64 * mib)
		os.Remove(raw)
		f, err := os.Create(raw)
		if err != nil {
			return info, err
		}
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return info, err
		}
		start := clock.Real{}.Now()
		_, lastErr = runCmd(ctx, "mkfs.ext4", "-F", "-q", "-L", "knib-bench", "-N", strconv.FormatInt(inodes, 10), "-d", src, raw)
		info.MkfsSecs = clock.Since(clock.Real{}, start).Seconds()
		if lastErr == nil {
			info.ImageBytes = size
			break
		}
		logf("mkfs.ext4 of %s into %s failed, trying larger: %v", src, humanSize(size), lastErr)
	}
	if lastErr != nil {
		return info, lastErr
	}
	if _, err := runCmd(ctx, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, dst); err != nil {
		return info, err
	}
	os.Remove(raw)
	info.QCOW2Bytes, err = fileSize(dst)
	return info, err
}

// copyFile copies src to dst with cp (untimed setup).
func copyFile(ctx context.Context, src, dst string) error {
	_, err := runCmd(ctx, "cp", "--sparse=always", src, dst)
	return err
}

// qemuImgCompress is `qemu-img convert -c -O qcow2 -o compression_type=zstd
// -m N -W SRC DST`: the command knib's compression job runs, on a copy of
// the same backup file. It returns the convert's time and, separately, the
// time of `sync DST` after it (knib fsyncs its output; qemu-img does not).
func qemuImgCompress(ctx context.Context, src, dst string, coroutines int) (secs, syncSecs float64, err error) {
	secs, err = timed(ctx, "qemu-img", "convert", "-f", "qcow2", "-c", "-O", "qcow2", "-o", "compression_type=zstd",
		"-m", strconv.Itoa(coroutines), "-W", src, dst)
	if err != nil {
		return secs, 0, err
	}
	syncSecs, err = timed(ctx, "sync", dst)
	return secs, syncSecs, err
}

// zstdRaw converts src (qcow2) to a raw image (untimed), then times
// `zstd -1 -T0` of it into dst. It returns the raw image's size and
// removes it.
func zstdRaw(ctx context.Context, src, raw, dst string) (secs float64, rawBytes int64, err error) {
	if _, err := runCmd(ctx, "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", src, raw); err != nil {
		return 0, 0, err
	}
	defer os.Remove(raw)
	if rawBytes, err = fileSize(raw); err != nil {
		return 0, 0, err
	}
	// Like the qcow2 copy qemu-img reads, the raw image was just written:
	// both are read from the page cache.
	settle(ctx)
	secs, err = timed(ctx, "zstd", "-1", "-T0", "-q", "-f", raw, "-o", dst)
	return secs, rawBytes, err
}

var errMissingTool = errors.New("missing tool")

func lookTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (bash scripts/setup.sh; zstd is Debian's zstd package)", errMissingTool, strings.Join(missing, ", "))
	}
	return nil
}

// humanSize prints n rounded to GiB (two decimals) or MiB (one decimal):
// this report's sizes are measured, not exact multiples, so it keeps its
// own variant rather than report.HumanSize (which prints exact multiples
// only and would change the output).
func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/float64(1<<30))
	case n >= mib:
		return fmt.Sprintf("%.1f MiB", float64(n)/float64(mib))
	}
	return fmt.Sprintf("%d B", n)
}
