// Command restore measures knib's restores of backups holding 1 GiB and
// 8 GiB of data: a normal restore against `qemu-img convert` of the same
// backup file and against virtnbdrestore, and a quick restore's time until
// the VM runs and until its guest agent answers (which must not grow with
// the data) and the consolidation that follows.
//
//	go run ./bench/restore [-sizes 1G,4G] [-json] [-keep] [-fill hmp|file] [-reps 1]
//
// It needs root, a running libvirtd (bash scripts/setup.sh) and the test
// guest. For each size it creates a test VM with a blank 32 MiB first disk
// and an unformatted second disk of that size filled with data, starts its
// own all-in-one knib server on a data directory under /var/tmp (mode 0711,
// so QEMU can read the backup storage during quick restores) and a free
// port, and removes everything at the end unless -keep. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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
	mib       = int64(1) << 20
	gib       = int64(1) << 30
	firstDisk = 32 << 20 // vda: small, blank
)

type options struct {
	sizes []int64
	fill  string // "file": qemu-io on the stopped VM's disk; "hmp": WriteDisk into the running VM
	chunk int64
	reps  int
	cold  bool
	keep  bool
	json  bool
}

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine        string `json:"machine"`
	When           string `json:"when"`
	FirstDiskBytes int64  `json:"first_disk_bytes"`
	Fill           string `json:"fill"`
	ChunkBytes     int64  `json:"chunk_bytes"`
	ColdCache      bool   `json:"cold_cache"`
	// LoadAvg is /proc/loadavg at the start and at the end.
	LoadAvg []string `json:"loadavg"`
	Rows    []*Row   `json:"rows"`
	// Flat compares the quick restore of the largest size with the smallest.
	Flat *Flatness `json:"quick_restore_flatness,omitempty"`
}

// Row is one data size.
type Row struct {
	DataBytes     int64   `json:"data_bytes"`
	FillSeconds   float64 `json:"fill_seconds"`
	BackupID      string  `json:"backup_id,omitempty"`
	BackupBytes   int64   `json:"backup_bytes,omitempty"`
	BackupSeconds float64 `json:"knib_full_backup_seconds,omitempty"`
	// Median is the median of Runs, field by field.
	Median *Run  `json:"median,omitempty"`
	Runs   []Run `json:"runs,omitempty"`
	// virtnbdbackup -l full of the same VM (same data) after knib's runs,
	// then virtnbdrestore of it.
	VnbBackupSeconds float64 `json:"virtnbdbackup_full_seconds,omitempty"`
	VnrSeconds       float64 `json:"virtnbdrestore_seconds,omitempty"`
	VnrSyncSeconds   float64 `json:"virtnbdrestore_sync_seconds,omitempty"`
	VnrBytes         int64   `json:"virtnbdrestore_bytes,omitempty"`
	VnrError         string  `json:"virtnbdrestore_error,omitempty"`
	Ratios           Ratios  `json:"ratios"`
	Error            string  `json:"error,omitempty"`
}

// Run is one round of restores of the size's backup.
type Run struct {
	// ConvertSeconds: `qemu-img convert -O qcow2` of the backup file of vdb;
	// then fsync of the copy and `qemu-img compare` (knib does both).
	ConvertSeconds        float64 `json:"convert_seconds"`
	ConvertSyncSeconds    float64 `json:"convert_sync_seconds"`
	ConvertCompareSeconds float64 `json:"convert_compare_seconds"`
	// RestoreSeconds: `knib backup restore ID`, VM stopped.
	RestoreSeconds float64 `json:"knib_restore_seconds"`
	// UncheckedSeconds: the same restore with the hash check of the
	// backup files switched off (backup.restore.verify.hashes false).
	UncheckedSeconds float64 `json:"knib_restore_unchecked_seconds"`
	// RestoreOpSeconds: the restore operation's own duration.
	RestoreOpSeconds float64 `json:"knib_restore_operation_seconds"`
	// Plain start (the quick restore's baseline): libvirt starts the same
	// VM on its restored disks; until running and until the guest agent
	// answers.
	StartRunningSeconds float64 `json:"start_running_seconds"`
	StartAgentSeconds   float64 `json:"start_agent_seconds"`
	// Quick restore, from the command's start: the VM running, its guest
	// agent answering, the command returning (consolidated);
	// ConsolidationSeconds = QuickTotal - QuickRunning.
	QuickRunningSeconds  float64 `json:"quick_running_seconds"`
	QuickAgentSeconds    float64 `json:"quick_agent_seconds"`
	QuickTotalSeconds    float64 `json:"quick_total_seconds"`
	ConsolidationSeconds float64 `json:"consolidation_seconds"`
	// QuickOpSeconds: the quick restore operation's own duration.
	QuickOpSeconds float64 `json:"quick_operation_seconds"`
	// QuickPhases: when the CLI saw each progress message of the quick
	// restore, in seconds from the command's start.
	QuickPhases []Phase `json:"quick_phases,omitempty"`
}

