// Command files measures knib's file-level restore: the first listing of a
// backup's file system (which boots the libguestfs helper) against a plain
// boot of the test guest, the listings that follow in the same session
// (the helper already running), and the extraction of a 1 GiB file as a
// tar against `qemu-img convert` of the same backup file to raw.
//
//	go run ./bench/files [-reps 1] [-listings 5] [-cold=true] [-json] [-keep]
//
// It needs root, a running libvirtd (bash scripts/setup.sh), the test guest
// and the libguestfs environment (/var/cache/knib/gfk/env). It creates one
// test VM whose second disk is a GPT disk with one ext4 partition holding a
// 1 GiB file, starts its own all-in-one knib server on a data directory
// under /var/tmp and a free port, and removes everything at the end unless
// -keep. See bench/README.md.
package main

import (
	"context"
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
	gib = int64(1) << 30
	// bigFile is the file the extraction reads, bigSize its size.
	bigFile = "/big/file"
	bigSize = gib
	// volume is the ext4 partition holding it, volumeMiB its size.
	volume    = "vdb1"
	volumeMiB = 1200
	vmName    = "knib-bench-files"

	// The targets.
	targetSecondListing   = 0.5 // seconds, at most
	targetExtractOverConv = 0.5 // throughput ratio, at least
)

type options struct {
	reps     int
	listings int
	cold     bool
	keep     bool
	json     bool
}

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine string `json:"machine"`
	When    string `json:"when"`
	// LoadAvg is /proc/loadavg at the start and at the end.
	LoadAvg   []string `json:"loadavg"`
	ColdCache bool     `json:"cold_cache"`
	// Disk describes vdb; BuildSeconds is testbed.BuildDisk's time (not a
	// figure, shown for the run's length).
	Disk         string  `json:"disk"`
	BuildSeconds float64 `json:"build_disk_seconds"`
	BackupID     string  `json:"backup_id,omitempty"`
	BackupBytes  int64   `json:"backup_bytes,omitempty"`
	// BackupSeconds: `knib backup create VM` (full, VM running).
	BackupSeconds float64 `json:"knib_full_backup_seconds,omitempty"`
	// BackupFile is vdb's file in the backup storage, the convert's input.
	BackupFile string `json:"backup_vdb_file,omitempty"`

	// Boots: the test VM started by libvirt (DomainCreate) from stopped,
	// until its guest agent answers guest-ping, each round; Boot their
	// median.
	Boots []float64 `json:"plain_boot_seconds"`
	Boot  float64   `json:"plain_boot_median_seconds"`
	// FirstListing: the first `knib backup files B / --disk vdb1`, which
	// boots the helper.
	FirstListing  float64 `json:"first_listing_seconds"`
	FirstEntries  int     `json:"first_listing_entries"`
	FirstOverBoot float64 `json:"first_listing_over_plain_boot"`
	// Listings: the calls that follow, the helper running.
	Listings []*Listing `json:"second_listings"`

	// Extracts and Converts: each round; Extract and Convert the medians.
	Extracts []Transfer `json:"extracts"`
	Converts []Transfer `json:"converts"`
	Extract  *Transfer  `json:"extract_median,omitempty"`
	Convert  *Transfer  `json:"convert_median,omitempty"`
	// ExtractOverConvert: extract's throughput over convert's (both with
	// their sync); TimeOverConvert: extract's time over convert's.
	ExtractOverConvert float64 `json:"extract_over_convert_throughput"`
	TimeOverConvert    float64 `json:"extract_over_convert_time"`
	// WorstRound: the lowest throughput ratio of one round (extract and
	// convert of the same round); the target holds when it does.
	WorstRound float64 `json:"extract_over_convert_worst_round"`
	// Verified: every extracted tar held /big/file with the bytes written.
	Verified bool `json:"extract_verified"`
}

// Listing is one `knib backup files` call repeated with the helper running.
type Listing struct {
	// Key names it in the RATIO lines: the path, or "volumes".
	Key     string    `json:"key"`
	What    string    `json:"what"`
	Args    []string  `json:"args"`
	Runs    []float64 `json:"seconds"`
	Median  float64   `json:"median_seconds"`
	Max     float64   `json:"max_seconds"`
	Entries int       `json:"entries"`
}

// Transfer is one timed copy: its command's time, the sync after it, the
// bytes it wrote (extract: the tar file; convert: the raw file's allocated
// blocks) and its throughput over both times.
type Transfer struct {
	Seconds     float64 `json:"seconds"`
	SyncSeconds float64 `json:"sync_seconds"`
	Bytes       int64   `json:"bytes"`
	MBps        float64 `json:"mb_per_second"`
}

