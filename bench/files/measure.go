package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

// bench holds the knib server, the libvirt connection and the temporary
// directory.
type bench struct {
	opts    options
	tmp     string
	srv     *knibproc.Server
	l       *libvirt.Libvirt
	storage string // the knib server's backup storage
}

// vdbSpec is the second disk: GPT, one ext4 partition with the 1 GiB file
// and a few small files.
func vdbSpec() testbed.DiskSpec {
	t0 := time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	files := []testbed.FileSpec{
		{Path: "/big", Type: testbed.TypeDir, Mode: 0o755, MTime: t0.Add(time.Hour)},
		{Path: bigFile, Type: testbed.TypeFile, Mode: 0o640, UID: 1000, GID: 1000, MTime: t0.Add(time.Hour), Size: bigSize},
		{Path: "/small", Type: testbed.TypeDir, Mode: 0o755, MTime: t0.Add(2 * time.Hour)},
		{Path: "/small/a.txt", Type: testbed.TypeFile, Mode: 0o644, MTime: t0, Data: []byte("a small file\n")},
		{Path: "/small/b.conf", Type: testbed.TypeFile, Mode: 0o600, UID: 1000, GID: 1000, MTime: t0, Data: []byte("key = value\n")},
		{Path: "/small/c.bin", Type: testbed.TypeFile, Mode: 0o644, MTime: t0, Size: 64 << 10},
		{Path: "/small/link", Type: testbed.TypeSymlink, MTime: t0, Target: "a.txt"},
		{Path: "/readme.txt", Type: testbed.TypeFile, Mode: 0o644, MTime: t0, Data: []byte("knib bench/files\n")},
	}
	return testbed.DiskSpec{Table: "gpt", Volumes: []testbed.VolumeSpec{{FSType: "ext4", Label: "data", SizeMiB: volumeMiB, Files: files}}}
}

