// Command dashboard measures the web console's dashboard on a generated
// catalogue (default 1,000 VMs and 100,000 backups), on SQLite and
// PostgreSQL:
//
//   - the API: GET /api/v1/dashboard, against a baseline measured in the
//     same run: what the console needed before it (every page of GET /vms
//     and GET /backups, aggregated in the browser);
//   - the page: Debian's Chromium opens the console's dashboard until it is
//     usable (rendered and marked ready), against a baseline of the same
//     console's log-in page (no data).
//
// Run: go run ./bench/dashboard (make bench runs it too).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/knib/knib/bench/internal/catalogue"
	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

const chromium = "/usr/bin/chromium"

// Targets of the issue: the data in 200 ms, the page usable in 1 s.
const (
	targetAPIms  = 200
	targetPageMs = 1000
)

type options struct {
	cat      catalogue.Catalogue
	engines  []string
	requests int
	json     bool
}

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine   string              `json:"machine"`
	When      string              `json:"when"`
	Catalogue catalogue.Catalogue `json:"catalogue"`
	Engines   []*Figures          `json:"engines"`
}

// Figures are one engine's measurements, in ms.
type Figures struct {
	Engine        string  `json:"engine"`
	APIp50        float64 `json:"dashboard_api_p50_ms"`
	APIp99        float64 `json:"dashboard_api_p99_ms"`
	APIBytes      int     `json:"dashboard_api_bytes"`
	BaselineAPI   float64 `json:"baseline_lists_p50_ms"`
	BaselineBytes int     `json:"baseline_lists_bytes"`
	PageP50       float64 `json:"dashboard_page_p50_ms"`
	PageMax       float64 `json:"dashboard_page_max_ms"`
	BaselinePage  float64 `json:"baseline_login_page_p50_ms"`
	Rows          int     `json:"rows_shown" doc:"the first page of the dashboard"`
	Error         string  `json:"error,omitempty"`
}

