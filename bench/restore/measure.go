package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

// bench holds what every size shares: the knib server, its offering, the
// libvirt connection and the temporary directory.
type bench struct {
	opts     options
	tmp      string
	srv      *knibproc.Server
	l        *libvirt.Libvirt
	offering string
	storage  string // the knib server's backup storage
}

// vmName is the test domain of one data size.
func vmName(size int64) string { return "knib-bench-rst-" + strings.ToLower(compact(size)) }

// pattern is the byte written into chunk i: never 0, different from its
// neighbours.
func pattern(i int) byte { return byte(0x11 + (i*7)%0xee) }

// chunks splits size bytes into writes of at most chunk bytes.
func chunks(size, chunk int64) []extent {
	var out []extent
	for off := int64(0); off < size; off += chunk {
		out = append(out, extent{off, min(chunk, size-off)})
	}
	return out
}

type extent struct{ Offset, Length int64 }

// newVM creates the size's VM (vda 32 MiB blank, vdb size unformatted),
// fills vdb with data and leaves the VM running with its guest agent up.
func (b *bench) newVM(ctx context.Context, size int64, row *Row) (*testbed.Domain, error) {
	name := vmName(size)
	hmp := b.opts.fill == "hmp"
	d, err := testbed.CreateDomain(ctx, b.l, testbed.DomainOptions{
		Name: name, DiskSizes: []int64{firstDisk, size}, Start: hmp, NoFormat: true,
	})
	if err != nil {
		return nil, err
	}
	plan := chunks(size, b.opts.chunk)
	start := clock.Real{}.Now()
	if hmp {
		for i, e := range plan {
			if err := d.WriteDisk(ctx, 1, pattern(i), e.Offset, e.Length); err != nil {
				return d, fmt.Errorf("filling vdb: %w", err)
			}
		}
	} else {
		// The VM is stopped: write the same data into the qcow2 file with
		// qemu-io, which allocates clusters exactly as the guest would.
		args := []string{"-f", "qcow2"}
		for i, e := range plan {
			args = append(args, "-c", fmt.Sprintf("write -q -P 0x%02x %d %d", pattern(i), e.Offset, e.Length))
		}
		if err := runQuiet(ctx, "qemu-io", append(args, d.Disks[1])...); err != nil {
			return d, fmt.Errorf("filling vdb: %w", err)
		}
		if err := runQuiet(ctx, "sync", d.Disks[1]); err != nil {
			return d, err
		}
	}
	row.FillSeconds = clock.Since(clock.Real{}, start).Seconds()
	logf("%s: filled vdb with %s (%d writes of %s, %s) in %.1f s", name, report.HumanSize(size), len(plan), report.HumanSize(b.opts.chunk), b.opts.fill, row.FillSeconds)
	if !hmp {
		bctx, cancel := context.WithTimeout(ctx, testbed.BootTimeout)
		defer cancel()
		if err := d.Start(bctx); err != nil {
			return d, err
		}
	}
	return d, nil
}

// fullBackup assigns the VM to the benchmark's offering and takes a full
// backup; it returns the backup with its files.
func (b *bench) fullBackup(ctx context.Context, d *testbed.Domain, row *Row) (knibproc.Backup, error) {
	var bk knibproc.Backup
	if _, err := b.srv.CLI(ctx, "host", "refresh"); err != nil {
		return bk, err
	}
	if _, err := b.srv.CLI(ctx, "vm", "assign", d.Name, "--offering", b.offering); err != nil {
		return bk, err
	}
	settle(ctx, false)
	start := clock.Real{}.Now()
	if err := b.srv.CLIJSON(ctx, &bk, "backup", "create", d.Name); err != nil {
		return bk, err
	}
	row.BackupSeconds = clock.Since(clock.Real{}, start).Seconds()
	if bk.Status != "BackedUp" || bk.Type != "full" {
		return bk, fmt.Errorf("backup %s of %s is %s %s: %s", bk.ID, d.Name, bk.Type, bk.Status, bk.Error)
	}
	if err := b.srv.CLIJSON(ctx, &bk, "backup", "show", bk.ID); err != nil {
		return bk, err
	}
	row.BackupID, row.BackupBytes = bk.ID, bk.Size
	logf("%s: knib full backup %s (%s stored) in %.1f s", d.Name, bk.ID, report.MiB(bk.Size), row.BackupSeconds)
	return bk, nil
}