// Phase is one progress message of an operation.
type Phase struct {
	Seconds float64 `json:"seconds"`
	Message string  `json:"message"`
	key     string
}

// Ratios of one size.
type Ratios struct {
	// CheckedOverUnchecked: a restore with the hash check over one without.
	CheckedOverUnchecked float64 `json:"checked_over_unchecked"`
	KnibOverConvert      float64 `json:"knib_over_convert"`
	KnibOverConvertFull  float64 `json:"knib_over_convert_sync_compare"`
	// KnibOverConvertSync is issue 17's figure: the restore, verification
	// included, over `qemu-img convert` + sync (target <= 1.3).
	KnibOverConvertSync float64 `json:"knib_over_convert_sync"`
	KnibOverVnr         float64 `json:"knib_over_virtnbdrestore,omitempty"`
	KnibOverVnrSync     float64 `json:"knib_over_virtnbdrestore_sync,omitempty"`
	// Quick restore over a plain start of the same VM.
	QuickOverStartRunning float64 `json:"quick_over_start_running"`
	QuickOverStartAgent   float64 `json:"quick_over_start_agent"`
	// QuickMinusStartRunning: time to running of the quick restore minus
	// the plain start's, seconds (issue 17's target: <= 0.2, flat in size).
	QuickMinusStartRunning float64 `json:"quick_minus_start_running_seconds"`
}

// Flatness: quick-restore times of the largest size over the smallest.
type Flatness struct {
	Big          int64   `json:"big_bytes"`
	Small        int64   `json:"small_bytes"`
	Running      float64 `json:"running_ratio"`
	Agent        float64 `json:"agent_ratio"`
	Consolidated float64 `json:"consolidation_ratio"`
	Restore      float64 `json:"normal_restore_ratio"`
}

func main() {
	var opts options
	sizes := flag.String("sizes", "1G,4G", "data sizes (size of the VM's second disk, filled), in order")
	flag.StringVar(&opts.fill, "fill", "hmp", "how vdb is filled: file (qemu-io on the stopped VM's qcow2) or hmp (HMP qemu-io in the running VM)")
	chunk := flag.String("chunk", "256M", "size of each write when filling; each write has its own pattern byte")
	flag.IntVar(&opts.reps, "reps", 1, "rounds of (convert, knib restore, quick restore) per size; the table shows medians")
	flag.BoolVar(&opts.cold, "cold", true, "sync and drop the page cache before each timed restore")
	flag.BoolVar(&opts.keep, "keep", false, "keep the VMs, the knib data directory and the backups")
	flag.BoolVar(&opts.json, "json", false, "print the results as JSON instead of a table")
	flag.Parse()
	usage := func(msg string) {
		fmt.Fprintln(os.Stderr, "restore:", msg)
		os.Exit(2)
	}
	if flag.NArg() != 0 {
		usage("no arguments expected")
	}
	for _, f := range strings.Split(*sizes, ",") {
		n, err := parseSize(f)
		if err != nil || n%mib != 0 {
			usage(fmt.Sprintf("-sizes: bad size %q (want e.g. 1G, 512M)", f))
		}
		opts.sizes = append(opts.sizes, n)
	}
	var err error
	if opts.chunk, err = parseSize(*chunk); err != nil || opts.chunk%mib != 0 {
		usage("-chunk: want a multiple of 1 MiB such as 256M")
	}
	if opts.fill != "file" && opts.fill != "hmp" {
		usage("-fill: want file or hmp")
	}
	if opts.reps < 1 {
		usage("-reps: want at least 1")
	}

	knibproc.Main("restore", 60*time.Minute, opts.json, func(ctx context.Context) (*Report, error) { return run(ctx, opts) }, printTable)
}

