// Command compression measures knib's background compression of a full
// backup, on a disk holding real files, against qemu-img convert and zstd
// run directly on the same data, and the time knib's validation takes per
// backup against a plain boot of the same VM.
//
//	go run ./bench/compression [-src /usr/share] [-reps 3] [-validations 3] [-keep] [-json]
//
// It needs root, a running libvirtd, the test guest (bash scripts/setup.sh)
// and zstd. It makes an ext4 image holding a copy of -src (mkfs.ext4 -d),
// converts it to qcow2 and uses it as the second disk (vdb) of a running
// test VM, starts its own all-in-one knib server on a data directory under
// /var/tmp (mode 0711, so that QEMU can reach the backup files) and a free
// port, and removes everything at the end unless -keep. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

const (
	vmName    = "knib-bench-zip"
	firstDisk = 64 << 20 // vda: the test guest's small ext4 data disk

	keyCoroutines = "backup.compression.coroutines"
	// baselineCoroutines is the qemu-img baseline's -m: both cores of this
	// machine, whatever knib's setting (issue 17's target compares knib
	// with its default against -m 2).
	baselineCoroutines = 2
	keyTaskEnabled     = "backup.compression.task.enabled"
	keyScreenshotWait  = "backup.validation.screenshot.default.wait"
	validationSteps    = "wait_for_boot,screenshot"
	// screenshotWait is keyScreenshotWait in the benchmark, in seconds.
	screenshotWait = 2
)

type options struct {
	src         string
	reps        int
	validations int
	keep        bool
	json        bool
}

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine string `json:"machine"`
	When    string `json:"when"`
	// LoadAvg is /proc/loadavg at the start and at the end: other guests
	// or tests running on the machine show here.
	LoadAvg []string  `json:"loadavg"`
	Image   imageInfo `json:"image"`
	// BootSeconds: the benchmark VM's own start, from DomainCreate to the
	// guest agent's first answer (the baseline of the validation time).
	BootSeconds float64 `json:"boot_seconds"`
	// Coroutines is backup.compression.coroutines as knib resolved it;
	// BaselineCoroutines the qemu-img baseline's -m.
	Coroutines         int `json:"coroutines"`
	BaselineCoroutines int `json:"baseline_coroutines"`
	// Knib, QemuImg and Zstd are the medians of the rounds.
	Knib    *KnibResult     `json:"knib,omitempty"`
	QemuImg *BaselineResult `json:"qemu_img,omitempty"`
	Zstd    *BaselineResult `json:"zstd,omitempty"`
	// Rounds: each a full backup, compressed by knib, then by qemu-img and
	// zstd from a copy of its uncompressed files.
	Rounds            []Round      `json:"rounds"`
	Validations       []Validation `json:"validations"`
	ValidationSeconds float64      `json:"validation_median_seconds,omitempty"`
	Ratios            Ratios       `json:"ratios"`
	Errors            []string     `json:"errors,omitempty"`
}

// Round is one full backup and its three compressions.
type Round struct {
	FullBackup BackupRun       `json:"full_backup"`
	Knib       *KnibResult     `json:"knib,omitempty"`
	QemuImg    *BaselineResult `json:"qemu_img,omitempty"`
	Zstd       *BaselineResult `json:"zstd,omitempty"`
	Files      []FileResult    `json:"files"`
}

// BackupRun is one `knib backup create`.
type BackupRun struct {
	ID      string  `json:"id"`
	Type    string  `json:"type"`
	Seconds float64 `json:"seconds"` // wall time of the CLI, which waits for the operation
	Bytes   int64   `json:"bytes"`
}

// KnibResult is knib's compression of the full backup.
type KnibResult struct {
	// Seconds: from the StartCompression job's started to the
	// FinalizeCompression job's ended.
	Seconds float64 `json:"seconds"`
	// The parts: the StartCompression job (qemu-img convert of every file,
	// fsync, rename), the wait for the scheduler to start the finalize job,
	// and the FinalizeCompression job (rename over the backup file, xxh3
	// hash of the compressed file).
	StartJobSeconds    float64 `json:"start_job_seconds"`
	WaitSeconds        float64 `json:"wait_seconds"`
	FinalizeJobSeconds float64 `json:"finalize_job_seconds"`
	// QemuImgSeconds: the duration of knib's own qemu-img convert runs,
	// from the server's debug log; QemuImgArgs their command lines.
	QemuImgSeconds   float64  `json:"qemu_img_seconds,omitempty"`
	QemuImgArgs      []string `json:"qemu_img_args,omitempty"`
	Bytes            int64    `json:"size"`
	UncompressedSize int64    `json:"uncompressed_size"`
	Ratio            float64  `json:"ratio"` // uncompressed_size / size
	Status           string   `json:"compression_status"`
}

