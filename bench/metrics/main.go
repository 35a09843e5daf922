// Command metrics measures what monitoring costs a backup: the same
// incremental backup of a running VM with monitoring off (`knib server
// --no-metrics`, no notification rule) and on (`--metrics-listen`, scraped
// every second the whole time as a Prometheus would, and a notification
// rule to a webhook with the conditions evaluated every second, 30 times
// the default), in alternating rounds, and prints the ratio of the medians
// (on / off). The audit log is always on (the backup call leaves a line
// in both modes).
//
//	go run ./bench/metrics [-mib 256] [-disk 1G] [-reps 5] [-keep] [-json]
//
// It needs root, a running libvirtd (bash scripts/setup.sh) and the test
// guest. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

const vmName = "knib-bench-metrics"

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine    string    `json:"machine"`
	When       string    `json:"when"`
	ChangedMiB int64     `json:"changed_mib"`
	Reps       int       `json:"reps"`
	Off        []float64 `json:"off_seconds"` // each backup's wall time, metrics off
	On         []float64 `json:"on_seconds"`  // each backup's wall time, metrics on and scraped every second
	OffMedian  float64   `json:"off_median_seconds"`
	OnMedian   float64   `json:"on_median_seconds"`
	Ratio      float64   `json:"ratio"` // on / off
	// PairRatio: the median of on/off over each pair of neighbouring
	// rounds (off then on), which a drift of the machine over the run does
	// not tilt.
	PairRatio  float64  `json:"pair_ratio"`
	Scrapes    int      `json:"scrapes"`
	Webhooks   int      `json:"webhooks"` // notifications received (none expected: nothing fails)
	ScrapeMean float64  `json:"scrape_mean_seconds"`
	LoadAvg    []string `json:"load_avg"`
}

func main() {
	mibs := flag.Int64("mib", 256, "MiB written into the VM's data disk before each backup")
	disk := flag.Int64("disk", 1<<30, "size of the VM's data disk in bytes")
	reps := flag.Int("reps", 5, "backups per mode (off, on), alternating")
	keep := flag.Bool("keep", false, "leave the VM and the data directory")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	knibproc.Main("bench/metrics", 30*time.Minute, *asJSON, func(ctx context.Context) (*Report, error) {
		return run(ctx, *mibs<<20, *disk, *reps, *keep)
	}, print)
}

func print(w io.Writer, r *Report) {
	fmt.Fprintf(w, "monitoring overhead on an incremental backup (%d MiB changed), %d backups per mode, %s\n", r.ChangedMiB, r.Reps, r.Machine)
	fmt.Fprintf(w, "  on: /metrics scraped every second, a notification rule evaluated every second (%d webhooks received); audit log on in both modes\n", r.Webhooks)
	fmt.Fprintf(w, "  off: median %s s  %v\n", report.F3(r.OffMedian), r.Off)
	fmt.Fprintf(w, "  on:  median %s s  %v  (%d scrapes, mean %s s)\n", report.F3(r.OnMedian), r.On, r.Scrapes, report.F3(r.ScrapeMean))
	fmt.Fprintf(w, "RATIO on/off: %s (medians); median of the pairs' ratios %s\n", report.F3(r.Ratio), report.F3(r.PairRatio))
	fmt.Fprintf(w, "load average: %v\n", r.LoadAvg)
}

