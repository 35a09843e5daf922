package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// parseSize reads a size such as 2G, 512M, 4096K or a byte count.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = mib, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = gib, strings.TrimSuffix(t, "G")
	case strings.HasSuffix(t, "T"):
		mult, t = gib<<10, strings.TrimSuffix(t, "T")
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q (want e.g. 2G, 512M)", s)
	}
	return n * mult, nil
}

// extent is one write: length bytes at offset.
type extent struct{ Offset, Length int64 }

// writePlan spreads n bytes over a disk of diskSize bytes in chunks of at
// most chunk bytes: k chunks, one at the start of each of k equal stripes,
// shifted inside the stripe by round so that successive rounds touch other
// clusters. Offsets are multiples of 1 MiB.
func writePlan(n, diskSize, chunk int64, round int) ([]extent, error) {
	if n <= 0 || n > diskSize {
		return nil, fmt.Errorf("cannot write %s into a %s disk", report.HumanSize(n), report.HumanSize(diskSize))
	}
	k := (n + chunk - 1) / chunk
	stride := diskSize / k / mib * mib
	if stride < chunk {
		stride = chunk
	}
	slack := stride - chunk
	shift := int64(0)
	if slack >= mib {
		shift = (int64(round) * 5 * mib) % (slack / mib * mib)
	}
	var out []extent
	left := n
	for i := int64(0); i < k; i++ {
		l := min(chunk, left)
		off := i*stride + shift
		if off+l > diskSize {
			off = diskSize - l
		}
		out = append(out, extent{off, l})
		left -= l
	}
	return out, nil
}

// writeDisk writes the plan with pattern byte p into disk diskIndex of the
// running domain, through QEMU (testbed.Domain.WriteDisk: HMP qemu-io, then
// a flush).
func writeDisk(ctx context.Context, d *testbed.Domain, diskIndex int, p byte, plan []extent) error {
	for _, e := range plan {
		if err := d.WriteDisk(ctx, diskIndex, p, e.Offset, e.Length); err != nil {
			return err
		}
	}
	return nil
}

// floorCopy measures the floor for copying n changed bytes: it writes an
// n-byte file of pattern p in srcDir and fsyncs it (untimed), then times
// `cp SRC DST` into dstDir followed by `sync DST`.
func floorCopy(ctx context.Context, srcDir, dstDir string, n int64, p byte, round int) (float64, error) {
	src := filepath.Join(srcDir, fmt.Sprintf("floor-src.%d", round))
	dst := filepath.Join(dstDir, fmt.Sprintf("floor-dst.%d", round))
	f, err := os.Create(src)
	if err != nil {
		return 0, err
	}
	buf := bytes.Repeat([]byte{p}, int(mib))
	for left := n; left > 0; left -= mib {
		if _, err := f.Write(buf[:min(mib, left)]); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	defer os.Remove(src)
	defer os.Remove(dst)
	start := clock.Real{}.Now()
	if err := runQuiet(ctx, "cp", src, dst); err != nil {
		return 0, err
	}
	if err := runQuiet(ctx, "sync", dst); err != nil {
		return 0, err
	}
	return clock.Since(clock.Real{}, start).Seconds(), nil
}