// BaselineResult is qemu-img or zstd run directly on the same files.
type BaselineResult struct {
	Command string  `json:"command"`
	Seconds float64 `json:"seconds"`
	// SyncSeconds: `sync FILE` of the output after the command (qemu-img
	// only; knib fsyncs its output).
	SyncSeconds float64 `json:"fsync_seconds,omitempty"`
	// InputBytes: the uncompressed qcow2 files (qemu-img) or the raw images
	// (zstd).
	InputBytes int64   `json:"input_bytes"`
	Bytes      int64   `json:"bytes"`
	Ratio      float64 `json:"ratio"` // InputBytes / Bytes
	// RatioVsQCOW2 (zstd): the uncompressed qcow2 files' size / Bytes, the
	// same numerator as knib's and qemu-img's ratios.
	RatioVsQCOW2 float64 `json:"ratio_vs_qcow2,omitempty"`
}

// FileResult is one disk of the full backup.
type FileResult struct {
	Disk              string  `json:"disk"`
	UncompressedBytes int64   `json:"uncompressed_bytes"`
	VirtualBytes      int64   `json:"raw_bytes"`
	KnibBytes         int64   `json:"knib_bytes"`
	QemuImgSeconds    float64 `json:"qemu_img_seconds"`
	QemuImgSync       float64 `json:"qemu_img_fsync_seconds"`
	QemuImgBytes      int64   `json:"qemu_img_bytes"`
	ZstdSeconds       float64 `json:"zstd_seconds"`
	ZstdBytes         int64   `json:"zstd_bytes"`
}

// Validation is the validation of one backup.
type Validation struct {
	Backup BackupRun `json:"backup"`
	// Seconds: the BackupValidation job's started to ended.
	Seconds       float64 `json:"seconds"`
	Status        string  `json:"validation_status"`
	Reason        string  `json:"validation_reason,omitempty"`
	HasScreenshot bool    `json:"has_screenshot"`
	Attempts      int     `json:"attempts"`
	// VMStart, VMKill and VMEnd: from the job's start to the validation
	// VM's start, to the SIGTERM libvirt sent it, and to its end as
	// libvirt recorded them (/var/log/libvirt/qemu/<name>.log); 0 when
	// the log does not say.
	VMStart float64 `json:"vm_start_seconds,omitempty"`
	VMKill  float64 `json:"vm_sigterm_seconds,omitempty"`
	VMEnd   float64 `json:"vm_end_seconds,omitempty"`
	// Disturbed: the validation VM vanished under the validation (destroyed
	// by something else, such as another knib server starting: each one
	// destroys every knib-validate-* domain of the host); not counted.
	Disturbed bool `json:"disturbed,omitempty"`
	// Consolidated: the server's periodic reconcile took the running
	// validation VM for a quick-restored VM and block-pulled its disks
	// while it was validating (server log); the time may include that.
	Consolidated bool `json:"consolidated_by_reconcile,omitempty"`
}

// Ratios compare knib with the baselines of the same run (0 when a side is
// missing).
type Ratios struct {
	KnibOverQemuImg      float64 `json:"knib_over_qemu_img,omitempty"`
	KnibOverQemuImgFsync float64 `json:"knib_over_qemu_img_with_fsync,omitempty"`
	// KnibConvertOverQemuImg: knib's own qemu-img runs over the baseline's.
	KnibConvertOverQemuImg float64 `json:"knib_convert_over_qemu_img,omitempty"`
	KnibOverZstd           float64 `json:"knib_over_zstd,omitempty"`
	// KnibRatioOverQemuImgRatio and KnibRatioOverZstdRatio compare the
	// compression ratios (zstd: on the same numerator, RatioVsQCOW2).
	KnibRatioOverQemuImgRatio float64 `json:"knib_ratio_over_qemu_img_ratio,omitempty"`
	KnibRatioOverZstdRatio    float64 `json:"knib_ratio_over_zstd_ratio,omitempty"`
	ValidationOverBoot        float64 `json:"validation_over_boot,omitempty"`
}

func main() {
	var opts options
	flag.StringVar(&opts.src, "src", "/usr/share", "directory whose files fill the second disk (mkfs.ext4 -d)")
	flag.IntVar(&opts.reps, "reps", 3, "rounds of full backup and compressions; the summary shows medians")
	flag.IntVar(&opts.validations, "validations", 3, "backups to validate (the first is full, the next incremental)")
	flag.BoolVar(&opts.keep, "keep", false, "keep the VM, the knib data directory and the backups")
	flag.BoolVar(&opts.json, "json", false, "print the results as JSON instead of a table")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "compression: no arguments expected")
		os.Exit(2)
	}
	if opts.reps < 1 {
		fmt.Fprintln(os.Stderr, "compression: -reps: want at least 1")
		os.Exit(2)
	}
	if opts.validations < 0 {
		fmt.Fprintln(os.Stderr, "compression: -validations: want 0 or more")
		os.Exit(2)
	}

	knibproc.Main("compression", 30*time.Minute, opts.json, func(ctx context.Context) (*Report, error) { return run(ctx, opts) }, printReport)
}

func logf(format string, args ...any) { knibproc.Logf(format, args...) }