func logf(format string, args ...any) { knibproc.Logf(format, args...) }

// run does the whole benchmark; the report holds whatever was measured even
// when it returns an error.
func run(ctx context.Context, opts options) (rep *Report, err error) {
	rep = &Report{
		Machine:        knibproc.Machine(),
		When:           clock.Real{}.Now().UTC().Format(time.RFC3339),
		FirstDiskBytes: firstDisk,
		Fill:           opts.fill,
		ChunkBytes:     opts.chunk,
		ColdCache:      opts.cold,
		LoadAvg:        []string{report.LoadAvg()},
	}
	defer func() { rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg()) }()
	root, err := knibproc.Prepare()
	if err != nil {
		return rep, err
	}
	// QEMU (libvirt-qemu) reads the backup files during a quick restore:
	// every level of the data directory must be traversable.
	tmp, err := os.MkdirTemp("/var/tmp", "knib-bench-restore-")
	if err != nil {
		return rep, err
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		return rep, err
	}
	b := &bench{opts: opts, tmp: tmp}
	var vms []string
	defer func() {
		b.srv.Stop()
		if opts.keep {
			logf("-keep: leaving the VMs %s and %s", strings.Join(vms, ", "), tmp)
			if b.l != nil {
				b.l.Disconnect()
			}
			return
		}
		if b.l != nil {
			for _, name := range vms {
				if err := testbed.RemoveDomain(b.l, name); err != nil {
					logf("removing %s: %v", name, err)
				}
			}
			b.l.Disconnect()
		}
		os.RemoveAll(tmp)
		logf("cleaned up the VMs and %s", tmp)
	}()

	logf("building knib into %s", tmp)
	bin, err := knibproc.Build(ctx, root, tmp)
	if err != nil {
		return rep, err
	}
	dataDir := filepath.Join(tmp, "data")
	if err := os.Mkdir(dataDir, 0o711); err != nil {
		return rep, err
	}
	if b.srv, err = knibproc.Start(ctx, bin, dataDir, filepath.Join(filepath.Dir(dataDir), "server.log")); err != nil {
		return rep, err
	}
	b.storage = filepath.Join(dataDir, "storage")
	logf("knib server on %s, data %s", b.srv.URL, dataDir)
	if b.l, err = testbed.Dial(); err != nil {
		return rep, err
	}
	var off struct {
		ID string `json:"id"`
	}
	if err := b.srv.CLIJSON(ctx, &off, "offering", "create", "--name", "bench-restore", "--allow-quick-restore"); err != nil {
		return rep, err
	}
	b.offering = off.ID

	for _, size := range opts.sizes {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		row := &Row{DataBytes: size}
		rep.Rows = append(rep.Rows, row)
		vms = append(vms, vmName(size))
		if err := b.measure(ctx, row); err != nil {
			row.Error = err.Error()
			logf("%s: %v", report.HumanSize(size), err)
			if ctx.Err() != nil {
				return rep, err
			}
		}
		if !opts.keep {
			// Free the disk space before the next size.
			if err := testbed.RemoveDomain(b.l, vmName(size)); err != nil {
				logf("removing %s: %v", vmName(size), err)
			}
		}
	}
	rep.Flat = flatness(rep.Rows)
	var failed []string
	for _, r := range rep.Rows {
		if r.Error != "" {
			failed = append(failed, compact(r.DataBytes)+": "+r.Error)
		}
	}
	if len(failed) > 0 {
		return rep, errors.New(strings.Join(failed, "; "))
	}
	return rep, nil
}

