package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/knib/knib/bench/internal/catalogue"
	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/store/sqlstore"
)

func now() time.Time                 { return clock.Real{}.Now() }
func since(t time.Time) float64      { return clock.Since(clock.Real{}, t).Seconds() }
func ms(d time.Duration) float64     { return float64(d.Microseconds()) / 1000 }
func round(x float64, n int) float64 { p := math.Pow(10, float64(n)); return math.Round(x*p) / p }

// Latency is the spread of one request's or pass's duration, in ms.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

func spread(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	at := func(q float64) float64 { return ms(ds[min(len(ds)-1, int(math.Ceil(q*float64(len(ds))))-1)]) }
	return Latency{N: len(ds), P50: round(at(0.50), 2), P99: round(at(0.99), 2)}
}

// measureEngine loads a catalogue into a new database of the engine,
// serves it and measures.
func measureEngine(ctx context.Context, opts options, bin, tmp, engine, size string, c catalogue.Catalogue, dump string) (*Figures, error) {
	f := &Figures{Requests: map[string]Latency{}, ListBytes: map[string]int{}}
	dir := filepath.Join(tmp, engine+"-"+size)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return f, err
	}
	dbs, drop, err := catalogue.Database(ctx, engine, dir, size)
	if err != nil {
		return f, err
	}
	if !opts.keep {
		defer drop()
	}

	knibproc.Logf("%s, %s catalogue: db import", engine, size)
	if f.ImportSeconds, f.ImportPeakMiB, err = timed(ctx, bin, "db", "import", "--database", dbs, "--file", dump, "-o", "json"); err != nil {
		return f, err
	}
	knibproc.Logf("%s, %s catalogue: imported in %.1f s, peak %.0f MiB", engine, size, f.ImportSeconds, f.ImportPeakMiB)

	srv, start, err := catalogue.StartServer(ctx, bin, dir, dbs)
	if err != nil {
		return f, err
	}
	f.StartSeconds = round(start, 3)
	knibproc.Logf("%s, %s catalogue: server answers after %.2f s", engine, size, start)
	err = measureRequests(ctx, opts, srv, engine+"-"+size, c, f)
	srv.Stop()
	if err != nil {
		return f, err
	}
	if err := measureScheduler(ctx, dbs, f); err != nil {
		return f, fmt.Errorf("scheduler: %w", err)
	}
	served := dbs
	if engine == sqlstore.EngineSQLite {
		served = filepath.Join(dir, "data", "knib.db")
		if fi, err := os.Stat(served); err == nil {
			f.DatabaseOnDisk = fi.Size()
		}
	}
	knibproc.Logf("%s, %s catalogue: db export", engine, size)
	out := filepath.Join(dir, "export.json")
	if f.ExportSeconds, f.ExportPeakMiB, err = timed(ctx, bin, "db", "export", "--database", served, "--file", out); err != nil {
		return f, err
	}
	os.Remove(out)
	return f, nil
}

// timed runs the knib CLI and returns its wall time in seconds and its
// peak resident memory in MiB.
func timed(ctx context.Context, bin string, args ...string) (float64, float64, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	t0 := now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("knib %s: %v: %s", strings.Join(args[:2], " "), err, strings.TrimSpace(errb.String()))
	}
	secs, peak := round(since(t0), 2), 0.0
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		peak = round(float64(ru.Maxrss)/1024, 1) // Linux: KiB
	}
	return secs, peak, nil
}

// request is one kind of API request of the workload; next makes the i-th.
type request struct {
	name string
	next func(i int) (method, path string, body any)
}

func measureRequests(ctx context.Context, opts options, s *catalogue.Server, tag string, c catalogue.Catalogue, f *Figures) error {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: opts.clients + 1}, Timeout: 5 * time.Minute}
	// Cursors of the first pages of the VM and job lists, collected by
	// walking them, so that the workload reads pages all over the lists.
	walk := func(path string) ([]string, error) {
		cursors := []string{""}
		cur := ""
		for range 50 {
			p := path
			if cur != "" {
				p += "&cursor=" + url.QueryEscape(cur)
			}
			n, next, err := s.Call(ctx, hc, "GET", p, nil)
			if err != nil {
				return nil, err
			}
			f.ListBytes[strings.SplitN(path, "?", 2)[0]+" page"] = n
			if next == "" {
				break
			}
			cursors, cur = append(cursors, next), next
		}
		return cursors, nil
	}
	vmPages, err := walk("/vms?limit=100")
	if err != nil {
		return err
	}
	jobPages, err := walk("/jobs?type=BackupValidation&limit=100")
	if err != nil {
		return err
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	var mu sync.Mutex
	pick := func(n int) int {
		mu.Lock()
		defer mu.Unlock()
		return rng.IntN(n)
	}
	var offerings atomic.Int64
	reqs := []request{
		{"one VM's backup list", func(int) (string, string, any) {
			return "GET", fmt.Sprintf("/backups?vm=vm-%05d", pick(c.VMs)), nil
		}},
		{"VM list, a page of 100", func(int) (string, string, any) {
			cur := vmPages[pick(len(vmPages))]
			return "GET", "/vms?limit=100&cursor=" + url.QueryEscape(cur), nil
		}},
		{"one backup", func(int) (string, string, any) {
			return "GET", "/backups/" + catalogue.ID(catalogue.KBackup, pick(c.Backups())), nil
		}},
		{"job list, filtered page of 100", func(int) (string, string, any) {
			cur := jobPages[pick(len(jobPages))]
			return "GET", "/jobs?type=BackupValidation&limit=100&cursor=" + url.QueryEscape(cur), nil
		}},
		{"offering creation", func(int) (string, string, any) {
			return "POST", "/offerings", map[string]any{"name": fmt.Sprintf("bench-%s-%d", tag, offerings.Add(1))}
		}},
	}
	for _, r := range reqs {
		n, _, err := s.Call(ctx, hc, "GET", fmt.Sprintf("/backups?vm=vm-%05d", 0), nil)
		if err != nil {
			return err
		}
		f.ListBytes["one VM's backup list"] = n
		for _, clients := range []int{1, opts.clients} {
			ds, err := load(ctx, s, hc, r, clients, opts.requests)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			f.Requests[fmt.Sprintf("%s/%d", r.name, clients)] = spread(ds)
		}
		l1, ln := f.Requests[r.name+"/1"], f.Requests[fmt.Sprintf("%s/%d", r.name, opts.clients)]
		knibproc.Logf("%s: %s: p50 %.1f ms, p99 %.1f ms (1 client); p50 %.1f ms, p99 %.1f ms (%d clients)",
			tag, r.name, l1.P50, l1.P99, ln.P50, ln.P99, opts.clients)
	}
	return nil
}