// run does the whole benchmark; the report holds whatever was measured even
// when it returns an error.
func run(ctx context.Context, opts options) (rep *Report, err error) {
	rep = &Report{
		Machine: knibproc.Machine(),
		When:    clock.Real{}.Now().UTC().Format(time.RFC3339),
		LoadAvg: []string{report.LoadAvg()},
	}
	defer func() { rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg()) }()
	if err := lookTools("qemu-img", "mkfs.ext4", "zstd", "du", "cp", "sync"); err != nil {
		return rep, err
	}
	root, err := knibproc.Prepare()
	if err != nil {
		return rep, err
	}
	// QEMU (libvirt-qemu) opens the backup files during a validation: every
	// level of the data directory must be traversable.
	tmp, err := os.MkdirTemp("/var/tmp", "knib-bench-compression-")
	if err != nil {
		return rep, err
	}
	var srv *knibServer
	var cleanups []func()
	defer func() {
		srv.Stop()
		if opts.keep {
			logf("-keep: leaving the VM %s and %s (server stopped)", vmName, tmp)
			return
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		os.RemoveAll(tmp)
		logf("cleaned up the VM and %s", tmp)
	}()
	if err := os.Chmod(tmp, 0o711); err != nil {
		return rep, err
	}
	dataDir := filepath.Join(tmp, "data")
	work := filepath.Join(tmp, "work") // the image, copies and baselines' outputs
	for _, d := range []string{dataDir, work} {
		if err := os.Mkdir(d, 0o711); err != nil {
			return rep, err
		}
	}

	logf("building knib into %s", tmp)
	bin, err := knibproc.Build(ctx, root, tmp)
	if err != nil {
		return rep, err
	}
	if srv, err = startServer(ctx, bin, dataDir); err != nil {
		return rep, err
	}
	storage := filepath.Join(dataDir, "storage")
	logf("knib server on %s, data %s", srv.URL, dataDir)

	// The VM: the test guest's small ext4 data disk as vda and, as vdb, an
	// ext4 file system holding a copy of -src.
	l, err := testbed.Dial()
	if err != nil {
		return rep, err
	}
	cleanups = append(cleanups, func() { l.Disconnect() })
	logf("making an ext4 image of %s (mkfs.ext4 -d)", opts.src)
	img := filepath.Join(work, "vdb.qcow2")
	if rep.Image, err = makeImage(ctx, opts.src, filepath.Join(work, "vdb.raw"), img); err != nil {
		return rep, err
	}
	logf("image: %s ext4 (du of %s: %s, %d entries), mkfs %.1f s, qcow2 %s", humanSize(rep.Image.ImageBytes), opts.src,
		humanSize(rep.Image.SourceDu), rep.Image.Entries, rep.Image.MkfsSecs, humanSize(rep.Image.QCOW2Bytes))
	cleanups = append(cleanups, func() {
		if err := testbed.RemoveDomain(l, vmName); err != nil {
			logf("removing %s: %v", vmName, err)
		}
	})
	dom, err := testbed.CreateDomain(ctx, l, testbed.DomainOptions{Name: vmName, DiskSizes: []int64{firstDisk, rep.Image.ImageBytes}})
	if err != nil {
		return rep, err
	}
	// vdb becomes the image (same virtual size as the blank one testbed made).
	if err := os.Rename(img, dom.Disks[1]); err != nil {
		return rep, err
	}
	bootCtx, cancelBoot := context.WithTimeout(ctx, testbed.BootTimeout)
	start := clock.Real{}.Now()
	err = dom.Start(bootCtx)
	rep.BootSeconds = clock.Since(clock.Real{}, start).Seconds()
	cancelBoot()
	if err != nil {
		return rep, fmt.Errorf("start %s: %v\nconsole:\n%s", vmName, err, dom.Console())
	}
	logf("VM %s up in %.1f s (guest agent answered)", vmName, rep.BootSeconds)

	// knib: settings, an offering with --compress (zstd, the default
	// library) and chains of one backup (every backup is full), the VM
	// assigned.
	if c, err := srv.setting(ctx, keyCoroutines); err != nil {
		return rep, err
	} else if rep.Coroutines, err = strconv.Atoi(c); err != nil || rep.Coroutines < 1 {
		return rep, fmt.Errorf("%s = %q: want a positive number", keyCoroutines, c)
	}
	rep.BaselineCoroutines = baselineCoroutines
	if _, err := srv.CLI(ctx, "settings", "set", keyScreenshotWait, strconv.Itoa(screenshotWait)); err != nil {
		return rep, err
	}
	var off struct {
		ID string `json:"id"`
	}
	if err := srv.CLIJSON(ctx, &off, "offering", "create", "--name", "bench-compress", "--compress", "--backup-chain-size", "1"); err != nil {
		return rep, err
	}
	if _, err := srv.CLI(ctx, "host", "refresh"); err != nil {
		return rep, err
	}
	if _, err := srv.CLI(ctx, "vm", "assign", vmName, "--offering", off.ID); err != nil {
		return rep, err
	}
	for i := 0; i < opts.reps; i++ {
		r, err := compressRound(ctx, srv, storage, work, baselineCoroutines, i)
		if r != nil {
			rep.Rounds = append(rep.Rounds, *r)
			rep.summarize()
		}
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Sprintf("round %d: %v", i+1, err))
			return rep, err
		}
	}

	// Validation: a second offering; the VM moves to it (which ends the
	// chain: the first backup is full).
	if opts.validations == 0 {
		return rep, nil
	}
	if err := srv.CLIJSON(ctx, &off, "offering", "create", "--name", "bench-validate", "--validate", "--validation-steps", validationSteps); err != nil {
		return rep, err
	}
	if _, err := srv.CLI(ctx, "vm", "unassign", vmName); err != nil {
		return rep, err
	}
	if _, err := srv.CLI(ctx, "vm", "assign", vmName, "--offering", off.ID); err != nil {
		return rep, err
	}
	// A validation whose VM someone else destroyed does not count; a few
	// more backups make up for it.
	valid := 0
	for tries := 0; valid < opts.validations && tries < opts.validations+3; tries++ {
		settle(ctx)
		v, err := validate(ctx, srv)
		if v != nil {
			rep.Validations = append(rep.Validations, *v)
			logf("validation of %s backup %s: %.2f s, %s %s", v.Backup.Type, v.Backup.ID, v.Seconds, v.Status, v.Reason)
		}
		if v != nil && v.Disturbed {
			rep.Errors = append(rep.Errors, fmt.Sprintf("validation of backup %s not counted: its VM was destroyed from outside (%s: %s)", v.Backup.ID, v.Status, v.Reason))
			continue
		}
		if err != nil {
			rep.Errors = append(rep.Errors, "validation: "+err.Error())
			rep.summarize()
			return rep, err
		}
		valid++
	}
	rep.summarize()
	if valid < opts.validations {
		return rep, fmt.Errorf("only %d of %d validations counted: the others' VMs were destroyed from outside", valid, opts.validations)
	}
	return rep, nil
}

