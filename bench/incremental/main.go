// Command incremental measures knib's incremental backup of a running VM
// against virtnbdbackup (dirty bitmaps and checkpoints) and against the
// floor of copying the changed bytes with cp, for N MiB changed since the
// last backup, and checks that knib's time does not grow with the disk size.
//
//	go run ./bench/incremental [-sizes 10,100,500] [-disk 2G] [-bigdisk 8G] [-reps 3] [-busy-reps 3] [-chunk 4M] [-keep] [-json]
//
// The guest I/O freeze is the span of the snapshot's QMP transaction
// (monitortrace), measured on every backup and, at the end, on -busy-reps
// backups taken while the guest writes with O_DIRECT.
//
// It needs root, a running libvirtd (bash scripts/setup.sh) and the test
// guest. It creates three test VMs with a small blank first disk and an
// unformatted second disk (-disk, -disk, -bigdisk), starts its own
// all-in-one knib server on a temporary data directory and a free port, and
// removes everything at the end unless -keep. See bench/README.md.
package main

import (
	"context"
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

// VM names: test domains live under testbed.ImagesDir/<name>.
const (
	vmKnib = "knib-bench-incr-knib"
	vmVnb  = "knib-bench-incr-vnb"
	vmBig  = "knib-bench-incr-big"

	firstDisk = 32 << 20 // vda: small, blank
	dataDisk  = 1        // vdb: where the changes are written
)

type options struct {
	sizesMiB []int64
	disk     int64
	bigDisk  int64 // 0: skip the big-disk VM
	chunk    int64
	reps     int
	busyReps int // backups while the guest writes, for the freeze
	keep     bool
	json     bool
}

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine        string  `json:"machine"`
	When           string  `json:"when"`
	FirstDiskBytes int64   `json:"first_disk_bytes"`
	DiskBytes      int64   `json:"disk_bytes"`
	BigDiskBytes   int64   `json:"big_disk_bytes,omitempty"`
	ChunkBytes     int64   `json:"chunk_bytes"`
	KnibFull       float64 `json:"knib_full_seconds"`
	KnibBigFull    float64 `json:"knib_big_full_seconds,omitempty"`
	VnbFull        float64 `json:"virtnbdbackup_full_seconds,omitempty"`
	// VnbError says why virtnbdbackup numbers are missing, when they are.
	VnbError string `json:"virtnbdbackup_error,omitempty"`
	// BigError says why the big-disk numbers are missing, when they are.
	BigError string `json:"big_disk_error,omitempty"`
	// KnibError is knib's own failure on the main VM, if any.
	KnibError string `json:"knib_error,omitempty"`
	// LoadAvg is /proc/loadavg at the start and at the end: other guests
	// or tests running on the machine show here.
	LoadAvg []string `json:"loadavg"`
	Rows    []Row    `json:"rows"`
	// Busy: the freeze of backups taken while the guest writes.
	Busy      *BusyFreeze `json:"while_the_guest_writes,omitempty"`
	BusyError string      `json:"while_the_guest_writes_error,omitempty"`
}

// Row is one N: the medians of Reps rounds of "write N MiB, back up".
type Row struct {
	ChangedMiB int64 `json:"changed_mib"`
	Reps       int   `json:"reps"`
	// Knib: `knib backup create VM -o json` on the -disk VM.
	Knib *KnibResult `json:"knib,omitempty"`
	// Vnb: `virtnbdbackup -l inc` on the twin VM.
	Vnb *VnbResult `json:"virtnbdbackup,omitempty"`
	// FloorSeconds: cp of N MiB plus sync of the copy.
	FloorSeconds float64 `json:"floor_seconds"`
	// KnibBig: knib on the -bigdisk VM.
	KnibBig *KnibResult `json:"knib_big_disk,omitempty"`
	Ratios  Ratios      `json:"ratios"`
	// Runs are the rounds the medians come from.
	Runs []Run `json:"runs"`
}

// Run is one round: N MiB written into each VM, then each backed up.
type Run struct {
	Knib         *KnibResult `json:"knib,omitempty"`
	Vnb          *VnbResult  `json:"virtnbdbackup,omitempty"`
	FloorSeconds float64     `json:"floor_seconds"`
	KnibBig      *KnibResult `json:"knib_big_disk,omitempty"`
	// BigFirst: the big-disk VM was backed up before the -disk one.
	BigFirst bool `json:"big_disk_first,omitempty"`
}