// measure runs every step for one size.
func (b *bench) measure(ctx context.Context, row *Row) error {
	d, err := b.newVM(ctx, row.DataBytes, row)
	if err != nil {
		return err
	}
	bk, err := b.fullBackup(ctx, d, row)
	if err != nil {
		return err
	}
	src, err := bk.DiskFile(b.storage, "vdb")
	if err != nil {
		return err
	}
	for i := 0; i < b.opts.reps; i++ {
		var r Run
		err := func() error {
			if err := d.Destroy(ctx); err != nil {
				return err
			}
			// The baseline and knib's restore take turns at going first.
			steps := []func() error{
				func() error { return b.convert(ctx, d, src, &r) },
				func() error { return b.restore(ctx, d, bk.ID, &r) },
				func() error { return b.restoreUnchecked(ctx, d, bk.ID, &r) },
			}
			if i%2 == 1 {
				steps[0], steps[1], steps[2] = steps[2], steps[0], steps[1]
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return err
				}
			}
			if err := b.plainStart(ctx, d, &r); err != nil {
				return err
			}
			return b.quick(ctx, d, bk.ID, &r)
		}()
		if err != nil {
			return err
		}
		row.Runs = append(row.Runs, r)
		row.summarize()
	}
	if err := b.vnb(ctx, d, row); err != nil {
		row.VnrError = err.Error()
		logf("%s: virtnbdbackup/virtnbdrestore: %v", d.Name, err)
	}
	row.summarize()
	return nil
}

// summarize sets the row's medians and ratios.
func (row *Row) summarize() {
	if len(row.Runs) == 0 {
		return
	}
	med := func(f func(Run) float64) float64 {
		v := make([]float64, len(row.Runs))
		for i, r := range row.Runs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		m := len(v) / 2
		if len(v)%2 == 1 {
			return v[m]
		}
		return (v[m-1] + v[m]) / 2
	}
	row.Median = &Run{
		ConvertSeconds:        med(func(r Run) float64 { return r.ConvertSeconds }),
		ConvertSyncSeconds:    med(func(r Run) float64 { return r.ConvertSyncSeconds }),
		ConvertCompareSeconds: med(func(r Run) float64 { return r.ConvertCompareSeconds }),
		RestoreSeconds:        med(func(r Run) float64 { return r.RestoreSeconds }),
		UncheckedSeconds:      med(func(r Run) float64 { return r.UncheckedSeconds }),
		RestoreOpSeconds:      med(func(r Run) float64 { return r.RestoreOpSeconds }),
		QuickOpSeconds:        med(func(r Run) float64 { return r.QuickOpSeconds }),
		StartRunningSeconds:   med(func(r Run) float64 { return r.StartRunningSeconds }),
		StartAgentSeconds:     med(func(r Run) float64 { return r.StartAgentSeconds }),
		QuickRunningSeconds:   med(func(r Run) float64 { return r.QuickRunningSeconds }),
		QuickAgentSeconds:     med(func(r Run) float64 { return r.QuickAgentSeconds }),
		QuickTotalSeconds:     med(func(r Run) float64 { return r.QuickTotalSeconds }),
		ConsolidationSeconds:  med(func(r Run) float64 { return r.ConsolidationSeconds }),
	}
	m := row.Median
	row.Ratios = Ratios{
		CheckedOverUnchecked:   report.Ratio(m.RestoreSeconds, m.UncheckedSeconds),
		KnibOverConvert:        report.Ratio(m.RestoreSeconds, m.ConvertSeconds),
		KnibOverConvertFull:    report.Ratio(m.RestoreSeconds, m.ConvertSeconds+m.ConvertSyncSeconds+m.ConvertCompareSeconds),
		KnibOverConvertSync:    report.Ratio(m.RestoreSeconds, m.ConvertSeconds+m.ConvertSyncSeconds),
		QuickMinusStartRunning: m.QuickRunningSeconds - m.StartRunningSeconds,
		QuickOverStartRunning:  report.Ratio(m.QuickRunningSeconds, m.StartRunningSeconds),
		QuickOverStartAgent:    report.Ratio(m.QuickAgentSeconds, m.StartAgentSeconds),
	}
	if row.VnrSeconds > 0 {
		row.Ratios.KnibOverVnr = report.Ratio(m.RestoreSeconds, row.VnrSeconds)
		row.Ratios.KnibOverVnrSync = report.Ratio(m.RestoreSeconds, row.VnrSeconds+row.VnrSyncSeconds)
	}
}