// compressRound takes a full backup with knib's compression held back,
// copies its files aside, lets knib compress it, then compresses the copies
// with qemu-img and with zstd.
func compressRound(ctx context.Context, srv *knibServer, storage, work string, coroutines, i int) (*Round, error) {
	// The compression waits until the uncompressed files are copied aside.
	if _, err := srv.CLI(ctx, "settings", "set", keyTaskEnabled, "false"); err != nil {
		return nil, err
	}
	settle(ctx)
	full, secs, err := srv.createBackup(ctx, vmName)
	if err != nil {
		return nil, fmt.Errorf("full backup: %w", err)
	}
	r := &Round{FullBackup: BackupRun{ID: full.ID, Type: full.Type, Seconds: secs, Bytes: full.Size}}
	logf("round %d: %s backup %s of %s: %.2f s, %s", i+1, full.Type, full.ID, vmName, secs, humanSize(full.Size))
	if full.Type != "full" {
		return r, fmt.Errorf("backup %s is %s, want full", full.ID, full.Type)
	}
	copies := make([]string, len(full.Files))
	defer func() {
		for _, c := range copies {
			if c != "" {
				os.Remove(c)
			}
		}
	}()
	for i, f := range full.Files {
		copies[i] = filepath.Join(work, f.Disk+".uncompressed.qcow2")
		if err := copyFile(ctx, filepath.Join(storage, f.Path), copies[i]); err != nil {
			return r, err
		}
		fr := FileResult{Disk: f.Disk}
		if fr.UncompressedBytes, err = fileSize(copies[i]); err != nil {
			return r, err
		}
		r.Files = append(r.Files, fr)
	}

	// knib compresses.
	settle(ctx)
	if _, err := srv.CLI(ctx, "settings", "set", keyTaskEnabled, "true"); err != nil {
		return r, err
	}
	b, err := srv.waitBackup(ctx, vmName, full.ID, 15*time.Minute, func(b backup) (bool, error) {
		switch b.CompressionStatus {
		case "Compressed":
			return true, nil
		case "CompressionError":
			return true, fmt.Errorf("backup %s: compression failed (knib job list --all --backup %s)", b.ID, b.ID)
		}
		return false, nil
	})
	if err != nil {
		return r, fmt.Errorf("knib compression: %w", err)
	}
	if r.Knib, err = knibCompression(ctx, srv, b); err != nil {
		return r, fmt.Errorf("knib compression: %w", err)
	}
	for _, f := range b.Files {
		for j := range r.Files {
			if r.Files[j].Disk == f.Disk {
				r.Files[j].KnibBytes, _ = fileSize(filepath.Join(storage, f.Path))
			}
		}
	}
	k := r.Knib
	logf("round %d: knib compressed in %.2f s (job %.2f + wait %.2f + finalize %.2f; its qemu-img %.2f s), %s -> %s, ratio %.2f", i+1,
		k.Seconds, k.StartJobSeconds, k.WaitSeconds, k.FinalizeJobSeconds, k.QemuImgSeconds, humanSize(k.UncompressedSize), humanSize(k.Bytes), k.Ratio)

	// The baselines, on the copies, one file after the other like knib.
	q := &BaselineResult{Command: fmt.Sprintf("qemu-img convert -f qcow2 -c -O qcow2 -o compression_type=zstd -m %d -W SRC DST", coroutines)}
	for i := range r.Files {
		fr := &r.Files[i]
		dst := filepath.Join(work, fr.Disk+".qemu-img.qcow2")
		settle(ctx)
		if fr.QemuImgSeconds, fr.QemuImgSync, err = qemuImgCompress(ctx, copies[i], dst, coroutines); err != nil {
			return r, err
		}
		fr.QemuImgBytes, err = fileSize(dst)
		os.Remove(dst)
		if err != nil {
			return r, err
		}
		q.Seconds += fr.QemuImgSeconds
		q.SyncSeconds += fr.QemuImgSync
		q.InputBytes += fr.UncompressedBytes
		q.Bytes += fr.QemuImgBytes
	}
	q.Ratio = report.Ratio(float64(q.InputBytes), float64(q.Bytes))
	r.QemuImg = q
	logf("round %d: qemu-img %.2f s (+%.2f s fsync), %s -> %s, ratio %.2f", i+1, q.Seconds, q.SyncSeconds, humanSize(q.InputBytes), humanSize(q.Bytes), q.Ratio)

	z := &BaselineResult{Command: "qemu-img convert -O raw (untimed), then zstd -1 -T0 RAW -o DST"}
	var qcow2Bytes int64
	for i := range r.Files {
		fr := &r.Files[i]
		dst := filepath.Join(work, fr.Disk+".raw.zst")
		if fr.ZstdSeconds, fr.VirtualBytes, err = zstdRaw(ctx, copies[i], filepath.Join(work, fr.Disk+".raw"), dst); err != nil {
			return r, err
		}
		fr.ZstdBytes, err = fileSize(dst)
		os.Remove(dst)
		if err != nil {
			return r, err
		}
		z.Seconds += fr.ZstdSeconds
		z.InputBytes += fr.VirtualBytes
		z.Bytes += fr.ZstdBytes
		qcow2Bytes += fr.UncompressedBytes
	}
	z.Ratio = report.Ratio(float64(z.InputBytes), float64(z.Bytes))
	z.RatioVsQCOW2 = report.Ratio(float64(qcow2Bytes), float64(z.Bytes))
	r.Zstd = z
	logf("round %d: zstd -1 -T0 %.2f s, raw %s -> %s, ratio %.2f (%.2f against the qcow2 files)", i+1, z.Seconds, humanSize(z.InputBytes), humanSize(z.Bytes), z.Ratio, z.RatioVsQCOW2)
	return r, nil
}