// measure runs every step; rep holds what was measured when it fails.
func (b *bench) measure(ctx context.Context, rep *Report) error {
	defer rep.summarize()
	// vda: the test guest's small ext4 data disk; vdb is replaced below.
	d, err := testbed.CreateDomain(ctx, b.l, testbed.DomainOptions{
		Name: vmName, DiskSizes: []int64{testbed.DefaultDiskSize, 64 << 20},
	})
	if err != nil {
		return err
	}
	start := clock.Real{}.Now()
	if err := testbed.BuildDisk(ctx, d.Disks[1], vdbSpec()); err != nil {
		return fmt.Errorf("building vdb: %w", err)
	}
	rep.BuildSeconds = clock.Since(clock.Real{}, start).Seconds()
	logf("%s: built vdb (%s) in %.1f s", vmName, rep.Disk, rep.BuildSeconds)

	// 1. The baseline: a plain boot of the same VM.
	for i := 0; i < b.opts.reps; i++ {
		secs, err := b.plainBoot(ctx, d)
		if err != nil {
			return err
		}
		rep.Boots = append(rep.Boots, secs)
		rep.summarize()
	}

	// The backup, VM running.
	bk, err := b.fullBackup(ctx, d, rep)
	if err != nil {
		return err
	}
	src, err := bk.DiskFile(b.storage, "vdb")
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("backup %s: vdb's file: %w", bk.ID, err)
	}
	rep.BackupFile = src
	// The guest is not needed any more: it would only take CPU from the
	// helper (TCG).
	if err := d.Destroy(ctx); err != nil {
		return err
	}

	// 2. The first listing boots the helper.
	knibproc.Settle(ctx, b.opts.cold)
	var l fileListing
	start = clock.Real{}.Now()
	if err := b.srv.CLIJSON(ctx, &l, "backup", "files", bk.ID, "/", "--disk", volume); err != nil {
		return err
	}
	rep.FirstListing = clock.Since(clock.Real{}, start).Seconds()
	rep.FirstEntries = len(l.Entries)
	if err := hasEntry(l, "big", "dir", -1); err != nil {
		return err
	}
	rep.summarize()
	logf("first listing of %s:/ (helper boot) %.2f s, %d entries; plain boot %.2f s", volume, rep.FirstListing, rep.FirstEntries, rep.Boot)

	// 3. The calls that follow, the helper running.
	for _, c := range []struct {
		key   string
		what  string
		args  []string
		check func(fileListing) error
	}{
		{"/", "`files B / --disk " + volume + "`", []string{"backup", "files", bk.ID, "/", "--disk", volume},
			func(l fileListing) error { return hasEntry(l, "big", "dir", -1) }},
		{"/big", "`files B /big --disk " + volume + "`", []string{"backup", "files", bk.ID, "/big", "--disk", volume},
			func(l fileListing) error { return hasEntry(l, "file", "file", bigSize) }},
		{"volumes", "`files B` (the volumes)", []string{"backup", "files", bk.ID},
			func(l fileListing) error {
				for _, v := range l.Volumes {
					if v.Name == volume && v.FSType == "ext4" && v.Browsable {
						return nil
					}
				}
				return fmt.Errorf("the volumes of backup %s have no browsable ext4 %s: %+v", bk.ID, volume, l.Volumes)
			}},
	} {
		ls := &Listing{Key: c.key, What: c.what, Args: c.args}
		rep.Listings = append(rep.Listings, ls)
		for i := 0; i < b.opts.listings; i++ {
			knibproc.Settle(ctx, false)
			var l fileListing
			start := clock.Real{}.Now()
			if err := b.srv.CLIJSON(ctx, &l, c.args...); err != nil {
				return err
			}
			secs := clock.Since(clock.Real{}, start).Seconds()
			if err := c.check(l); err != nil {
				return err
			}
			ls.Runs = append(ls.Runs, secs)
			ls.Entries = max(len(l.Entries), len(l.Volumes))
		}
		ls.Median = report.Median(ls.Runs)
		for _, s := range ls.Runs {
			ls.Max = max(ls.Max, s)
		}
		logf("%s with the helper running: median %.3f s, slowest %.3f s", c.what, ls.Median, ls.Max)
	}

	// 4. The 1 GiB file: extract against convert, taking turns at going
	// first. An untimed read of the backup file comes first: the first
	// read of freshly written blocks was up to 1.6 times slower on these
	// virtual disks (below the page cache), and it would fall on whichever
	// step goes first in round one.
	if err := readThrough(src); err != nil {
		return err
	}
	rep.Verified = true
	for i := 0; i < b.opts.reps; i++ {
		steps := []func() error{
			func() error {
				t, err := b.extract(ctx, bk.ID)
				if err != nil {
					rep.Verified = false
					return err
				}
				rep.Extracts = append(rep.Extracts, t)
				return nil
			},
			func() error {
				t, err := b.convert(ctx, src)
				if err != nil {
					return err
				}
				rep.Converts = append(rep.Converts, t)
				return nil
			},
		}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		rep.summarize()
	}
	return nil
}

// hasEntry checks that a directory listing holds name of type typ (and
// size, unless -1).
func hasEntry(l fileListing, name, typ string, size int64) error {
	for _, e := range l.Entries {
		if e.Name == name {
			if e.Type != typ || (size >= 0 && e.Size != size) {
				return fmt.Errorf("listing of %s:%s: %s is a %s of %d bytes, want a %s of %d", l.Volume, l.Path, name, e.Type, e.Size, typ, size)
			}
			return nil
		}
	}
	return fmt.Errorf("listing of %s:%s has no %s (%d entries)", l.Volume, l.Path, name, len(l.Entries))
}

