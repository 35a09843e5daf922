package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// target is one figure's goal.
type target struct {
	label string
	limit float64 // upper bound; 0: none
	unit  string
	get   func(*Figures) float64
}

func targets(clients int) []target {
	req := func(name string, n int, p99 bool) func(*Figures) float64 {
		return func(f *Figures) float64 {
			l := f.Requests[fmt.Sprintf("%s/%d", name, n)]
			if p99 {
				return l.P99
			}
			return l.P50
		}
	}
	out := []target{
		{"import, wall time", 300, "s", func(f *Figures) float64 { return f.ImportSeconds }},
		{"import, peak memory", 1024, "MiB", func(f *Figures) float64 { return f.ImportPeakMiB }},
		{"export, wall time", 0, "s", func(f *Figures) float64 { return f.ExportSeconds }},
		{"export, peak memory", 0, "MiB", func(f *Figures) float64 { return f.ExportPeakMiB }},
		{"server start", 5, "s", func(f *Figures) float64 { return f.StartSeconds }},
		{"scheduler pass, p99", 1000, "ms", func(f *Figures) float64 { return f.SchedulerPass.P99 }},
	}
	for _, r := range []struct {
		name  string
		limit float64
	}{{"one VM's backup list", 20}, {"one backup", 20}, {"VM list, a page of 100", 0}, {"job list, filtered page of 100", 0}, {"offering creation", 0}} {
		for _, n := range []int{1, clients} {
			out = append(out,
				target{fmt.Sprintf("%s, p50, %d client(s)", r.name, n), 0, "ms", req(r.name, n, false)},
				target{fmt.Sprintf("%s, p99, %d client(s)", r.name, n), map[bool]float64{true: r.limit}[n == 1], "ms", req(r.name, n, true)})
		}
	}
	return out
}

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "bench/scale on %s, %s\n", r.Machine, r.When)
	fmt.Fprintf(w, "large: %d VMs, %d backups (%d files), %d queued jobs; small: %d VMs, %d backups, %d queued jobs\n",
		r.Large.VMs, r.Large.Backups(), 2*r.Large.Backups(), r.Large.QueuedJobs, r.Small.VMs, r.Small.Backups(), r.Small.QueuedJobs)
	fmt.Fprintf(w, "dump of the large catalogue: %.0f MiB, generated in %.1f s\n\n", float64(r.Dump.Bytes)/(1<<20), r.Dump.Seconds)
	clients := r.Clients
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "figure\ttarget\t")
	for _, e := range r.Engines {
		fmt.Fprintf(tw, "%s large\t%s small\tlarge/small\tmet\t", e.Name, e.Name)
	}
	fmt.Fprintln(tw)
	for _, t := range targets(clients) {
		goal := "-"
		if t.limit > 0 {
			goal = fmt.Sprintf("<= %g %s", t.limit, t.unit)
		}
		fmt.Fprintf(tw, "%s\t%s\t", t.label, goal)
		for _, e := range r.Engines {
			if e.Large == nil || e.Small == nil {
				fmt.Fprint(tw, "-\t-\t-\t-\t")
				continue
			}
			l, s := t.get(e.Large), t.get(e.Small)
			ratio := "-"
			if s > 0 {
				ratio = fmt.Sprintf("%.2f", l/s)
			}
			met := "-"
			if t.limit > 0 {
				met = map[bool]string{true: "yes", false: "NO"}[l <= t.limit]
			}
			fmt.Fprintf(tw, "%.2f %s\t%.2f %s\t%s\t%s\t", l, t.unit, s, t.unit, ratio, met)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, e := range r.Engines {
		if e.Error != "" {
			fmt.Fprintf(w, "\n%s: %s\n", e.Name, e.Error)
		}
		if e.Large != nil {
			disk := ""
			if e.Large.DatabaseOnDisk > 0 {
				disk = fmt.Sprintf("; database file %d MiB", e.Large.DatabaseOnDisk>>20)
			}
			fmt.Fprintf(w, "\n%s, large: scheduler passes claimed %d jobs; answer sizes in bytes %v%s\n", e.Name, e.Large.SchedulerJobs,
				e.Large.ListBytes, disk)
		}
	}
}