// knibCompression reads the compression jobs of the backup and knib's own
// qemu-img runs from the server's log.
func knibCompression(ctx context.Context, srv *knibServer, b backup) (*KnibResult, error) {
	jobs, err := srv.jobsOf(ctx, b.ID)
	if err != nil {
		return nil, err
	}
	var start, fin *job
	for i := range jobs {
		j := &jobs[i]
		switch {
		case j.Type == "StartCompression" && j.State == "Succeeded":
			start = j
		case j.Type == "FinalizeCompression" && j.State == "Succeeded":
			fin = j
		}
		if j.Attempts > 1 || j.LastError != "" {
			logf("job %s %s: %d attempts, last error %q", j.ID, j.Type, j.Attempts, j.LastError)
		}
	}
	if start == nil || fin == nil || start.Started == nil || start.Ended == nil || fin.Started == nil || fin.Ended == nil {
		enc, _ := json.Marshal(jobs)
		return nil, fmt.Errorf("backup %s: no succeeded StartCompression and FinalizeCompression jobs with start and end: %s", b.ID, enc)
	}
	k := &KnibResult{
		Seconds:            fin.Ended.Sub(*start.Started).Seconds(),
		StartJobSeconds:    start.Ended.Sub(*start.Started).Seconds(),
		WaitSeconds:        fin.Started.Sub(*start.Ended).Seconds(),
		FinalizeJobSeconds: fin.Ended.Sub(*fin.Started).Seconds(),
		Bytes:              b.Size,
		UncompressedSize:   b.UncompressedSize,
		Ratio:              report.Ratio(float64(b.UncompressedSize), float64(b.Size)),
		Status:             b.CompressionStatus,
	}
	for _, r := range srv.loggedConverts(" convert ", " -c ", b.ID) {
		k.QemuImgSeconds += r.Seconds
		k.QemuImgArgs = append(k.QemuImgArgs, r.Args)
	}
	return k, nil
}