// plainBoot is the helper's floor: the stopped test VM started by libvirt
// (DomainCreate), until its guest agent answers guest-ping.
func (b *bench) plainBoot(ctx context.Context, d *testbed.Domain) (float64, error) {
	if err := d.Destroy(ctx); err != nil {
		return 0, err
	}
	knibproc.Settle(ctx, b.opts.cold)
	actx, cancel := context.WithTimeout(ctx, testbed.BootTimeout)
	defer cancel()
	start := clock.Real{}.Now()
	if err := d.L.DomainCreate(d.Dom); err != nil {
		return 0, fmt.Errorf("start %s: %w", d.Name, err)
	}
	if err := d.WaitAgent(actx); err != nil {
		return 0, fmt.Errorf("%w\nconsole:\n%s", err, lastLines(d.Console(), 10))
	}
	secs := clock.Since(clock.Real{}, start).Seconds()
	logf("%s: plain boot, guest agent after %.2f s", d.Name, secs)
	return secs, nil
}

// fullBackup creates the offering (--allow-extract-file), assigns the VM
// and takes a full backup; it returns the backup with its files.
func (b *bench) fullBackup(ctx context.Context, d *testbed.Domain, rep *Report) (knibproc.Backup, error) {
	var bk knibproc.Backup
	var off struct {
		ID string `json:"id"`
	}
	if err := b.srv.CLIJSON(ctx, &off, "offering", "create", "--name", "bench-files", "--allow-extract-file"); err != nil {
		return bk, err
	}
	if _, err := b.srv.CLI(ctx, "host", "refresh"); err != nil {
		return bk, err
	}
	if _, err := b.srv.CLI(ctx, "vm", "assign", d.Name, "--offering", off.ID); err != nil {
		return bk, err
	}
	knibproc.Settle(ctx, false)
	start := clock.Real{}.Now()
	if err := b.srv.CLIJSON(ctx, &bk, "backup", "create", d.Name); err != nil {
		return bk, err
	}
	rep.BackupSeconds = clock.Since(clock.Real{}, start).Seconds()
	if bk.Status != "BackedUp" || bk.Type != "full" {
		return bk, fmt.Errorf("backup %s of %s is %s %s: %s", bk.ID, d.Name, bk.Type, bk.Status, bk.Error)
	}
	if err := b.srv.CLIJSON(ctx, &bk, "backup", "show", bk.ID); err != nil {
		return bk, err
	}
	rep.BackupID, rep.BackupBytes = bk.ID, bk.Size
	logf("%s: knib full backup %s (%s stored) in %.1f s", d.Name, bk.ID, report.MiB(bk.Size), rep.BackupSeconds)
	return bk, nil
}

// extract times `knib backup extract B /big/file --disk vdb1 -o OUT.tar`
// (the CLI fsyncs the file) and a `sync` of it, then checks the file's
// bytes in the tar (untimed).
func (b *bench) extract(ctx context.Context, id string) (Transfer, error) {
	out := filepath.Join(b.tmp, "extract.tar")
	defer os.Remove(out)
	t, fi, err := b.timedCopy(ctx, out, func() error {
		_, err := b.srv.CLI(ctx, "backup", "extract", id, bigFile, "--disk", volume, "-o", out)
		return err
	})
	if err != nil {
		return t, err
	}
	t.Bytes = fi.Size()
	t.MBps = float64(t.Bytes) / 1e6 / (t.Seconds + t.SyncSeconds)
	logf("knib backup extract %s: %.2f s (+ sync %.2f s), %d bytes of tar, %.1f MB/s", bigFile, t.Seconds, t.SyncSeconds, t.Bytes, t.MBps)
	start := clock.Real{}.Now()
	if err := verifyTar(out); err != nil {
		return t, err
	}
	logf("the tar's %s matches what was written (checked in %.1f s)", bigFile, clock.Since(clock.Real{}, start).Seconds())
	return t, nil
}