// convert is the baseline: `qemu-img convert -O qcow2` of the backup file of
// vdb (read through its backing chain; a full backup has none) into a new
// file next to the VM's disks, then, untimed by the ratio but reported, an
// fsync of the copy and a `qemu-img compare`, which knib's restore does too.
func (b *bench) convert(ctx context.Context, d *testbed.Domain, src string, r *Run) error {
	dst := filepath.Join(d.Dir, "baseline-convert.qcow2")
	os.Remove(dst)
	defer os.Remove(dst)
	settle(ctx, b.opts.cold)
	start := clock.Real{}.Now()
	if err := runQuiet(ctx, "qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", src, dst); err != nil {
		return err
	}
	r.ConvertSeconds = clock.Since(clock.Real{}, start).Seconds()
	start = clock.Real{}.Now()
	if err := runQuiet(ctx, "sync", dst); err != nil {
		return err
	}
	r.ConvertSyncSeconds = clock.Since(clock.Real{}, start).Seconds()
	start = clock.Real{}.Now()
	if err := runQuiet(ctx, "qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", src, dst); err != nil {
		return err
	}
	r.ConvertCompareSeconds = clock.Since(clock.Real{}, start).Seconds()
	logf("%s: qemu-img convert %.2f s (+ sync %.2f s + compare %.2f s)", d.Name, r.ConvertSeconds, r.ConvertSyncSeconds, r.ConvertCompareSeconds)
	return nil
}

// restore times `knib backup restore ID` with the VM stopped.
func (b *bench) restore(ctx context.Context, d *testbed.Domain, id string, r *Run) error {
	if err := d.Destroy(ctx); err != nil {
		return err
	}
	settle(ctx, b.opts.cold)
	var res restoreResult
	start := clock.Real{}.Now()
	if err := b.srv.CLIJSON(ctx, &res, "backup", "restore", id); err != nil {
		return err
	}
	r.RestoreSeconds = clock.Since(clock.Real{}, start).Seconds()
	var err error
	if r.RestoreOpSeconds, err = b.lastOperation(ctx, "backup.restore"); err != nil {
		return err
	}
	if len(res.Disks) != len(d.Disks) {
		return fmt.Errorf("knib backup restore %s restored %d disks, want %d", id, len(res.Disks), len(d.Disks))
	}
	logf("%s: knib backup restore %.2f s (operation %.2f s)", d.Name, r.RestoreSeconds, r.RestoreOpSeconds)
	return nil
}

// restoreUnchecked times the same restore with the hash check of the
// backup files switched off: the check's cost is the difference.
func (b *bench) restoreUnchecked(ctx context.Context, d *testbed.Domain, id string, r *Run) error {
	if _, err := b.srv.CLI(ctx, "settings", "set", "backup.restore.verify.hashes", "false"); err != nil {
		return err
	}
	defer b.srv.CLI(context.WithoutCancel(ctx), "settings", "set", "backup.restore.verify.hashes", "true")
	var u Run
	if err := b.restore(ctx, d, id, &u); err != nil {
		return err
	}
	r.UncheckedSeconds = u.RestoreSeconds
	logf("%s: knib backup restore without the hash check %.2f s", d.Name, u.RestoreSeconds)
	return nil
}