// validate takes a backup and waits for its validation.
func validate(ctx context.Context, srv *knibServer) (*Validation, error) {
	b, secs, err := srv.createBackup(ctx, vmName)
	if err != nil {
		return nil, err
	}
	v := &Validation{Backup: BackupRun{ID: b.ID, Type: b.Type, Seconds: secs, Bytes: b.Size}}
	logf("%s backup %s: %.2f s, %s; validating", b.Type, b.ID, secs, humanSize(b.Size))
	b, err = srv.waitBackup(ctx, vmName, b.ID, 10*time.Minute, func(b backup) (bool, error) {
		switch b.ValidationStatus {
		case "Valid", "NotValid", "UnableToValidate":
			return true, nil
		}
		return false, nil
	})
	v.Status, v.Reason, v.HasScreenshot = b.ValidationStatus, b.ValidationReason, b.HasScreenshot
	if err != nil {
		return v, err
	}
	jobs, err := srv.jobsOf(ctx, b.ID)
	if err != nil {
		return v, err
	}
	for _, j := range jobs {
		if j.Type != "BackupValidation" || j.Started == nil || j.Ended == nil {
			continue
		}
		v.Seconds, v.Attempts = j.Ended.Sub(*j.Started).Seconds(), j.Attempts
		v.VMStart, v.VMKill, v.VMEnd = vmLife(validationVM(b.ID), *j.Started, *j.Ended)
		if j.State != "Succeeded" {
			return v, fmt.Errorf("backup %s: validation job %s is %s: %s", b.ID, j.ID, j.State, j.LastError)
		}
	}
	if v.Seconds == 0 {
		enc, _ := json.Marshal(jobs)
		return v, fmt.Errorf("backup %s: no finished BackupValidation job: %s", b.ID, enc)
	}
	v.Consolidated = srv.LogHas(`msg="resuming the consolidation of a quick-restored VM"`, "vm="+validationVM(b.ID))
	if v.Status != "Valid" && strings.Contains(strings.ToLower(v.Reason), "domain not found") {
		v.Disturbed = true
	}
	if v.Status != "Valid" {
		return v, fmt.Errorf("backup %s: validation %s: %s", b.ID, v.Status, v.Reason)
	}
	return v, nil
}

// validationVM is the name of the throw-away VM that validates backup id
// (internal/agent: agentapi.ValidationPrefix + the id's first 8 characters).
func validationVM(id string) string {
	if len(id) > 8 {
		id = id[:8]
	}
	return "knib-validate-" + id
}

// summarize sets the medians of the rounds and of the validations, and the
// ratios.
func (rep *Report) summarize() {
	var ks, qs, zs []Round
	for _, r := range rep.Rounds {
		if r.Knib != nil {
			ks = append(ks, r)
		}
		if r.QemuImg != nil {
			qs = append(qs, r)
		}
		if r.Zstd != nil {
			zs = append(zs, r)
		}
	}
	rep.Knib, rep.QemuImg, rep.Zstd = nil, nil, nil
	if len(ks) > 0 {
		k := func(f func(*KnibResult) float64) float64 {
			return medianOf(ks, func(r Round) float64 { return f(r.Knib) })
		}
		rep.Knib = &KnibResult{
			Seconds:            k(func(k *KnibResult) float64 { return k.Seconds }),
			StartJobSeconds:    k(func(k *KnibResult) float64 { return k.StartJobSeconds }),
			WaitSeconds:        k(func(k *KnibResult) float64 { return k.WaitSeconds }),
			FinalizeJobSeconds: k(func(k *KnibResult) float64 { return k.FinalizeJobSeconds }),
			QemuImgSeconds:     k(func(k *KnibResult) float64 { return k.QemuImgSeconds }),
			QemuImgArgs:        ks[0].Knib.QemuImgArgs,
			Bytes:              int64(k(func(k *KnibResult) float64 { return float64(k.Bytes) })),
			UncompressedSize:   int64(k(func(k *KnibResult) float64 { return float64(k.UncompressedSize) })),
			Ratio:              k(func(k *KnibResult) float64 { return k.Ratio }),
			Status:             ks[0].Knib.Status,
		}
	}
	base := func(rs []Round, get func(Round) *BaselineResult) *BaselineResult {
		if len(rs) == 0 {
			return nil
		}
		m := func(f func(*BaselineResult) float64) float64 {
			return medianOf(rs, func(r Round) float64 { return f(get(r)) })
		}
		return &BaselineResult{
			Command:      get(rs[0]).Command,
			Seconds:      m(func(b *BaselineResult) float64 { return b.Seconds }),
			SyncSeconds:  m(func(b *BaselineResult) float64 { return b.SyncSeconds }),
			InputBytes:   int64(m(func(b *BaselineResult) float64 { return float64(b.InputBytes) })),
			Bytes:        int64(m(func(b *BaselineResult) float64 { return float64(b.Bytes) })),
			Ratio:        m(func(b *BaselineResult) float64 { return b.Ratio }),
			RatioVsQCOW2: m(func(b *BaselineResult) float64 { return b.RatioVsQCOW2 }),
		}
	}
	rep.QemuImg = base(qs, func(r Round) *BaselineResult { return r.QemuImg })
	rep.Zstd = base(zs, func(r Round) *BaselineResult { return r.Zstd })

	r := Ratios{}
	if k, q := rep.Knib, rep.QemuImg; k != nil && q != nil {
		r.KnibOverQemuImg = report.Ratio(k.Seconds, q.Seconds)
		r.KnibOverQemuImgFsync = report.Ratio(k.Seconds, q.Seconds+q.SyncSeconds)
		r.KnibConvertOverQemuImg = report.Ratio(k.QemuImgSeconds, q.Seconds)
		r.KnibRatioOverQemuImgRatio = report.Ratio(k.Ratio, q.Ratio)
	}
	if k, z := rep.Knib, rep.Zstd; k != nil && z != nil {
		r.KnibOverZstd = report.Ratio(k.Seconds, z.Seconds)
		r.KnibRatioOverZstdRatio = report.Ratio(k.Ratio, z.RatioVsQCOW2)
	}
	var vs []float64
	for _, v := range rep.Validations {
		if v.Seconds > 0 && v.Status == "Valid" {
			vs = append(vs, v.Seconds)
		}
	}
	rep.ValidationSeconds = report.Median(vs)
	r.ValidationOverBoot = report.Ratio(rep.ValidationSeconds, rep.BootSeconds)
	rep.Ratios = r
}

