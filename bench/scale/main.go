// Command scale measures knib's control plane on a large catalogue: 10,000
// VMs, 1,000,000 backups in chains (two files each) and 100,000 queued
// jobs, generated as a dump, loaded with `knib db import` into SQLite and
// into PostgreSQL, and served by `knib server`.
//
//	go run ./bench/scale [-vms 10000] [-backups-per-vm 100] [-jobs 100000] [-engines sqlite,postgres] [-json] [-keep]
//
// For each engine it reports the import (wall time, peak memory of the
// process), the server's start, the p50/p99 latency of the API requests an
// operator and the console make all the time (one VM's backup list, a page
// of VMs, one backup, a filtered page of jobs, an offering creation), with
// one client and with 16, and the duration of one job-scheduler pass over
// the queue. Each figure stands next to its target, and next to the same
// figure on a small catalogue (100 VMs, 10,000 backups, 1,000 jobs)
// measured in the same run: the ratio shows whether a cost grows with the
// catalogue. PostgreSQL is the one scripts/setup-postgres.sh set up. See
// bench/README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/knib/knib/bench/internal/catalogue"
	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/internal/testbed"
)

type options struct {
	large, small catalogue.Catalogue
	engines      []string
	requests     int
	clients      int
	keep, json   bool
}

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine string              `json:"machine"`
	Clients int                 `json:"clients"`
	When    string              `json:"when"`
	Large   catalogue.Catalogue `json:"large"`
	Small   catalogue.Catalogue `json:"small"`
	Dump    DumpFigure          `json:"dump"`
	Engines []*Engine           `json:"engines"`
}

// DumpFigure is the generated dump of the large catalogue.
type DumpFigure struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"generate_seconds"`
}

// Engine holds one engine's figures on both catalogues.
type Engine struct {
	Name  string   `json:"engine"`
	Large *Figures `json:"large"`
	Small *Figures `json:"small"`
	Error string   `json:"error,omitempty"`
}

// Figures are the measurements on one catalogue.
type Figures struct {
	ImportSeconds  float64            `json:"import_seconds"`
	ImportPeakMiB  float64            `json:"import_peak_rss_mib"`
	ExportSeconds  float64            `json:"export_seconds"`
	ExportPeakMiB  float64            `json:"export_peak_rss_mib"`
	StartSeconds   float64            `json:"server_start_seconds"`
	Requests       map[string]Latency `json:"requests"` // by request, then clients
	SchedulerPass  Latency            `json:"scheduler_pass"`
	SchedulerJobs  int                `json:"scheduler_claimed_jobs"`
	ListBytes      map[string]int     `json:"answer_bytes"`
	DatabaseOnDisk int64              `json:"database_bytes,omitempty"`
}

func main() {
	var opts options
	var engines string
	flag.IntVar(&opts.large.VMs, "vms", 10000, "VMs of the large catalogue")
	flag.IntVar(&opts.large.BackupsPerVM, "backups-per-vm", 100, "backups per VM (chains of 10)")
	flag.IntVar(&opts.large.QueuedJobs, "jobs", 100000, "queued jobs (a fifth as many finished ones are added)")
	flag.StringVar(&engines, "engines", "sqlite,postgres", "engines to measure")
	flag.IntVar(&opts.requests, "requests", 300, "requests per figure and client count")
	flag.IntVar(&opts.clients, "clients", 16, "concurrent clients of the loaded figures")
	flag.BoolVar(&opts.keep, "keep", false, "keep the dumps, databases and data directories")
	flag.BoolVar(&opts.json, "json", false, "print the results as JSON instead of a table")
	flag.Parse()
	opts.large.Hosts, opts.large.Accounts = 100, 100
	opts.small = catalogue.Catalogue{VMs: 100, BackupsPerVM: 100, QueuedJobs: 1000, Hosts: 10, Accounts: 10}
	opts.engines = strings.Split(engines, ",")
	knibproc.Main("bench/scale", 2*time.Hour, opts.json, func(ctx context.Context) (*Report, error) { return run(ctx, opts) }, printReport)
}

func run(ctx context.Context, opts options) (*Report, error) {
	rep := &Report{Machine: knibproc.Machine(), When: now().UTC().Format(time.RFC3339), Large: opts.large, Small: opts.small, Clients: opts.clients}
	root, err := testbed.ModuleRoot()
	if err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("/var/tmp", "knib-scale-")
	if err != nil {
		return rep, err
	}
	if !opts.keep {
		defer os.RemoveAll(tmp)
	}
	knibproc.Logf("building knib into %s", tmp)
	bin, err := knibproc.Build(ctx, root, tmp)
	if err != nil {
		return rep, err
	}
	dumps := map[string]string{}
	for name, c := range map[string]catalogue.Catalogue{"large": opts.large, "small": opts.small} {
		file := filepath.Join(tmp, name+".json")
		knibproc.Logf("generating the %s catalogue: %d VMs, %d backups, %d queued jobs", name, c.VMs, c.Backups(), c.QueuedJobs)
		t0 := now()
		if err := catalogue.Generate(ctx, c, filepath.Join(tmp, "storage"), file); err != nil {
			return rep, fmt.Errorf("generate the %s catalogue: %w", name, err)
		}
		if name == "large" {
			fi, _ := os.Stat(file)
			rep.Dump = DumpFigure{Bytes: fi.Size(), Seconds: since(t0)}
		}
		dumps[name] = file
	}
	var failed error
	for _, eng := range opts.engines {
		e := &Engine{Name: eng}
		rep.Engines = append(rep.Engines, e)
		for _, size := range []string{"small", "large"} {
			c := opts.small
			if size == "large" {
				c = opts.large
			}
			f, err := measureEngine(ctx, opts, bin, tmp, eng, size, c, dumps[size])
			if size == "large" {
				e.Large = f
			} else {
				e.Small = f
			}
			if err != nil {
				e.Error = fmt.Sprintf("%s catalogue: %v", size, err)
				failed = fmt.Errorf("%s: %s", eng, e.Error)
				break
			}
		}
	}
	return rep, failed
}