// flatness compares the largest measured size with the smallest.
func flatness(rows []*Row) *Flatness {
	var small, big *Row
	for _, r := range rows {
		if r.Median == nil {
			continue
		}
		if small == nil || r.DataBytes < small.DataBytes {
			small = r
		}
		if big == nil || r.DataBytes > big.DataBytes {
			big = r
		}
	}
	if small == nil || small == big {
		return nil
	}
	s, g := small.Median, big.Median
	return &Flatness{
		Big: big.DataBytes, Small: small.DataBytes,
		Running:      report.Ratio(g.QuickRunningSeconds, s.QuickRunningSeconds),
		Agent:        report.Ratio(g.QuickAgentSeconds, s.QuickAgentSeconds),
		Consolidated: report.Ratio(g.ConsolidationSeconds, s.ConsolidationSeconds),
		Restore:      report.Ratio(g.RestoreSeconds, s.RestoreSeconds),
	}
}

func printTable(w io.Writer, rep *Report) {
	fmt.Fprintln(w, "knib restore of a full backup: normal restore vs qemu-img convert and virtnbdrestore; quick restore")
	how := "qemu-io on the stopped VM's qcow2"
	if rep.Fill == "hmp" {
		how = "HMP qemu-io in the running VM"
	}
	cache := "warm page cache"
	if rep.ColdCache {
		cache = "page cache dropped before each timed step"
	}
	fmt.Fprintf(w, "machine: %s; VM: vda %s blank + vdb = data size, filled with %s writes (%s); %s\n",
		rep.Machine, report.HumanSize(rep.FirstDiskBytes), report.HumanSize(rep.ChunkBytes), how, cache)
	fmt.Fprintf(w, "load average at start / end: %s\n\n", strings.Join(rep.LoadAvg, " / "))

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join([]string{"data", "knib backup s", "convert s", "+sync s", "+compare s",
		"knib restore s", "(op s)", "knib/convert", "knib/(conv+sync+cmp)",
		"vnrestore s", "+sync s", "knib/vnr", "knib/(vnr+sync)",
		"start running s", "start agent s", "quick running s", "quick agent s", "consolidation s", "(quick op s)"}, "\t")+"\t")
	for _, r := range rep.Rows {
		c := make([]string, 19)
		for i := range c {
			c[i] = "-"
		}
		c[0] = compact(r.DataBytes)
		if r.BackupSeconds > 0 {
			c[1] = report.F2(r.BackupSeconds)
		}
		if m := r.Median; m != nil {
			c[2], c[3], c[4] = report.F2(m.ConvertSeconds), report.F2(m.ConvertSyncSeconds), report.F2(m.ConvertCompareSeconds)
			c[5], c[6] = report.F2(m.RestoreSeconds), report.F2(m.RestoreOpSeconds)
			c[7], c[8] = report.F2(r.Ratios.KnibOverConvert), report.F2(r.Ratios.KnibOverConvertFull)
			c[13], c[14] = report.F2(m.StartRunningSeconds), report.F2(m.StartAgentSeconds)
			c[15], c[16], c[17], c[18] = report.F2(m.QuickRunningSeconds), report.F2(m.QuickAgentSeconds), report.F2(m.ConsolidationSeconds), report.F2(m.QuickOpSeconds)
		}
		if r.VnrSeconds > 0 {
			c[9], c[10] = report.F2(r.VnrSeconds), report.F2(r.VnrSyncSeconds)
			if r.Median != nil {
				c[11], c[12] = report.F2(r.Ratios.KnibOverVnr), report.F2(r.Ratios.KnibOverVnrSync)
			}
		}
		fmt.Fprintln(tw, strings.Join(c, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, line := range []string{
		"convert s: `qemu-img convert -O qcow2` of vdb's backup file into a new file next to the VM's disks; +sync, +compare:",
		"  fsync of that copy, then `qemu-img compare` of it with the backup (knib's restore does both).",
		"knib restore s: `knib backup restore ID -o json`, VM stopped (both disks); (op s): the operation's own duration,",
		"  without the CLI's start and polling.",
		"vnrestore s: `virtnbdrestore -i DIR -o OUTDIR` of a `virtnbdbackup -l full` of the same VM and data (both disks),",
		"  taken after knib's runs; +sync: fsync of the files it wrote (it does not fsync them itself).",
		"start running / agent s: the same VM on its restored disks started by libvirt (DomainCreate), until running /",
		"  until its guest agent answers: the floor for a quick restore.",
		"quick running / agent s: from the start of `knib backup restore ID --quick-restore` until libvirt reports the VM",
		"  running / until its guest agent answers guest-ping; consolidation s: from running until the command returns (block",
		"  pull done; checked: no backing file on backup storage); (quick op s): the operation's own duration.",
		"Medians of the rounds (-reps); one virtnbdbackup/virtnbdrestore per size.",
	} {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		if r.Median == nil {
			continue
		}
		vnr := "n/a"
		if r.VnrSeconds > 0 {
			vnr = report.F2(r.Ratios.KnibOverVnr) + " (with its fsync: " + report.F2(r.Ratios.KnibOverVnrSync) + ")"
		}
		fmt.Fprintf(w, "RATIO data=%s knib_restore/qemu-img_convert=%s knib_restore/(convert+sync+compare)=%s knib_restore/virtnbdrestore=%s\n",
			compact(r.DataBytes), report.F2(r.Ratios.KnibOverConvert), report.F2(r.Ratios.KnibOverConvertFull), vnr)
		fmt.Fprintf(w, "RATIO data=%s knib_restore/(convert+sync)=%s (%s s / %s s)\n",
			compact(r.DataBytes), report.F2(r.Ratios.KnibOverConvertSync), report.F2(r.Median.RestoreSeconds), report.F2(r.Median.ConvertSeconds+r.Median.ConvertSyncSeconds))
		fmt.Fprintf(w, "TARGET data=%s knib_restore/(convert+sync) %s (target <= 1.3, verification kept); quick_restore-plain_start time_to_running %+.2f s (target <= +0.2 s)\n",
			compact(r.DataBytes), report.F2(r.Ratios.KnibOverConvertSync), r.Ratios.QuickMinusStartRunning)
		fmt.Fprintf(w, "RATIO data=%s knib_restore_with_hash_check/without=%s (%s s / %s s)\n",
			compact(r.DataBytes), report.F2(r.Ratios.CheckedOverUnchecked), report.F2(r.Median.RestoreSeconds), report.F2(r.Median.UncheckedSeconds))
		fmt.Fprintf(w, "RATIO data=%s quick_restore/plain_start time_to_running=%s time_to_guest_agent=%s\n",
			compact(r.DataBytes), report.F2(r.Ratios.QuickOverStartRunning), report.F2(r.Ratios.QuickOverStartAgent))
	}
	if f := rep.Flat; f != nil {
		over := map[int64]float64{}
		for _, r := range rep.Rows {
			if r.Median != nil {
				over[r.DataBytes] = r.Ratios.QuickMinusStartRunning
			}
		}
		fmt.Fprintf(w, "TARGET quick_restore-plain_start time_to_running %s %+.2f s, %s %+.2f s (target <= +0.2 s at both: flat in size)\n",
			compact(f.Small), over[f.Small], compact(f.Big), over[f.Big])
	}
	if f := rep.Flat; f != nil {
		fmt.Fprintf(w, "RATIO quick_restore %s/%s time_to_running=%s time_to_guest_agent=%s (consolidation %s, normal restore %s)\n",
			compact(f.Big), compact(f.Small), report.F2(f.Running), report.F2(f.Agent), report.F2(f.Consolidated), report.F2(f.Restore))
	}
	for _, r := range rep.Rows {
		if r.VnrError != "" {
			fmt.Fprintf(w, "NOTE data=%s virtnbdbackup/virtnbdrestore did not run: %s\n", compact(r.DataBytes), r.VnrError)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "NOTE data=%s failed: %s\n", compact(r.DataBytes), r.Error)
		}
	}
}

// parseSize reads 8G, 512M, 1024K or a byte count.
func parseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	for suffix, m := range map[string]int64{"K": 1 << 10, "M": mib, "G": gib, "T": gib << 10} {
		if strings.HasSuffix(t, suffix) {
			mult, t = m, strings.TrimSuffix(t, suffix)
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

func compact(n int64) string {
	return strings.ReplaceAll(strings.ReplaceAll(report.HumanSize(n), " GiB", "G"), " MiB", "M")
}