func medianOf(rs []Round, f func(Round) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return report.Median(v)
}

func printReport(w io.Writer, rep *Report) {
	fmt.Fprintln(w, "knib compression and validation of a VM whose vdb holds real files")
	fmt.Fprintf(w, "machine: %s; load average at start / end: %s\n", rep.Machine, strings.Join(rep.LoadAvg, " / "))
	fmt.Fprintf(w, "vdb: ext4 of %s made by mkfs.ext4 -d %s (du %s, %d entries), qcow2 %s; vda: %s test-guest disk\n",
		humanSize(rep.Image.ImageBytes), rep.Image.Source, humanSize(rep.Image.SourceDu), rep.Image.Entries, humanSize(rep.Image.QCOW2Bytes), humanSize(firstDisk))
	fmt.Fprintf(w, "compression coroutines (%s): %d; qemu-img baseline -m %d; %d rounds, medians below\n", keyCoroutines, rep.Coroutines, rep.BaselineCoroutines, len(rep.Rounds))
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "compression of a full backup (medians)\tseconds\tinput\toutput\tratio\t")
	if k := rep.Knib; k != nil {
		fmt.Fprintf(tw, "knib (StartCompression started -> FinalizeCompression ended)\t%s\t%s\t%s\t%s\t\n", report.F2(k.Seconds), humanSize(k.UncompressedSize), humanSize(k.Bytes), report.F2(k.Ratio))
		fmt.Fprintf(tw, "  StartCompression job / wait / FinalizeCompression job\t%s / %s / %s\t\t\t\t\n", report.F2(k.StartJobSeconds), report.F2(k.WaitSeconds), report.F2(k.FinalizeJobSeconds))
		if k.QemuImgSeconds > 0 {
			fmt.Fprintf(tw, "  knib's own qemu-img convert runs (server log)\t%s\t\t\t\t\n", report.F2(k.QemuImgSeconds))
		}
	}
	if q := rep.QemuImg; q != nil {
		fmt.Fprintf(tw, "qemu-img convert -c -o compression_type=zstd -m %d -W\t%s\t%s\t%s\t%s\t\n", rep.BaselineCoroutines, report.F2(q.Seconds), humanSize(q.InputBytes), humanSize(q.Bytes), report.F2(q.Ratio))
		fmt.Fprintf(tw, "  + sync of its output\t%s\t\t\t\t\n", report.F2(q.SyncSeconds))
	}
	if z := rep.Zstd; z != nil {
		fmt.Fprintf(tw, "zstd -1 -T0 of the raw images\t%s\t%s\t%s\t%s\t\n", report.F2(z.Seconds), humanSize(z.InputBytes), humanSize(z.Bytes), report.F2(z.Ratio))
		fmt.Fprintf(tw, "  ratio against the uncompressed qcow2 files\t\t\t\t%s\t\n", report.F2(z.RatioVsQCOW2))
	}
	tw.Flush()
	if len(rep.Rounds) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "round\tdisk\tqcow2\tknib\tqemu-img\traw\tzstd\tbackup s\tknib s\tqemu-img s\tzstd s\t")
		dash := "-"
		for i, r := range rep.Rounds {
			ks, qs, zs := dash, dash, dash
			if r.Knib != nil {
				ks = report.F2(r.Knib.Seconds)
			}
			if r.QemuImg != nil {
				qs = report.F2(r.QemuImg.Seconds)
			}
			if r.Zstd != nil {
				zs = report.F2(r.Zstd.Seconds)
			}
			fmt.Fprintf(tw, "%d\t\t\t\t\t\t\t%s\t%s\t%s\t%s\t\n", i+1, report.F2(r.FullBackup.Seconds), ks, qs, zs)
			for _, f := range r.Files {
				fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s\t%s\t%s\t\t\t%s\t%s\t\n", f.Disk, humanSize(f.UncompressedBytes), humanSize(f.KnibBytes),
					humanSize(f.QemuImgBytes), humanSize(f.VirtualBytes), humanSize(f.ZstdBytes), report.F2(f.QemuImgSeconds), report.F2(f.ZstdSeconds))
			}
		}
		tw.Flush()
	}
	if len(rep.Validations) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "validation (--validation-steps %s, %s %d), BackupValidation job started -> ended:\n", validationSteps, keyScreenshotWait, screenshotWait)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "backup\ttype\tbackup s\tvalidation s\tVM start / SIGTERM / end s\tverdict\tscreenshot\tblock-pulled by reconcile\t")
		overlaps := 0
		for _, v := range rep.Validations {
			pulled := "no"
			if v.Consolidated {
				pulled, overlaps = "YES", overlaps+1
			}
			verdict := v.Status
			if v.Disturbed {
				verdict += " (VM destroyed from outside, not counted)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s / %s / %s\t%s\t%v\t%s\t\n", v.Backup.ID, v.Backup.Type, report.F2(v.Backup.Seconds), report.F2(v.Seconds),
				report.F2(v.VMStart), report.F2(v.VMKill), report.F2(v.VMEnd), verdict, v.HasScreenshot, pulled)
		}
		tw.Flush()
		if overlaps > 0 {
			fmt.Fprintf(w, "NOTE %d validation(s) ran while the server's periodic reconcile block-pulled the validation VM's disks,\n", overlaps)
			fmt.Fprintln(w, "     taking it for a quick-restored VM (\"resuming the consolidation of a quick-restored VM\" in the server log)")
		}
		fmt.Fprintf(w, "median of the Valid ones %s s; the benchmark VM's own boot (start -> guest agent answers): %s s\n", report.F2(rep.ValidationSeconds), report.F2(rep.BootSeconds))
	}
	fmt.Fprintln(w)
	r := rep.Ratios
	if rep.Knib != nil && rep.QemuImg != nil {
		fmt.Fprintf(w, "RATIO time knib/qemu-img=%s (qemu-img with fsync: %s; knib's own convert/qemu-img: %s)\n",
			report.F2(r.KnibOverQemuImg), report.F2(r.KnibOverQemuImgFsync), report.F2(r.KnibConvertOverQemuImg))
	}
	if rep.Knib != nil && rep.Zstd != nil {
		fmt.Fprintf(w, "RATIO time knib/zstd=%s\n", report.F2(r.KnibOverZstd))
		fmt.Fprintf(w, "RATIO compression knib=%s qemu-img=%s zstd=%s (vs qcow2: %s) knib/qemu-img=%s knib/zstd=%s\n", report.F2(rep.Knib.Ratio), report.F2(rep.QemuImg.Ratio),
			report.F2(rep.Zstd.Ratio), report.F2(rep.Zstd.RatioVsQCOW2), report.F2(r.KnibRatioOverQemuImgRatio), report.F2(r.KnibRatioOverZstdRatio))
	}
	if r.ValidationOverBoot > 0 {
		fmt.Fprintf(w, "RATIO validation/boot=%s\n", report.F2(r.ValidationOverBoot))
	}
	if rep.Knib != nil && rep.QemuImg != nil {
		fmt.Fprintf(w, "TARGET compression knib/qemu-img(-m %d) %s (target <= 1.0: %s); knib/zstd %s\n", rep.BaselineCoroutines,
			report.F2(r.KnibOverQemuImg), met(r.KnibOverQemuImg <= 1.0), report.F2(r.KnibOverZstd))
	}
	if r.ValidationOverBoot > 0 {
		fmt.Fprintf(w, "TARGET validation/boot %s (target <= 1.2: %s); of which the screenshot wait %s s = %s of the boot\n",
			report.F2(r.ValidationOverBoot), met(r.ValidationOverBoot <= 1.2), strconv.Itoa(screenshotWait), report.F2(report.Ratio(screenshotWait, rep.BootSeconds)))
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "NOTE %s\n", e)
	}
}