// convert is the baseline: `qemu-img convert -f qcow2 -O raw` of the
// backup's vdb file into the same file system, then a `sync` of the copy.
func (b *bench) convert(ctx context.Context, src string) (Transfer, error) {
	out := filepath.Join(b.tmp, "convert.raw")
	defer os.Remove(out)
	t, fi, err := b.timedCopy(ctx, out, func() error {
		return runQuiet(ctx, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", src, out)
	})
	if err != nil {
		return t, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return t, fmt.Errorf("%s: no block count", out)
	}
	t.Bytes = st.Blocks * 512
	t.MBps = float64(t.Bytes) / 1e6 / (t.Seconds + t.SyncSeconds)
	logf("qemu-img convert -O raw: %.2f s (+ sync %.2f s), %d bytes allocated of %d, %.1f MB/s", t.Seconds, t.SyncSeconds, t.Bytes, fi.Size(), t.MBps)
	return t, nil
}

// timedCopy times run, which writes out, and a `sync` of out (the page
// cache dropped first unless -cold=false), and stats the result.
func (b *bench) timedCopy(ctx context.Context, out string, run func() error) (Transfer, os.FileInfo, error) {
	var t Transfer
	os.Remove(out)
	knibproc.Settle(ctx, b.opts.cold)
	start := clock.Real{}.Now()
	if err := run(); err != nil {
		return t, nil, err
	}
	t.Seconds = clock.Since(clock.Real{}, start).Seconds()
	start = clock.Real{}.Now()
	if err := runQuiet(ctx, "sync", out); err != nil {
		return t, nil, err
	}
	t.SyncSeconds = clock.Since(clock.Real{}, start).Seconds()
	fi, err := os.Stat(out)
	return t, fi, err
}

// readThrough reads the file at path once, untimed.
func readThrough(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	start := clock.Real{}.Now()
	n, err := io.CopyBuffer(io.Discard, f, make([]byte, 8<<20))
	if err != nil {
		return fmt.Errorf("warm-up read of %s: %w", path, err)
	}
	logf("warm-up read of the backup's vdb file (untimed): %s in %.2f s", report.MiB(n), clock.Since(clock.Real{}, start).Seconds())
	return nil
}

// verifyTar checks that the tar at path holds big/file with exactly
// testbed.PatternReader's bytes.
func verifyTar(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	want := strings.TrimPrefix(bigFile, "/")
	var names []string
	for {
		hd, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("extract: the tar has no %s (members %v)", want, names)
		}
		if err != nil {
			return fmt.Errorf("extract: reading the tar: %w", err)
		}
		names = append(names, hd.Name)
		if strings.TrimPrefix(hd.Name, "./") != want {
			continue
		}
		if hd.Typeflag != tar.TypeReg || hd.Size != bigSize {
			return fmt.Errorf("extract: %s is type %c of %d bytes, want a file of %d", hd.Name, hd.Typeflag, hd.Size, bigSize)
		}
		return sameBytes(tr, testbed.PatternReader(bigFile, bigSize))
	}
}

// sameBytes compares two streams and names the first offset that differs.
func sameBytes(got, want io.Reader) error {
	const chunk = 1 << 20
	a, w := make([]byte, chunk), make([]byte, chunk)
	var off int64
	for {
		n, errA := io.ReadFull(got, a)
		m, errW := io.ReadFull(want, w)
		if n != m {
			return fmt.Errorf("extract: %s has a different length (%d bytes at offset %d, want %d)", bigFile, n, off, m)
		}
		if !bytes.Equal(a[:n], w[:m]) {
			i := 0
			for i < n && a[i] == w[i] {
				i++
			}
			return fmt.Errorf("extract: %s differs from what was written at offset %d", bigFile, off+int64(i))
		}
		off += int64(n)
		if errA != nil || errW != nil {
			if (errA == io.EOF || errA == io.ErrUnexpectedEOF) && (errW == io.EOF || errW == io.ErrUnexpectedEOF) {
				return nil
			}
			return fmt.Errorf("extract: comparing %s at offset %d: %v / %v", bigFile, off, errA, errW)
		}
	}
}

func runQuiet(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