// KnibResult is one knib incremental backup.
type KnibResult struct {
	// Seconds is the wall time of the CLI call (the brief's number); the
	// CLI polls the operation with a backoff of 0.1, 0.2, 0.4, 0.8 then 1 s,
	// so it can overshoot the operation by up to a second.
	Seconds float64 `json:"seconds"`
	// OperationSeconds is the server-side duration of the operation.
	OperationSeconds float64 `json:"operation_seconds"`
	// BeforeOperationSeconds: from the CLI's start to the operation's
	// creation; AfterOperationSeconds: from its end to the CLI's exit.
	BeforeOperationSeconds float64 `json:"before_operation_seconds"`
	AfterOperationSeconds  float64 `json:"after_operation_seconds"`
	FreezeSeconds          float64 `json:"freeze_seconds"`
	// HeldSeconds: how long QEMU held the guest's I/O, the span of the
	// snapshot's QMP transaction (libvirtd's monitor trace, 1 ms
	// resolution); FreezeSeconds is the whole libvirt snapshot call.
	HeldSeconds float64 `json:"io_held_seconds"`
	// PhaseSeconds are the operation result's phases (snapshot, copy,
	// fsync; merge when it ran inside the backup).
	PhaseSeconds map[string]float64 `json:"phase_seconds,omitempty"`
	// MergeAfterSeconds: from the CLI's exit until the VM is free again
	// (the merge that follows the backup); not part of Seconds.
	MergeAfterSeconds float64 `json:"merge_after_seconds"`
	BackupBytes       int64   `json:"backup_bytes"`
	BackupID          string  `json:"backup_id,omitempty"`
}

func knibResult(r backupRun) *KnibResult {
	return &KnibResult{Seconds: r.Seconds, OperationSeconds: r.OpSeconds, BeforeOperationSeconds: r.PreSeconds,
		AfterOperationSeconds: r.PostSeconds, FreezeSeconds: r.Freeze, HeldSeconds: r.Held, PhaseSeconds: r.Phases, MergeAfterSeconds: r.MergeAfter,
		BackupBytes: r.Backup.Size, BackupID: r.Backup.ID}
}

// VnbResult is one virtnbdbackup incremental backup.
type VnbResult struct {
	Seconds     float64 `json:"seconds"`
	SyncSeconds float64 `json:"fsync_seconds"`
	DataBytes   int64   `json:"data_bytes"`
}

// Ratios compare knib with the baselines measured in the same run (0 when a
// side is missing).
type Ratios struct {
	KnibOverVnb      float64 `json:"knib_over_virtnbdbackup,omitempty"`
	KnibOverVnbFsync float64 `json:"knib_over_virtnbdbackup_with_fsync,omitempty"`
	KnibOverFloor    float64 `json:"knib_over_floor,omitempty"`
	// KnibOpOverVnb and KnibOpOverFloor use knib's operation time, free of
	// the CLI's polling steps.
	KnibOpOverVnb   float64 `json:"knib_operation_over_virtnbdbackup,omitempty"`
	KnibOpOverFloor float64 `json:"knib_operation_over_floor,omitempty"`
	BigOverSmall    float64 `json:"knib_big_over_small,omitempty"`
	// BigOverSmallOp is the same on the operations' own durations, free of
	// the CLI's polling steps.
	BigOverSmallOp float64 `json:"knib_big_over_small_operation,omitempty"`
}