// met is the TARGET lines' verdict.
func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// vmLife reads libvirt's log of the validation VM name and returns, from
// the job's start, when its last run started, when libvirt sent it
// SIGTERM (the destroy) and when libvirt recorded its end; 0 for what the
// log does not say. Only a run that started within the job counts.
func vmLife(name string, started, ended time.Time) (start, kill, end float64) {
	raw, err := os.ReadFile(filepath.Join("/var/log/libvirt/qemu", name+".log"))
	if err != nil {
		return 0, 0, 0
	}
	var tStart, tKill, tEnd time.Time
	for _, line := range strings.Split(string(raw), "\n") {
		at, ok := logTime(line)
		if !ok || at.Before(started.Add(-time.Second)) || at.After(ended.Add(time.Second)) {
			continue
		}
		switch {
		case strings.Contains(line, ": starting up "):
			tStart, tKill, tEnd = at, time.Time{}, time.Time{}
		case strings.Contains(line, "terminating on signal 15"):
			tKill = at
		case strings.Contains(line, ": shutting down"):
			tEnd = at
		}
	}
	rel := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return t.Sub(started).Seconds()
	}
	return rel(tStart), rel(tKill), rel(tEnd)
}

// logTime parses the time a line of libvirt's domain log starts with:
// libvirt's "2006-01-02 15:04:05.000+0000: ..." or QEMU's
// "2006-01-02T15:04:05.000000Z qemu-system-...".
func logTime(line string) (time.Time, bool) {
	if len(line) < 28 {
		return time.Time{}, false
	}
	if t, err := time.Parse("2006-01-02 15:04:05.000-0700", line[:28]); err == nil {
		return t, true
	}
	if i := strings.IndexByte(line, ' '); i > 0 {
		if t, err := time.Parse(time.RFC3339Nano, line[:i]); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