// load runs n requests from clients concurrent clients and returns their
// durations.
func load(ctx context.Context, s *catalogue.Server, hc *http.Client, r request, clients, n int) ([]time.Duration, error) {
	var mu sync.Mutex
	var ds []time.Duration
	var next atomic.Int64
	var first error
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				method, path, body := r.next(i)
				t0 := now()
				_, _, err := s.Call(ctx, hc, method, path, body)
				d := clock.Since(clock.Real{}, t0)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				ds = append(ds, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return ds, first
}

// stubAgent is a connected host that refuses every task: the scheduler
// claims jobs for it, and the jobs fail and go back to the queue.
type stubAgent struct {
	agentapi.NoFiles
	name  string
	tasks *atomic.Int64
}

var errStub = errors.New("bench: this host runs no tasks")

func (a stubAgent) HostReport(context.Context) (agentapi.HostReport, error) {
	return agentapi.HostReport{Name: a.name}, nil
}
func (a stubAgent) Inventory(context.Context) ([]agentapi.Domain, error) { return nil, nil }
func (a stubAgent) Domain(_ context.Context, uuid string) (agentapi.Domain, error) {
	return agentapi.Domain{}, fmt.Errorf("domain %s: %w", uuid, agentapi.ErrUnknownDomain)
}
func (a stubAgent) GuestExec(context.Context, agentapi.GuestExecRequest) (agentapi.GuestExecResult, error) {
	return agentapi.GuestExecResult{}, errStub
}
func (a stubAgent) StartTask(context.Context, agentapi.Task) error {
	a.tasks.Add(1)
	return errStub
}
func (a stubAgent) TaskStatus(context.Context, string) (agentapi.TaskStatus, error) {
	return agentapi.TaskStatus{}, agentapi.ErrUnknownTask
}
func (a stubAgent) CancelTask(context.Context, string) error { return nil }

// WaitInventoryChange: a stub host never changes.
func (a stubAgent) WaitInventoryChange(ctx context.Context, since agentapi.ChangeMark) (agentapi.ChangeMark, error) {
	if mark := (agentapi.ChangeMark{Epoch: "stub"}); since != mark {
		return mark, nil
	}
	<-ctx.Done()
	return since, ctx.Err()
}

// measureScheduler runs job-scheduler passes in process on the catalogue,
// its first ten hosts connected (stub agents): each pass reaps, reads the
// due jobs and claims what the limits allow.
func measureScheduler(ctx context.Context, dbs string, f *Figures) error {
	if strings.HasSuffix(dbs, ".db") {
		dbs = filepath.Join(filepath.Dir(dbs), "data", "knib.db")
	}
	st, err := sqlstore.Open(ctx, dbs)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := service.New(st, clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hosts, err := st.ListHosts(ctx)
	if err != nil {
		return err
	}
	tasks := &atomic.Int64{}
	for i, h := range hosts {
		if i == 10 {
			break
		}
		svc.Kernel.SetAgent(h.ID, stubAgent{name: h.Name, tasks: tasks})
	}
	var ds []time.Duration
	for range 10 {
		t0 := now()
		if err := svc.Jobs.RunJobs(ctx, "bench-scheduler"); err != nil {
			return err
		}
		ds = append(ds, clock.Since(clock.Real{}, t0))
		svc.Jobs.WaitJobs()
	}
	f.SchedulerPass = spread(ds)
	f.SchedulerJobs = int(tasks.Load())
	knibproc.Logf("scheduler pass: p50 %.1f ms, p99 %.1f ms; %d jobs started in 10 passes", f.SchedulerPass.P50, f.SchedulerPass.P99, f.SchedulerJobs)
	return nil
}