// summarize sets the row's medians and ratios from its runs.
func (row *Row) summarize() {
	var knib, big []KnibResult
	var vnb []VnbResult
	var floor []float64
	for _, r := range row.Runs {
		if r.Knib != nil {
			knib = append(knib, *r.Knib)
		}
		if r.KnibBig != nil {
			big = append(big, *r.KnibBig)
		}
		if r.Vnb != nil {
			vnb = append(vnb, *r.Vnb)
		}
		floor = append(floor, r.FloorSeconds)
	}
	row.Knib, row.KnibBig = medianKnib(knib), medianKnib(big)
	if len(vnb) > 0 {
		row.Vnb = &VnbResult{
			Seconds:     medianBy(vnb, func(v VnbResult) float64 { return v.Seconds }),
			SyncSeconds: medianBy(vnb, func(v VnbResult) float64 { return v.SyncSeconds }),
			DataBytes:   int64(medianBy(vnb, func(v VnbResult) float64 { return float64(v.DataBytes) })),
		}
	}
	row.FloorSeconds = report.Median(floor)
	row.Ratios = Ratios{}
	if row.Knib == nil {
		return
	}
	row.Ratios.KnibOverFloor = report.Ratio(row.Knib.Seconds, row.FloorSeconds)
	row.Ratios.KnibOpOverFloor = report.Ratio(row.Knib.OperationSeconds, row.FloorSeconds)
	if row.Vnb != nil {
		row.Ratios.KnibOverVnb = report.Ratio(row.Knib.Seconds, row.Vnb.Seconds)
		row.Ratios.KnibOpOverVnb = report.Ratio(row.Knib.OperationSeconds, row.Vnb.Seconds)
		row.Ratios.KnibOverVnbFsync = report.Ratio(row.Knib.Seconds, row.Vnb.Seconds+row.Vnb.SyncSeconds)
	}
	if row.KnibBig != nil {
		row.Ratios.BigOverSmall = report.Ratio(row.KnibBig.Seconds, row.Knib.Seconds)
		row.Ratios.BigOverSmallOp = report.Ratio(row.KnibBig.OperationSeconds, row.Knib.OperationSeconds)
	}
}

func medianKnib(rs []KnibResult) *KnibResult {
	if len(rs) == 0 {
		return nil
	}
	phases := map[string]float64{}
	for _, r := range rs {
		for p := range r.PhaseSeconds {
			phases[p] = medianBy(rs, func(r KnibResult) float64 { return r.PhaseSeconds[p] })
		}
	}
	return &KnibResult{
		PhaseSeconds:           phases,
		MergeAfterSeconds:      medianBy(rs, func(r KnibResult) float64 { return r.MergeAfterSeconds }),
		Seconds:                medianBy(rs, func(r KnibResult) float64 { return r.Seconds }),
		OperationSeconds:       medianBy(rs, func(r KnibResult) float64 { return r.OperationSeconds }),
		BeforeOperationSeconds: medianBy(rs, func(r KnibResult) float64 { return r.BeforeOperationSeconds }),
		AfterOperationSeconds:  medianBy(rs, func(r KnibResult) float64 { return r.AfterOperationSeconds }),
		FreezeSeconds:          medianBy(rs, func(r KnibResult) float64 { return r.FreezeSeconds }),
		HeldSeconds:            medianBy(rs, func(r KnibResult) float64 { return r.HeldSeconds }),
		BackupBytes:            int64(medianBy(rs, func(r KnibResult) float64 { return float64(r.BackupBytes) })),
	}
}

// medianBy is the median of f over xs (report.Median of the projections).
func medianBy[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	return report.Median(v)
}

func main() {
	var opts options
	sizes := flag.String("sizes", "10,100,500", "MiB changed before each incremental backup, in order")
	disk := flag.String("disk", "2G", "size of the second disk of the knib and virtnbdbackup VMs")
	big := flag.String("bigdisk", "8G", "size of the second disk of the big-disk knib VM (0 to skip)")
	chunk := flag.String("chunk", "4M", "size of each write")
	flag.IntVar(&opts.reps, "reps", 3, "rounds per size (write N MiB, back up); the table shows medians")
	flag.IntVar(&opts.busyReps, "busy-reps", 3, "incremental backups while the guest writes, for the guest I/O freeze (0 to skip)")
	flag.BoolVar(&opts.keep, "keep", false, "keep the VMs, the knib data directory and the backups")
	flag.BoolVar(&opts.json, "json", false, "print the results as JSON instead of a table")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "incremental: no arguments expected")
		os.Exit(2)
	}
	if opts.reps < 1 {
		fmt.Fprintln(os.Stderr, "incremental: -reps: want at least 1")
		os.Exit(2)
	}
	var err error
	for _, f := range strings.Split(*sizes, ",") {
		n, perr := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if perr != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "incremental: -sizes: bad MiB count %q\n", f)
			os.Exit(2)
		}
		opts.sizesMiB = append(opts.sizesMiB, n)
	}
	if opts.disk, err = parseSize(*disk); err != nil {
		fmt.Fprintln(os.Stderr, "incremental: -disk:", err)
		os.Exit(2)
	}
	if strings.TrimSpace(*big) != "0" && *big != "" {
		if opts.bigDisk, err = parseSize(*big); err != nil {
			fmt.Fprintln(os.Stderr, "incremental: -bigdisk:", err)
			os.Exit(2)
		}
	}
	if opts.chunk, err = parseSize(*chunk); err != nil || opts.chunk%512 != 0 {
		fmt.Fprintln(os.Stderr, "incremental: -chunk: want a multiple of 512 bytes such as 4M")
		os.Exit(2)
	}

	knibproc.Main("incremental", 30*time.Minute, opts.json, func(ctx context.Context) (*Report, error) { return run(ctx, opts) }, printTable)
}