// plainStart is the quick restore's baseline: the same VM, its disks
// already restored, started by libvirt (DomainCreate) from the same state
// (stopped, page cache dropped): until it is running and until its guest
// agent answers.
func (b *bench) plainStart(ctx context.Context, d *testbed.Domain, r *Run) error {
	if err := d.Destroy(ctx); err != nil {
		return err
	}
	settle(ctx, b.opts.cold)
	start := clock.Real{}.Now()
	if err := d.L.DomainCreate(d.Dom); err != nil {
		return fmt.Errorf("start %s: %w", d.Name, err)
	}
	for {
		st, err := d.State()
		if err != nil {
			return err
		}
		if st == libvirt.DomainRunning {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.StartRunningSeconds = clock.Since(clock.Real{}, start).Seconds()
	actx, cancel := context.WithTimeout(ctx, testbed.BootTimeout)
	defer cancel()
	if err := d.WaitAgent(actx); err != nil {
		return err
	}
	r.StartAgentSeconds = clock.Since(clock.Real{}, start).Seconds()
	logf("%s: plain start (libvirt, restored disks): running after %.2f s, guest agent after %.2f s", d.Name, r.StartRunningSeconds, r.StartAgentSeconds)
	return nil
}

// quick times `knib backup restore ID --quick-restore` with the VM stopped:
// until libvirt reports the VM running (polled every 20 ms), until its guest
// agent answers guest-ping, and until the command returns (the block pull
// done).
func (b *bench) quick(ctx context.Context, d *testbed.Domain, id string, r *Run) error {
	if err := d.Destroy(ctx); err != nil {
		return err
	}
	settle(ctx, b.opts.cold)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	// Table output: the CLI prints the operation's progress ("[ 60%]
	// consolidating (attempt 1)") on stderr as it changes, which gives the
	// phases' times; stdout gets the result as a table.
	cmd := b.srv.Command(cctx, "backup", "restore", id, "--quick-restore")
	var out bytes.Buffer
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	start := clock.Real{}.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	// The goroutine reads the progress lines, then notes when the command
	// returned: the CLI may return (consolidation done) before the guest
	// agent answers. What it writes is read after done.
	var exitedAt time.Time
	var errLines []string
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			at := clock.Since(clock.Real{}, start).Seconds()
			errLines = append(errLines, line)
			m := progressRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			// One phase per message, whatever its counters.
			key, _, _ := strings.Cut(m[1], ":")
			if n := len(r.QuickPhases); n == 0 || r.QuickPhases[n-1].key != key {
				r.QuickPhases = append(r.QuickPhases, Phase{Seconds: at, Message: m[1], key: key})
			}
		}
		err := cmd.Wait()
		exitedAt = clock.Real{}.Now()
		done <- err
	}()
	var cmdErr error
	exited := false
	for {
		st, err := d.State()
		if err == nil && st == libvirt.DomainRunning {
			r.QuickRunningSeconds = clock.Since(clock.Real{}, start).Seconds()
			break
		}
		if exited {
			return fmt.Errorf("knib backup restore %s --quick-restore returned (%v: %s) and the VM is not running (state %d, %v)",
				id, cmdErr, lastLines(strings.Join(errLines, "\n"), 3), st, err)
		}
		select {
		case cmdErr = <-done:
			exited = true
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	actx, acancel := context.WithTimeout(ctx, testbed.BootTimeout)
	err = waitAgent(actx, d)
	acancel()
	if err != nil {
		return err
	}
	r.QuickAgentSeconds = clock.Since(clock.Real{}, start).Seconds()
	if !exited {
		cmdErr = <-done
	}
	r.QuickTotalSeconds = exitedAt.Sub(start).Seconds()
	r.ConsolidationSeconds = r.QuickTotalSeconds - r.QuickRunningSeconds
	if cmdErr != nil {
		return fmt.Errorf("knib backup restore %s --quick-restore: %v: %s", id, cmdErr, lastLines(strings.Join(errLines, "\n"), 3))
	}
	if r.QuickOpSeconds, err = b.lastOperation(ctx, "backup.restore"); err != nil {
		return err
	}
	// The result table has a line "consolidated  true".
	consolidated := false
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "consolidated" {
			consolidated = f[1] == "true"
		}
	}
	if !consolidated {
		return fmt.Errorf("knib backup restore %s --quick-restore did not consolidate: %s", id, strings.TrimSpace(out.String()))
	}
	// The disks must not depend on the backup storage any more.
	if _, err := b.srv.CLI(ctx, "host", "refresh"); err != nil {
		return err
	}
	var vm vmInfo
	if err := b.srv.CLIJSON(ctx, &vm, "vm", "show", d.Name); err != nil {
		return err
	}
	for _, disk := range vm.Disks {
		for _, l := range disk.Backing {
			if strings.HasPrefix(l.Path, b.storage+string(filepath.Separator)) {
				return fmt.Errorf("after quick restore %s, disk %s still has %s from backup storage in its chain", id, disk.Target, l.Path)
			}
		}
	}
	var phases []string
	for _, p := range r.QuickPhases {
		phases = append(phases, fmt.Sprintf("%.2f %s", p.Seconds, p.Message))
	}
	logf("%s: quick restore phases (seconds from the start, as the CLI saw them): %s", d.Name, strings.Join(phases, "; "))
	logf("%s: quick restore: running after %.2f s, guest agent after %.2f s, consolidated after %.2f s (consolidation %.2f s; operation %.2f s)",
		d.Name, r.QuickRunningSeconds, r.QuickAgentSeconds, r.QuickTotalSeconds, r.ConsolidationSeconds, r.QuickOpSeconds)
	return nil
}

// vnb backs the VM (running, same data) up with `virtnbdbackup -l full`
// and times `virtnbdrestore -i DIR -o OUTDIR` into a directory next to the
// VM's disks, then, reported apart, an fsync of what it wrote (virtnbdrestore
// does not fsync; knib does).
func (b *bench) vnb(ctx context.Context, d *testbed.Domain, row *Row) error {
	if _, err := exec.LookPath("virtnbdbackup"); err != nil {
		return errors.New("virtnbdbackup is not installed (Debian package virtnbdbackup): " + err.Error())
	}
	if _, err := exec.LookPath("virtnbdrestore"); err != nil {
		return errors.New("virtnbdrestore is not installed (Debian package virtnbdbackup): " + err.Error())
	}
	if st, err := d.State(); err != nil || st != libvirt.DomainRunning {
		sctx, cancel := context.WithTimeout(ctx, testbed.BootTimeout)
		err := d.Start(sctx)
		cancel()
		if err != nil {
			return err
		}
	}
	tag := strings.ToLower(compact(row.DataBytes))
	backupDir := filepath.Join(b.tmp, "virtnbdbackup-"+tag)
	outDir := filepath.Join(d.Dir, "virtnbdrestore")
	os.RemoveAll(backupDir)
	os.RemoveAll(outDir)
	if !b.opts.keep {
		defer os.RemoveAll(backupDir)
		defer os.RemoveAll(outDir)
	}
	settle(ctx, false)
	start := clock.Real{}.Now()
	if err := runLogged(ctx, filepath.Join(b.tmp, "virtnbdbackup-"+tag+".log"),
		"virtnbdbackup", "-d", d.Name, "-l", "full", "-o", backupDir, "-n"); err != nil {
		return err
	}
	row.VnbBackupSeconds = clock.Since(clock.Real{}, start).Seconds()
	logf("%s: virtnbdbackup -l full %.1f s", d.Name, row.VnbBackupSeconds)

	settle(ctx, b.opts.cold)
	start = clock.Real{}.Now()
	if err := runLogged(ctx, filepath.Join(b.tmp, "virtnbdrestore-"+tag+".out"),
		"virtnbdrestore", "-i", backupDir, "-o", outDir, "-n", "-L", filepath.Join(b.tmp, "virtnbdrestore-"+tag+".log")); err != nil {
		return err
	}
	row.VnrSeconds = clock.Since(clock.Real{}, start).Seconds()
	var files []string
	filepath.WalkDir(outDir, func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			files = append(files, p)
			if fi, err := e.Info(); err == nil && strings.HasSuffix(p, ".qcow2") {
				row.VnrBytes += fi.Size()
			}
		}
		return nil
	})
	if len(files) == 0 {
		return fmt.Errorf("virtnbdrestore wrote nothing into %s", outDir)
	}
	start = clock.Real{}.Now()
	if err := runQuiet(ctx, "sync", files...); err != nil {
		return err
	}
	row.VnrSyncSeconds = clock.Since(clock.Real{}, start).Seconds()
	logf("%s: virtnbdrestore %.2f s (+ sync %.2f s), %s of qcow2 files", d.Name, row.VnrSeconds, row.VnrSyncSeconds, report.MiB(row.VnrBytes))
	return nil
}