func main() {
	var opts options
	flag.IntVar(&opts.reps, "reps", 1, "rounds of plain boot and of (extract, convert); the table shows medians")
	flag.IntVar(&opts.listings, "listings", 5, "times each listing is repeated once the helper runs")
	flag.BoolVar(&opts.cold, "cold", true, "drop the page cache before the plain boot, the first listing, the extract and the convert")
	flag.BoolVar(&opts.keep, "keep", false, "keep the VM, the knib data directory and the backup")
	flag.BoolVar(&opts.json, "json", false, "print the results as JSON instead of a table")
	flag.Parse()
	usage := func(msg string) {
		fmt.Fprintln(os.Stderr, "files:", msg)
		os.Exit(2)
	}
	if flag.NArg() != 0 {
		usage("no arguments expected")
	}
	if opts.reps < 1 {
		usage("-reps: want at least 1")
	}
	if opts.listings < 1 {
		usage("-listings: want at least 1")
	}

	knibproc.Main("files", 60*time.Minute, opts.json, func(ctx context.Context) (*Report, error) { return run(ctx, opts) }, printTable)
}

func logf(format string, args ...any) { knibproc.Logf(format, args...) }

// run does the whole benchmark; the report holds whatever was measured even
// when it returns an error.
func run(ctx context.Context, opts options) (rep *Report, err error) {
	rep = &Report{
		Machine:   knibproc.Machine(),
		When:      clock.Real{}.Now().UTC().Format(time.RFC3339),
		LoadAvg:   []string{report.LoadAvg()},
		ColdCache: opts.cold,
		Disk: fmt.Sprintf("vdb: GPT, one ext4 partition (%s) of %d MiB holding %s (%s of pattern data) and a few small files",
			volume, volumeMiB, bigFile, report.HumanSize(bigSize)),
	}
	defer func() { rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg()) }()
	root, err := knibproc.Prepare()
	if err != nil {
		return rep, err
	}
	if _, err := testbed.GuestfsEnv(); err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("/var/tmp", "knib-bench-files-")
	if err != nil {
		return rep, err
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		return rep, err
	}
	b := &bench{opts: opts, tmp: tmp}
	defer func() {
		b.srv.Stop()
		if opts.keep {
			logf("-keep: leaving the VM %s and %s", vmName, tmp)
			if b.l != nil {
				b.l.Disconnect()
			}
			return
		}
		if b.l != nil {
			if err := testbed.RemoveDomain(b.l, vmName); err != nil {
				logf("removing %s: %v", vmName, err)
			}
			b.l.Disconnect()
		}
		os.RemoveAll(tmp)
		logf("cleaned up the VM and %s", tmp)
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
	if b.srv, err = knibproc.Start(ctx, bin, dataDir, filepath.Join(tmp, "server.log")); err != nil {
		return rep, err
	}
	b.storage = filepath.Join(dataDir, "storage")
	logf("knib server on %s, data %s", b.srv.URL, dataDir)
	if b.l, err = testbed.Dial(); err != nil {
		return rep, err
	}
	return rep, b.measure(ctx, rep)
}

// summarize sets the report's medians and ratios.
func (rep *Report) summarize() {
	rep.Boot = report.Median(rep.Boots)
	rep.FirstOverBoot = report.Ratio(rep.FirstListing, rep.Boot)
	rep.Extract, rep.Convert = medianTransfer(rep.Extracts), medianTransfer(rep.Converts)
	if rep.Extract != nil && rep.Convert != nil {
		rep.ExtractOverConvert = report.Ratio(rep.Extract.MBps, rep.Convert.MBps)
		rep.TimeOverConvert = report.Ratio(rep.Extract.Seconds+rep.Extract.SyncSeconds, rep.Convert.Seconds+rep.Convert.SyncSeconds)
	}
	rep.WorstRound = 0
	for i := range min(len(rep.Extracts), len(rep.Converts)) {
		r := report.Ratio(rep.Extracts[i].MBps, rep.Converts[i].MBps)
		if i == 0 || r < rep.WorstRound {
			rep.WorstRound = r
		}
	}
}

func medianTransfer(ts []Transfer) *Transfer {
	if len(ts) == 0 {
		return nil
	}
	pick := func(f func(Transfer) float64) float64 {
		v := make([]float64, len(ts))
		for i, t := range ts {
			v[i] = f(t)
		}
		return report.Median(v)
	}
	return &Transfer{
		Seconds:     pick(func(t Transfer) float64 { return t.Seconds }),
		SyncSeconds: pick(func(t Transfer) float64 { return t.SyncSeconds }),
		Bytes:       int64(pick(func(t Transfer) float64 { return float64(t.Bytes) })),
		MBps:        pick(func(t Transfer) float64 { return t.MBps }),
	}
}