func logf(format string, args ...any) { knibproc.Logf(format, args...) }

// run does the whole benchmark; the report holds whatever was measured even
// when it returns an error.
func run(ctx context.Context, opts options) (rep *Report, err error) {
	rep = &Report{
		Machine:        knibproc.Machine(),
		When:           clock.Real{}.Now().UTC().Format(time.RFC3339),
		FirstDiskBytes: firstDisk,
		DiskBytes:      opts.disk,
		BigDiskBytes:   opts.bigDisk,
		ChunkBytes:     opts.chunk,
	}
	rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg())
	defer func() { rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg()) }()
	root, err := knibproc.Prepare()
	if err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("", "knib-bench-incremental-")
	if err != nil {
		return rep, err
	}
	var cleanups []func()
	defer func() {
		if opts.keep {
			logf("-keep: leaving the VMs and %s", tmp)
			return
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
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
	srv, err := startServer(ctx, bin, dataDir)
	if err != nil {
		return rep, err
	}
	defer srv.Stop() // before the VMs go (deferred after the cleanups)
	logf("knib server on %s, data %s", srv.URL, dataDir)

	l, err := testbed.Dial()
	if err != nil {
		return rep, err
	}
	// The first cleanup registered, so the last to run: the VMs are removed
	// through this connection.
	cleanups = append(cleanups, func() { l.Disconnect() })

	newVM := func(name string, size int64) (*testbed.Domain, error) {
		cleanups = append(cleanups, func() {
			if err := testbed.RemoveDomain(l, name); err != nil {
				logf("removing %s: %v", name, err)
			}
		})
		start := clock.Real{}.Now()
		d, err := testbed.CreateDomain(ctx, l, testbed.DomainOptions{
			Name: name, DiskSizes: []int64{firstDisk, size}, Start: true, NoFormat: true,
		})
		if err != nil {
			return nil, err
		}
		logf("VM %s up (vda %s blank, vdb %s) in %.1f s", name, report.HumanSize(firstDisk), report.HumanSize(size), clock.Since(clock.Real{}, start).Seconds())
		return d, nil
	}

	// The three VMs: knib on -disk, virtnbdbackup on an identical twin,
	// knib on -bigdisk.
	knibVM, err := newVM(vmKnib, opts.disk)
	if err != nil {
		return rep, err
	}
	var vnbVM, bigVM *testbed.Domain
	vnb, verr := newVirtnbdbackup(filepath.Join(tmp, "virtnbdbackup"), tmp)
	if verr == nil {
		vnbVM, verr = newVM(vmVnb, opts.disk)
	}
	if verr != nil {
		rep.VnbError = verr.Error()
		logf("virtnbdbackup cannot run: %v", verr)
	}
	if opts.bigDisk > 0 {
		if bigVM, err = newVM(vmBig, opts.bigDisk); err != nil {
			rep.BigError = err.Error()
			logf("big-disk VM: %v", err)
			bigVM = nil
		}
	}

	// knib: an offering with unlimited chains, the VMs assigned, a full
	// backup each.
	var off struct {
		ID string `json:"id"`
	}
	if err := srv.CLIJSON(ctx, &off, "offering", "create", "--name", "bench-incremental", "--backup-chain-size", "0"); err != nil {
		return rep, err
	}
	if _, err := srv.CLI(ctx, "host", "refresh"); err != nil {
		return rep, err
	}
	for _, d := range []*testbed.Domain{knibVM, bigVM} {
		if d == nil {
			continue
		}
		if _, err := srv.CLI(ctx, "vm", "assign", d.Name, "--offering", off.ID); err != nil {
			return rep, err
		}
	}
	full, err := srv.timedBackup(ctx, vmKnib, "full")
	if err != nil {
		return rep, fmt.Errorf("knib full backup: %w", err)
	}
	rep.KnibFull = full.Seconds
	logf("knib full backup of %s: %.2f s", vmKnib, full.Seconds)
	if bigVM != nil {
		full, err := srv.timedBackup(ctx, vmBig, "full")
		if err != nil {
			rep.BigError = "knib full backup: " + err.Error()
			logf("big-disk VM: %s", rep.BigError)
			bigVM = nil
		} else {
			rep.KnibBigFull = full.Seconds
			logf("knib full backup of %s: %.2f s", vmBig, full.Seconds)
		}
	}
	if vnbVM != nil {
		r, err := vnb.run(ctx, vmVnb, "full")
		if err != nil {
			rep.VnbError = "full backup: " + err.Error()
			logf("virtnbdbackup: %s", rep.VnbError)
			vnbVM = nil
		} else {
			rep.VnbFull = r.Seconds
			logf("virtnbdbackup full backup of %s: %.2f s", vmVnb, r.Seconds)
		}
	}

	storage := filepath.Join(dataDir, "storage")
	idx := 0 // rounds so far: pattern byte, write shift, order
	for _, n := range opts.sizesMiB {
		row := Row{ChangedMiB: n, Reps: opts.reps}
		err := func() error {
			for i := 0; i < opts.reps; i++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				r := Run{BigFirst: bigVM != nil && idx%2 == 1}
				p := byte(0xa1 + idx%64)
				plan, err := writePlan(n*mib, opts.disk, opts.chunk, idx)
				if err != nil {
					return err
				}
				// The same writes, in the same order, on the knib VM and its
				// twin; the big-disk VM gets as many writes spread over its disk.
				start := clock.Real{}.Now()
				if err := writeDisk(ctx, knibVM, dataDisk, p, plan); err != nil {
					return err
				}
				logf("N=%d MiB (%d/%d): wrote %d chunks (pattern 0x%02x) into %s in %.1f s", n, i+1, opts.reps, len(plan), p, vmKnib, clock.Since(clock.Real{}, start).Seconds())
				if vnbVM != nil {
					if err := writeDisk(ctx, vnbVM, dataDisk, p, plan); err != nil {
						return err
					}
				}
				if bigVM != nil {
					bigPlan, err := writePlan(n*mib, opts.bigDisk, opts.chunk, idx)
					if err != nil {
						return err
					}
					if err := writeDisk(ctx, bigVM, dataDisk, p, bigPlan); err != nil {
						return err
					}
				}
				idx++

				// knib on the big disk runs first in every other round, so
				// that neither knib VM always pays for coming first.
				big := func() {
					if bigVM == nil {
						return
					}
					knibproc.Settle(ctx, false)
					b, err := srv.timedBackup(ctx, vmBig, "incremental")
					if err != nil {
						rep.BigError = fmt.Sprintf("incremental after %d MiB: %v", n, err)
						logf("big-disk VM: %s", rep.BigError)
						bigVM = nil
						return
					}
					r.KnibBig = knibResult(b)
					logf("N=%d MiB: knib incremental on the %s disk %.2f s (%.2f s before the operation, operation %.2f s, %.2f s after; freeze %.3f s)", n, report.HumanSize(opts.bigDisk), b.Seconds, b.PreSeconds, b.OpSeconds, b.PostSeconds, b.Freeze)
				}
				if r.BigFirst {
					big()
				}
				knibproc.Settle(ctx, false)
				k, err := srv.timedBackup(ctx, vmKnib, "incremental")
				if err != nil {
					rep.KnibError = err.Error()
					return fmt.Errorf("knib incremental backup after %d MiB: %w", n, err)
				}
				r.Knib = knibResult(k)
				logf("N=%d MiB: knib incremental %.2f s (%.2f s before the operation, operation %.2f s, %.2f s after; freeze %.3f s, I/O held %.3f s, %s stored; phases %s; merge after it %.2f s)", n, k.Seconds, k.PreSeconds, k.OpSeconds, k.PostSeconds, k.Freeze, k.Held, report.MiB(k.Backup.Size), phaseList(k.Phases), k.MergeAfter)
				if !r.BigFirst {
					big()
				}

				if vnbVM != nil {
					knibproc.Settle(ctx, false)
					v, err := vnb.run(ctx, vmVnb, "inc")
					if err != nil {
						rep.VnbError = fmt.Sprintf("incremental after %d MiB: %v", n, err)
						logf("virtnbdbackup: %s", rep.VnbError)
						vnbVM = nil
					} else {
						r.Vnb = &VnbResult{Seconds: v.Seconds, SyncSeconds: v.SyncSeconds, DataBytes: v.Bytes}
						logf("N=%d MiB: virtnbdbackup incremental %.2f s (+%.2f s fsync, %s data)", n, v.Seconds, v.SyncSeconds, report.MiB(v.Bytes))
					}
				}

				knibproc.Settle(ctx, false)
				if r.FloorSeconds, err = floorCopy(ctx, tmp, storage, n*mib, p, idx); err != nil {
					return err
				}
				logf("N=%d MiB: floor cp+sync %.2f s", n, r.FloorSeconds)
				row.Runs = append(row.Runs, r)
			}
			return nil
		}()
		if len(row.Runs) > 0 {
			row.summarize()
			rep.Rows = append(rep.Rows, row)
		}
		if err != nil {
			return rep, err
		}
	}
	if opts.busyReps > 0 {
		knibproc.Settle(ctx, false)
		if rep.Busy, err = busyFreeze(ctx, srv, knibVM, opts.busyReps); err != nil {
			rep.BusyError = err.Error()
			logf("while the guest writes: %v", err)
		}
	}
	return rep, nil
}