func run(ctx context.Context, changed, disk int64, reps int, keep bool) (*Report, error) {
	rep := &Report{Machine: knibproc.Machine(), When: clock.Real{}.Now().UTC().Format(time.RFC3339), ChangedMiB: changed >> 20, Reps: reps}
	rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg())
	defer func() { rep.LoadAvg = append(rep.LoadAvg, report.LoadAvg()) }()
	root, err := knibproc.Prepare()
	if err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("", "knib-bench-metrics-")
	if err != nil {
		return rep, err
	}
	l, err := testbed.Dial()
	if err != nil {
		return rep, err
	}
	defer func() {
		if keep {
			knibproc.Logf("-keep: leaving %s and %s", vmName, tmp)
		} else {
			if err := testbed.RemoveDomain(l, vmName); err != nil {
				knibproc.Logf("removing %s: %v", vmName, err)
			}
			os.RemoveAll(tmp)
		}
		l.Disconnect()
	}()
	bin, err := knibproc.Build(ctx, root, tmp)
	if err != nil {
		return rep, err
	}
	testbed.RemoveDomain(l, vmName) // a left-over of an earlier run
	vm, err := testbed.CreateDomain(ctx, l, testbed.DomainOptions{Name: vmName, DiskSizes: []int64{32 << 20, disk}, Start: true, NoFormat: true})
	if err != nil {
		return rep, err
	}
	dataDir := filepath.Join(tmp, "data")
	logPath := filepath.Join(tmp, "server.log")

	// A webhook receiver for the notification target.
	var webhooks atomic.Int64
	defer func() { rep.Webhooks = int(webhooks.Load()) }()
	hook := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		webhooks.Add(1)
	})}
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return rep, err
	}
	go hook.Serve(hookLn)
	defer hook.Close()
	secret := filepath.Join(tmp, "hook.secret")
	if err := os.WriteFile(secret, []byte("bench-secret"), 0o600); err != nil {
		return rep, err
	}

	// Set up with monitoring off: offering (unlimited chain), assign, the
	// notification target (no rule yet), full.
	srv, err := knibproc.Start(ctx, bin, dataDir, logPath, "--no-metrics")
	if err != nil {
		return rep, err
	}
	var off struct {
		ID string `json:"id"`
	}
	err = srv.CLIJSON(ctx, &off, "offering", "create", "--name", "bench-metrics", "--backup-chain-size", "0")
	if err == nil {
		_, err = srv.CLI(ctx, "host", "refresh")
	}
	if err == nil {
		_, err = srv.CLI(ctx, "vm", "assign", vmName, "--offering", off.ID)
	}
	if err == nil {
		_, err = srv.CLI(ctx, "settings", "set", "notify.interval", "1")
	}
	if err == nil {
		_, err = srv.CLI(ctx, "notify", "target", "add", "bench-hook", "--webhook", "http://"+hookLn.Addr().String()+"/", "--secret-file", secret)
	}
	if err == nil {
		err = waitAgent(ctx, srv)
	}
	if err == nil {
		_, err = backup(ctx, srv, "full")
	}
	srv.Stop()
	if err != nil {
		return rep, err
	}

	var scrapeTotal float64
	for i := 0; i < 2*reps; i++ {
		on := i%2 == 1
		// The same amount of new data before every backup, at a new place.
		offset := (int64(i) * changed) % (disk - changed)
		if err := vm.WriteDisk(ctx, 1, byte('a'+i%26), offset, changed); err != nil {
			return rep, err
		}
		args := []string{"--no-metrics"}
		addr := ""
		if on {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return rep, err
			}
			addr = ln.Addr().String()
			ln.Close()
			args = []string{"--metrics-listen", addr}
		}
		srv, err := knibproc.Start(ctx, bin, dataDir, fmt.Sprintf("%s.%d", logPath, i+1), args...)
		if err != nil {
			return rep, err
		}
		if err := waitAgent(ctx, srv); err != nil {
			srv.Stop()
			return rep, err
		}
		if err := notifyRule(ctx, srv, on); err != nil {
			srv.Stop()
			return rep, err
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		if on {
			wg.Go(func() {
				for {
					start := clock.Real{}.Now()
					resp, err := http.Get("http://" + addr + "/metrics")
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							rep.Scrapes++
							scrapeTotal += clock.Since(clock.Real{}, start).Seconds()
						}
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
					}
				}
			})
		}
		knibproc.Settle(ctx, false)
		secs, err := backup(ctx, srv, "incremental")
		close(stop)
		wg.Wait()
		srv.Stop()
		if err != nil {
			return rep, err
		}
		if on {
			rep.On = append(rep.On, secs)
		} else {
			rep.Off = append(rep.Off, secs)
		}
		knibproc.Logf("backup %d (metrics %v): %.3f s", i+1, on, secs)
	}
	if rep.Scrapes == 0 {
		return rep, errors.New("no scrape of /metrics answered")
	}
	rep.ScrapeMean = scrapeTotal / float64(rep.Scrapes)
	rep.OffMedian, rep.OnMedian = report.Median(rep.Off), report.Median(rep.On)
	rep.Ratio = report.Ratio(rep.OnMedian, rep.OffMedian)
	var pairs []float64
	for i := range min(len(rep.On), len(rep.Off)) {
		pairs = append(pairs, report.Ratio(rep.On[i], rep.Off[i]))
	}
	rep.PairRatio = report.Median(pairs)
	return rep, nil
}

// notifyRule adds the rule sending every event to the bench's webhook
// (on) or removes the rules (off).
func notifyRule(ctx context.Context, srv *knibproc.Server, on bool) error {
	var rules []struct {
		ID string `json:"id"`
	}
	if err := srv.CLIJSON(ctx, &rules, "notify", "rule", "list"); err != nil {
		return err
	}
	for _, r := range rules {
		if _, err := srv.CLI(ctx, "notify", "rule", "remove", r.ID); err != nil {
			return err
		}
	}
	if !on {
		return nil
	}
	_, err := srv.CLI(ctx, "notify", "rule", "add", "--target", "bench-hook")
	return err
}

// backup times `knib backup create VM -o json` (the CLI waits for the
// operation) and checks the backup's type.
func backup(ctx context.Context, srv *knibproc.Server, wantType string) (float64, error) {
	start := clock.Real{}.Now()
	out, err := srv.CLI(ctx, "backup", "create", vmName, "-o", "json")
	secs := clock.Since(clock.Real{}, start).Seconds()
	if err != nil {
		return secs, err
	}
	var b knibproc.Backup
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		return secs, fmt.Errorf("decode %q: %w", out, err)
	}
	if b.Status != "BackedUp" || b.Type != wantType {
		return secs, fmt.Errorf("backup %s: %s %s, want BackedUp %s: %s", b.ID, b.Status, b.Type, wantType, b.Error)
	}
	return secs, nil
}

// waitAgent waits until the restarted server's local agent is connected
// (the host is in the catalogue from the previous run before its agent is
// back in the registry).
func waitAgent(ctx context.Context, srv *knibproc.Server) error {
	deadline := clock.Real{}.Now().Add(time.Minute)
	for {
		// vm exec goes through the VM's host's agent (and its guest agent).
		_, err := srv.CLI(ctx, "vm", "exec", vmName, "--", "true")
		if err == nil {
			return nil
		}
		if (clock.Real{}).Now().After(deadline) {
			return fmt.Errorf("the local agent is not connected within a minute: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