func main() {
	var opts options
	var engines string
	flag.IntVar(&opts.cat.VMs, "vms", 1000, "VMs of the catalogue")
	flag.IntVar(&opts.cat.BackupsPerVM, "backups-per-vm", 100, "backups per VM (chains of 10)")
	flag.StringVar(&engines, "engines", "sqlite,postgres", "engines to measure")
	flag.IntVar(&opts.requests, "requests", 30, "requests (and page loads) per figure")
	flag.BoolVar(&opts.json, "json", false, "print the results as JSON instead of a table")
	flag.Parse()
	opts.cat.QueuedJobs, opts.cat.Hosts, opts.cat.Accounts = 2*opts.cat.VMs, 10, 10
	opts.engines = strings.Split(engines, ",")
	knibproc.Main("bench/dashboard", time.Hour, opts.json, func(ctx context.Context) (*Report, error) { return run(ctx, opts) }, printReport)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func p(ds []time.Duration, q float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ms(ds[min(len(ds)-1, int(q*float64(len(ds))))])
}

func run(ctx context.Context, opts options) (*Report, error) {
	clk := clock.Real{}
	rep := &Report{Machine: knibproc.Machine(), When: clk.Now().UTC().Format(time.RFC3339), Catalogue: opts.cat}
	if _, err := os.Stat(chromium); err != nil {
		return rep, fmt.Errorf("chromium is not installed (scripts/setup.sh installs it): %w", err)
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		return rep, err
	}
	tmp, err := os.MkdirTemp("/var/tmp", "knib-dashboard-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(tmp)
	bin, err := knibproc.Build(ctx, root, tmp)
	if err != nil {
		return rep, err
	}
	dump := filepath.Join(tmp, "catalogue.json")
	knibproc.Logf("generating %d VMs, %d backups", opts.cat.VMs, opts.cat.Backups())
	if err := catalogue.Generate(ctx, opts.cat, filepath.Join(tmp, "storage"), dump); err != nil {
		return rep, err
	}
	var failed error
	for _, eng := range opts.engines {
		f, err := measure(ctx, opts, bin, tmp, eng, dump)
		if err != nil {
			f.Error = err.Error()
			failed = fmt.Errorf("%s: %w", eng, err)
		}
		rep.Engines = append(rep.Engines, f)
	}
	return rep, failed
}

func measure(ctx context.Context, opts options, bin, tmp, engine, dump string) (*Figures, error) {
	f := &Figures{Engine: engine}
	dir := filepath.Join(tmp, engine)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return f, err
	}
	dbs, drop, err := catalogue.Database(ctx, engine, dir, "dashboard")
	if err != nil {
		return f, err
	}
	defer drop()
	if out, err := exec.CommandContext(ctx, bin, "db", "import", "--database", dbs, "--file", dump).CombinedOutput(); err != nil {
		return f, fmt.Errorf("db import: %v: %s", err, out)
	}
	srv, _, err := catalogue.StartServer(ctx, bin, dir, dbs)
	if err != nil {
		return f, err
	}
	defer srv.Stop()
	hc := &http.Client{Timeout: time.Minute}
	clk := clock.Real{}

	// The API (after one request that warms the server's caches), then
	// the baseline: every page of the VM and backup lists.
	if _, _, err := srv.Call(ctx, hc, "GET", "/dashboard", nil); err != nil {
		return f, err
	}
	var api, base []time.Duration
	for range opts.requests {
		t0 := clk.Now()
		n, _, err := srv.Call(ctx, hc, "GET", "/dashboard", nil)
		if err != nil {
			return f, err
		}
		api = append(api, clock.Since(clk, t0))
		f.APIBytes = n
	}
	for range max(3, opts.requests/10) {
		t0 := clk.Now()
		total := 0
		for _, list := range []string{"/vms?limit=1000", "/backups?limit=1000"} {
			cursor := ""
			for {
				path := list
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				n, next, err := srv.Call(ctx, hc, "GET", path, nil)
				if err != nil {
					return f, err
				}
				total += n
				if next == "" {
					break
				}
				cursor = next
			}
		}
		base = append(base, clock.Since(clk, t0))
		f.BaselineBytes = total
	}
	f.APIp50, f.APIp99, f.BaselineAPI = p(api, 0.5), p(api, 0.99), p(base, 0.5)
	knibproc.Logf("%s: GET /dashboard p50 %.1f ms, p99 %.1f ms (%d bytes); the lists %.1f ms", engine, f.APIp50, f.APIp99, f.APIBytes, f.BaselineAPI)

	// The page in Chromium: from navigation to the dashboard marked ready.
	actx, cancelA := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.UserDataDir(filepath.Join(dir, "chromium")), chromedp.WindowSize(1280, 900))
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	var ok bool
	login := fmt.Sprintf(`fetch("/api/v1/session", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({token: %q})}).then(r => r.ok)`, srv.Token)
	// The log-in page (the baseline) before logging in, then the dashboard.
	var loginPage, page []time.Duration
	for range max(3, opts.requests/3) {
		t0 := clk.Now()
		if err := chromedp.Run(bctx, chromedp.Navigate(srv.URL+"/ui/?"+fmt.Sprint(t0.UnixNano())+"#/login"),
			chromedp.Poll(`document.body.dataset.ready === "login"`, &ok)); err != nil {
			return f, fmt.Errorf("log-in page: %w", err)
		}
		loginPage = append(loginPage, clock.Since(clk, t0))
	}
	if err := chromedp.Run(bctx, chromedp.Evaluate(login, &ok, awaitPromise)); err != nil || !ok {
		return f, fmt.Errorf("log in: %v", err)
	}
	for range opts.requests {
		t0 := clk.Now()
		if err := chromedp.Run(bctx, chromedp.Navigate(srv.URL+"/ui/?"+fmt.Sprint(t0.UnixNano())+"#/"),
			chromedp.Poll(`document.body.dataset.ready === "dashboard"`, &ok)); err != nil {
			return f, fmt.Errorf("dashboard page: %w", err)
		}
		page = append(page, clock.Since(clk, t0))
	}
	var pager string
	if err := chromedp.Run(bctx, chromedp.Evaluate(`document.querySelectorAll("#dashboard tbody tr").length`, &f.Rows),
		chromedp.Evaluate(`document.querySelector("#dash-pager").textContent`, &pager)); err != nil {
		return f, err
	}
	// The first page of rows, out of every VM.
	if f.Rows != min(100, opts.cat.VMs) || !strings.Contains(pager, fmt.Sprintf("of %d", opts.cat.VMs)) {
		return f, fmt.Errorf("the dashboard shows %d rows (%q), want the first 100 of %d", f.Rows, pager, opts.cat.VMs)
	}
	f.PageP50, f.PageMax, f.BaselinePage = p(page, 0.5), p(page, 1), p(loginPage, 0.5)
	knibproc.Logf("%s: dashboard page p50 %.0f ms, max %.0f ms; log-in page %.0f ms", engine, f.PageP50, f.PageMax, f.BaselinePage)
	return f, nil
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "bench/dashboard on %s, %s\n", r.Machine, r.When)
	fmt.Fprintf(w, "catalogue: %d VMs, %d backups, %d queued jobs\n\n", r.Catalogue.VMs, r.Catalogue.Backups(), r.Catalogue.QueuedJobs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "engine\tfigure\tms\tbaseline ms\tratio\ttarget ms\tmet\t")
	for _, f := range r.Engines {
		if f.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t\t\n", f.Engine, f.Error)
			continue
		}
		row := func(name string, v, base, target float64) {
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.3f\t%.0f\t%v\t\n", f.Engine, name, v, base, v/base, target, v <= target)
		}
		row("GET /dashboard p50 (baseline: every page of /vms and /backups)", f.APIp50, f.BaselineAPI, targetAPIms)
		row("GET /dashboard p99", f.APIp99, f.BaselineAPI, targetAPIms)
		row("dashboard page usable, p50 (baseline: the log-in page)", f.PageP50, f.BaselinePage, targetPageMs)
		row("dashboard page usable, slowest", f.PageMax, f.BaselinePage, targetPageMs)
	}
	tw.Flush()
	for _, f := range r.Engines {
		if f.Error == "" {
			fmt.Fprintf(w, "%s: the dashboard's answer is %d bytes for %d VMs (the page shows %d rows at a time); the lists it replaces are %d bytes\n", f.Engine, f.APIBytes, r.Catalogue.VMs, f.Rows, f.BaselineBytes)
		}
	}
}