func printTable(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "knib incremental backup of a running VM, N MiB changed since the last backup\n")
	fmt.Fprintf(w, "machine: %s; disks: vda %s blank + vdb %s", rep.Machine, report.HumanSize(rep.FirstDiskBytes), report.HumanSize(rep.DiskBytes))
	if rep.BigDiskBytes > 0 {
		fmt.Fprintf(w, " (big-disk VM: vdb %s)", report.HumanSize(rep.BigDiskBytes))
	}
	fmt.Fprintf(w, "; writes of %s through HMP qemu-io\n", report.HumanSize(rep.ChunkBytes))
	if len(rep.Rows) > 0 {
		fmt.Fprintf(w, "medians of %d rounds per N; load average at start and end: %s\n", rep.Rows[0].Reps, strings.Join(rep.LoadAvg, " / "))
	}
	fmt.Fprintf(w, "full backups first: knib %.2f s", rep.KnibFull)
	if rep.VnbFull > 0 {
		fmt.Fprintf(w, ", virtnbdbackup %.2f s", rep.VnbFull)
	}
	if rep.KnibBigFull > 0 {
		fmt.Fprintf(w, ", knib on %s %.2f s", report.HumanSize(rep.BigDiskBytes), rep.KnibBigFull)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	big, bigRatio := "knib big s", "big/small"
	if rep.BigDiskBytes > 0 {
		big = "knib " + compact(rep.BigDiskBytes) + " s"
		bigRatio = compact(rep.BigDiskBytes) + "/" + compact(rep.DiskBytes)
	}
	fmt.Fprintf(tw, "N MiB\tknib s\t(op s)\tfreeze s\theld s\tknib stored\tvnb s\tvnb fsync s\tfloor s\tknib/vnb\tknib/(vnb+fsync)\tknib/floor\t%s\t(op s)\t%s\t\n",
		big, bigRatio)
	dash := "-"
	for _, r := range rep.Rows {
		cols := []string{strconv.FormatInt(r.ChangedMiB, 10), dash, dash, dash, dash, dash, dash, dash, report.F2(r.FloorSeconds), dash, dash, dash, dash, dash, dash}
		if r.Knib != nil {
			cols[1], cols[2], cols[3], cols[4], cols[5] = report.F2(r.Knib.Seconds), report.F2(r.Knib.OperationSeconds), report.F3(r.Knib.FreezeSeconds), report.F3(r.Knib.HeldSeconds), report.MiB(r.Knib.BackupBytes)
			cols[11] = report.F2(r.Ratios.KnibOverFloor)
		}
		if r.Vnb != nil {
			cols[6], cols[7] = report.F2(r.Vnb.Seconds), report.F2(r.Vnb.SyncSeconds)
			cols[9], cols[10] = report.F2(r.Ratios.KnibOverVnb), report.F2(r.Ratios.KnibOverVnbFsync)
		}
		if r.KnibBig != nil {
			cols[12], cols[13], cols[14] = report.F2(r.KnibBig.Seconds), report.F2(r.KnibBig.OperationSeconds), report.F2(r.Ratios.BigOverSmall)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "knib s: wall time of `knib backup create VM -o json` (waits for the operation); (op s): the operation's own")
	fmt.Fprintln(w, "duration; freeze s: its result.freeze_seconds, the libvirt snapshot call; held s: the guest's I/O held, the")
	fmt.Fprintln(w, "span of that call's QMP transaction (libvirtd's monitor trace); vnb s: `virtnbdbackup -l inc`; vnb fsync s: fsync of the files")
	fmt.Fprintln(w, "virtnbdbackup wrote, which it does not do itself (knib does); floor s: cp of N MiB then sync of the copy.")
	fmt.Fprintln(w)
	for _, r := range rep.Rows {
		if r.Knib == nil {
			continue
		}
		vnb := "n/a"
		if r.Vnb != nil {
			vnb = report.F2(r.Ratios.KnibOverVnb) + " (operation: " + report.F2(r.Ratios.KnibOpOverVnb) + ")"
		}
		bigRatio := "n/a"
		if r.KnibBig != nil {
			bigRatio = report.F2(r.Ratios.BigOverSmall) + " (operations: " + report.F2(r.Ratios.BigOverSmallOp) + ")"
		}
		fmt.Fprintf(w, "RATIO N=%dMiB knib/virtnbdbackup=%s knib/floor=%s (operation: %s) knib_%s/knib_%s=%s\n", r.ChangedMiB, vnb,
			report.F2(r.Ratios.KnibOverFloor), report.F2(r.Ratios.KnibOpOverFloor), compact(rep.BigDiskBytes), compact(rep.DiskBytes), bigRatio)
		fmt.Fprintf(w, "TARGET N=%dMiB knib/virtnbdbackup %s (target %s); knib/floor %s (target <= 1.5); big/small %s (target 0.9-1.1); guest I/O freeze %s s (target <= 0.030; the libvirt snapshot call around it %s s); phases %s; merge after the backup %s s\n",
			r.ChangedMiB, report.F2(r.Ratios.KnibOverVnb), vnbTarget(r.ChangedMiB), report.F2(r.Ratios.KnibOverFloor), report.F2(r.Ratios.BigOverSmall),
			report.F3(r.Knib.HeldSeconds), report.F3(r.Knib.FreezeSeconds), phaseList(r.Knib.PhaseSeconds), report.F2(r.Knib.MergeAfterSeconds))
	}
	if b := rep.Busy; b != nil {
		fmt.Fprintf(w, "TARGET while the guest writes (O_DIRECT to vda, %d MiB over %d backups): guest I/O freeze %s s, longest %s s (target <= 0.030); the libvirt snapshot call around it %s s\n",
			b.WrittenMiB, b.Reps, report.F3(b.HeldSeconds), report.F3(b.MaxHeldSeconds), report.F3(b.FreezeSeconds))
	}
	for _, e := range []struct{ what, msg string }{
		{"while the guest writes", rep.BusyError},
		{"virtnbdbackup did not run", rep.VnbError},
		{"big-disk VM", rep.BigError},
		{"knib failed", rep.KnibError},
	} {
		if e.msg != "" {
			fmt.Fprintf(w, "NOTE %s: %s\n", e.what, e.msg)
		}
	}
}

// vnbTarget is issue 17's target for knib/virtnbdbackup at n MiB changed.
func vnbTarget(n int64) string {
	switch {
	case n <= 100:
		return "<= 0.5"
	case n <= 500:
		return "<= 0.6"
	}
	return "none set"
}

// phaseList prints phases as "copy 0.12 fsync 0.03 ...", sorted by name.
func phaseList(p map[string]float64) string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s %.3f", n, p[n])
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

func compact(n int64) string {
	return strings.ReplaceAll(strings.ReplaceAll(report.HumanSize(n), " GiB", "G"), " MiB", "M")
}