// lastOperation returns the duration (updated - created) of the most recent
// succeeded operation of kind: the server's own time, without the CLI's
// start and its polling (0.1 s doubling up to 1 s).
func (b *bench) lastOperation(ctx context.Context, kind string) (float64, error) {
	var ops []struct {
		Kind    string    `json:"kind"`
		State   string    `json:"state"`
		Created time.Time `json:"created"`
		Updated time.Time `json:"updated"`
	}
	if err := b.srv.CLIJSON(ctx, &ops, "operation", "list", "--all"); err != nil {
		return 0, err
	}
	var last time.Time
	secs := -1.0
	for _, op := range ops {
		if op.Kind == kind && op.State == "Succeeded" && op.Created.After(last) {
			last, secs = op.Created, op.Updated.Sub(op.Created).Seconds()
		}
	}
	if secs < 0 {
		return 0, fmt.Errorf("no succeeded %s operation in `knib operation list --all`", kind)
	}
	return secs, nil
}

// progressRE matches the CLI's progress lines: "[ 60%] consolidating vdb".
var progressRE = regexp.MustCompile(`^\[\s*\d+%\]\s*(.*)$`)

// settle flushes dirty pages (untimed) and, with cold, drops the page cache,
// so that each timed step reads the backup from disk and does not pay for
// the step before it.
func settle(ctx context.Context, cold bool) {
	if err := runQuiet(ctx, "sync"); err != nil {
		logf("sync: %v", err)
	}
	if cold {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o644); err != nil {
			logf("drop caches: %v", err)
		}
	}
	time.Sleep(500 * time.Millisecond)
}

func runQuiet(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(string(out), 5))
	}
	return nil
}

// runLogged runs a command with its output in logPath.
func runLogged(ctx context.Context, logPath, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	_ = os.WriteFile(logPath, out, 0o644)
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s (log %s)", name, strings.Join(args, " "), err, lastLines(string(out), 3), logPath)
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

// waitAgent waits for the guest agent like Domain.WaitAgent, riding out
// the short pause that follows each block job a consolidation ends (the
// libvirt adapter pauses and resumes the domain so that QEMU flushes its
// images), which WaitAgent takes for "not running".
func waitAgent(ctx context.Context, d *testbed.Domain) error {
	for {
		err := d.WaitAgent(ctx)
		if err == nil {
			return nil
		}
		// Paused, or running again since WaitAgent looked.
		if st, serr := d.State(); serr != nil || (st != libvirt.DomainPaused && st != libvirt.DomainRunning) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}