func printTable(w io.Writer, rep *Report) {
	fmt.Fprintln(w, "knib file-level restore: first listing (helper boot) vs a plain boot; listings with the helper running; 1 GiB extract vs qemu-img convert")
	cache := "warm page cache"
	if rep.ColdCache {
		cache = "page cache dropped before the plain boots, the first listing, the extracts and the converts"
	}
	fmt.Fprintf(w, "machine: %s; %s; %s\n", rep.Machine, rep.Disk, cache)
	fmt.Fprintf(w, "load average at start / end: %s\n", strings.Join(rep.LoadAvg, " / "))
	if rep.BackupID != "" {
		fmt.Fprintf(w, "backup %s: full, %s stored, %.2f s (disk built in %.1f s)\n", rep.BackupID, report.MiB(rep.BackupBytes), rep.BackupSeconds, rep.BuildSeconds)
	}
	fmt.Fprintln(w)

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "figure\tseconds\tbaseline s\tratio\ttarget\tmet\t")
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	if len(rep.Boots) > 0 {
		row("plain boot of the test VM, start → guest agent (median of "+strconv.Itoa(len(rep.Boots))+")", report.F2(rep.Boot), "-", "-", "-", "-")
	}
	if rep.FirstListing > 0 {
		row("first listing `files B / --disk "+volume+"` (boots the helper)", report.F2(rep.FirstListing), report.F2(rep.Boot), report.F2(rep.FirstOverBoot), "-", "-")
	}
	for _, l := range rep.Listings {
		if len(l.Runs) == 0 {
			continue
		}
		row(fmt.Sprintf("then %s, median of %d", l.What, len(l.Runs)), report.F3(l.Median), "-", "-", "<= "+report.F2(targetSecondListing), yes(l.Median <= targetSecondListing))
		row(fmt.Sprintf("then %s, slowest of %d", l.What, len(l.Runs)), report.F3(l.Max), "-", "-", "<= "+report.F2(targetSecondListing), yes(l.Max <= targetSecondListing))
	}
	tw.Flush()
	fmt.Fprintln(w)

	if rep.Extract != nil || rep.Convert != nil {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "copy of "+report.HumanSize(bigSize)+"\tseconds\t+sync s\tbytes written\tMB/s\t")
		if t := rep.Extract; t != nil {
			fmt.Fprintf(tw, "`knib backup extract B %s --disk %s -o OUT.tar`\t%s\t%s\t%d\t%s\t\n", bigFile, volume, report.F2(t.Seconds), report.F2(t.SyncSeconds), t.Bytes, report.F1(t.MBps))
		}
		if t := rep.Convert; t != nil {
			fmt.Fprintf(tw, "`qemu-img convert -f qcow2 -O raw <backup's vdb file> OUT.raw`\t%s\t%s\t%d\t%s\t\n", report.F2(t.Seconds), report.F2(t.SyncSeconds), t.Bytes, report.F1(t.MBps))
		}
		tw.Flush()
		fmt.Fprintln(w)
		if len(rep.Extracts) > 1 || len(rep.Converts) > 1 {
			var e, c []string
			for _, t := range rep.Extracts {
				e = append(e, report.F2(t.Seconds+t.SyncSeconds))
			}
			for _, t := range rep.Converts {
				c = append(c, report.F2(t.Seconds+t.SyncSeconds))
			}
			fmt.Fprintf(w, "rounds (with sync): extract %s s; convert %s s\n\n", strings.Join(e, ", "), strings.Join(c, ", "))
		}
	}
	for _, line := range []string{
		"plain boot: libvirt starts the stopped test VM (DomainCreate) until its guest agent answers guest-ping: the helper's floor.",
		"listings: wall time of the CLI (`knib backup files ... -o json`), its start and the HTTP round trip included.",
		"extract: the CLI writes OUT.tar and fsyncs it; convert: MB/s over the command plus `sync` of its output (MB = 10^6 bytes);",
		"  bytes written: the tar file's size, the raw file's allocated blocks. Both outputs go to the data directory's file system.",
	} {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w)
	if rep.FirstListing > 0 {
		fmt.Fprintf(w, "RATIO first_listing/plain_boot=%s (%s s / %s s)\n", report.F2(rep.FirstOverBoot), report.F2(rep.FirstListing), report.F2(rep.Boot))
	}
	for _, l := range rep.Listings {
		if len(l.Runs) > 0 {
			fmt.Fprintf(w, "RATIO second_listing %s median=%s s max=%s s (target <= %s s: %s)\n", l.Key, report.F3(l.Median), report.F3(l.Max), report.F2(targetSecondListing), yes(l.Max <= targetSecondListing))
		}
	}
	if rep.Extract != nil && rep.Convert != nil {
		verified := "bytes NOT verified"
		if rep.Verified {
			verified = "bytes verified"
		}
		fmt.Fprintf(w, "RATIO extract/convert throughput=%s (medians %s MB/s / %s MB/s; worst round %s; target >= %s in every round: %s; time ratio %s; %s)\n",
			report.F2(rep.ExtractOverConvert), report.F1(rep.Extract.MBps), report.F1(rep.Convert.MBps), report.F2(rep.WorstRound), report.F2(targetExtractOverConv),
			yes(rep.WorstRound >= targetExtractOverConv), report.F2(rep.TimeOverConvert), verified)
	}
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
