package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/knib/knib/internal/testbed"
)

// chromium is Debian's browser, installed by scripts/setup.sh.
const chromium = "/usr/bin/chromium"

// browserSession is one headless Chromium profile: its own cookies.
type browserSession struct {
	t      *testing.T
	ctx    context.Context
	shots  string
	mu     sync.Mutex
	errors []string
}

func newBrowserSession(t *testing.T, shots string) *browserSession {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("KNIB_TEST_REQUIRE_INFRA") != "" {
			t.Fatalf("chromium is not installed (scripts/setup.sh installs it): %v", err)
		}
		t.Skip("chromium is not installed")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	b := &browserSession{t: t, ctx: ctx, shots: shots}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			b.mu.Lock()
			b.errors = append(b.errors, e.ExceptionDetails.Error())
			b.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("console.error %v", e.Args))
				b.mu.Unlock()
			}
		case *page.EventJavascriptDialogOpening:
			b.mu.Lock()
			b.errors = append(b.errors, "a native dialog opened: "+e.Message) // the console asks in its own dialogs
			b.mu.Unlock()
		}
	})
	return b
}

func (b *browserSession) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	if err := chromedp.Run(b.ctx, actions...); err != nil {
		var html string
		_ = chromedp.Run(b.ctx, chromedp.OuterHTML("main", &html, chromedp.ByQuery))
		b.t.Fatalf("%s: %v\npage: %.2000s", what, err, html)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errors) > 0 {
		b.t.Fatalf("%s: the browser's console shows errors: %v", what, b.errors)
	}
}

// ready waits until the page says it has rendered page.
// It polls from the page's script: chromedp's DOM tracking loses its way
// once a modal dialog (the top layer) opened.
func ready(pageName string) chromedp.Action {
	return waitJS(fmt.Sprintf(`document.body.dataset.ready === %q`, pageName))
}

// shot saves the page as a PNG for a reviewer.
func (b *browserSession) shot(name string) {
	b.t.Helper()
	var png []byte
	b.run("screenshot "+name, chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// clickJS clicks an element from the page's own script: chromedp's DOM
// tracking does not follow a modal dialog (the top layer).
func clickJS(sel string) chromedp.Action {
	var ok bool
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if err := chromedp.Poll(fmt.Sprintf(`document.querySelector(%q) !== null`, sel), &ok).Do(ctx); err != nil {
			return err
		}
		return chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(), true`, sel), &ok).Do(ctx)
	})
}

// setJS sets a form field's value from the page's script.
func setJS(sel, value string) chromedp.Action {
	var ok bool
	return chromedp.Evaluate(fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event("input")); return true })(document.querySelector(%q))`, value, sel), &ok)
}

// changeJS picks a select's option from the page's script, as a user's
// choice does (a change event).
func changeJS(sel, value string) chromedp.Action {
	var ok bool
	return chromedp.Evaluate(fmt.Sprintf(`(e => { e.value = %q; e.dispatchEvent(new Event("change")); return true })(document.querySelector(%q))`, value, sel), &ok)
}

// checkJS ticks a checkbox from the page's script.
func checkJS(sel string) chromedp.Action {
	var ok bool
	return chromedp.Evaluate(fmt.Sprintf(`(e => { e.checked = true; return true })(document.querySelector(%q))`, sel), &ok)
}

// waitJS waits until a script expression is truthy.
func waitJS(expr string) chromedp.Action {
	var res any
	return chromedp.Poll(expr+` ? true : false`, &res)
}

// phone shows the current page at a phone's width: it must fit without a
// horizontal scroll of the page; a screenshot is saved.
func (b *browserSession) phone(name string) {
	b.t.Helper()
	var overflow int
	b.run("phone width", chromedp.EmulateViewport(390, 844),
		chromedp.Evaluate(`document.documentElement.scrollWidth - window.innerWidth`, &overflow))
	b.shot(name)
	b.run("desktop width", chromedp.EmulateViewport(1280, 900))
	if overflow > 0 {
		b.t.Fatalf("%s: the page is %d px wider than a phone's screen", name, overflow)
	}
}

func (b *browserSession) login(url, account, password string) {
	b.t.Helper()
	b.run("log in as "+account,
		chromedp.Navigate(url+"/"), ready("login"),
		chromedp.SendKeys("#login-account", account, chromedp.ByQuery),
		chromedp.SendKeys("#login-password", password, chromedp.ByQuery),
		chromedp.Click("#login-submit", chromedp.ByQuery), ready("dashboard"))
}

// TestConsoleInABrowser drives the web console in Debian's Chromium against
// a real server and real VMs: log-in with a password, the dashboard, a
// backup whose progress the server pushes, the chain graph, a validation
// screenshot, the jobs and admin pages, logout; then a tenant who sees only their VM, cannot
// reach the admin's backup by URL, and whose cookie does not carry a
// cross-site write. Each page is saved as a PNG (KNIB_TEST_ARTIFACTS, else
// the test's artifact directory).
func TestConsoleInABrowser(t *testing.T) {
	shots := os.Getenv("KNIB_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.ArtifactDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("console screenshots in %s", shots)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-console", Start: true})
	other := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-console-alice"})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	s.CLI("settings", "set", "backup.validation.screenshot.default.wait", "2")
	s.CLI("settings", "set", "backup.validation.max.job.retries", "0")
	s.CLI("host", "refresh")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "console", "--validate", "--validation-steps", "screenshot", "--allow-quick-restore", "--allow-extract-file")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	pw := filepath.Join(t.TempDir(), "pw")
	for acc, secret := range map[string]string{"admin": "admin-console-pw", "alice": "alice-console-pw"} {
		if acc != "admin" {
			s.CLI("account", "create", acc)
		}
		if err := os.WriteFile(pw, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.CLI("account", "passwd", acc, "--password-file", pw)
	}
	s.CLI("vm", "set-owner", other.Name, "--account", "alice")

	admin := newBrowserSession(t, shots)
	admin.login(s.URL, "admin", "admin-console-pw")
	var table string
	admin.run("dashboard", chromedp.Text("#dashboard", &table, chromedp.ByQuery))
	if !strings.Contains(table, dom.Name) || !strings.Contains(table, other.Name) || !strings.Contains(table, "assigned, never backed up") {
		t.Fatalf("dashboard: %s", table)
	}
	admin.shot("dashboard")

	// Keyboard: Tab reaches the dashboard's column headers, Enter sorts.
	var sorted string
	admin.run("sort with the keyboard", chromedp.ActionFunc(func(ctx context.Context) error {
		for range 30 {
			if err := chromedp.KeyEvent(kb.Tab).Do(ctx); err != nil {
				return err
			}
			var tag string
			if err := chromedp.Evaluate(`document.activeElement.tagName + ":" + document.activeElement.textContent`, &tag).Do(ctx); err != nil {
				return err
			}
			if strings.HasPrefix(tag, "TH:VM") {
				return nil
			}
		}
		return fmt.Errorf("30 tabs never reached the dashboard's VM column")
	}), chromedp.KeyEvent(kb.Enter),
		chromedp.AttributeValue(`#dashboard th[aria-sort="ascending"]`, "aria-sort", &sorted, nil, chromedp.ByQuery))
	if sorted != "ascending" {
		t.Fatalf("the VM column after Enter: %q", sorted)
	}
	// A phone: the page fits its width (wide tables scroll in place).
	admin.phone("dashboard-phone")

	// What the guest wrote before the backup is what a quick restore from
	// the console gives back.
	guest(t, dom, "echo before > /data/console && sync")

	// A backup from the VM page: the progress arrives without a reload.
	admin.run("vm page", chromedp.Navigate(s.URL+"/ui/#/vm/"+dom.Name), ready("vm"))
	admin.run("back up", chromedp.Click("#backup-now", chromedp.ByQuery),
		waitJS(`document.querySelector('#op .op-state[data-state="Succeeded"]')`), ready("vm"))
	var backups []Backup
	s.MustJSON(&backups, "backup", "list", "--vm", dom.Name)
	if len(backups) != 1 {
		t.Fatalf("backups after the console's backup: %+v", backups)
	}
	b1 := backups[0].ID
	admin.run("chain graph", chromedp.WaitVisible(fmt.Sprintf(`#chain-graph [data-backup=%q]`, b1), chromedp.ByQuery))
	admin.shot("vm")

	// The validation's screenshot on the backup page.
	if v := s.waitValidation(b1); v.ValidationStatus != "Valid" {
		t.Fatalf("validation: %+v", v)
	}
	var width int
	admin.run("backup page", chromedp.Navigate(s.URL+"/ui/#/backup/"+b1), ready("backup"),
		chromedp.WaitVisible("#screenshot", chromedp.ByQuery),
		chromedp.Poll(`document.querySelector("#screenshot").complete && document.querySelector("#screenshot").naturalWidth`, &width))
	if width < 100 {
		t.Fatalf("the validation screenshot did not load: width %d", width)
	}
	admin.shot("backup")

	// Browse the backup's files and download one (the page's own request:
	// the session's cookie and CSRF token).
	admin.run("browse files", clickJS("#browse-files"), waitJS(`document.querySelector('#volumes [data-volume="vda"] button')`),
		clickJS(`#volumes [data-volume="vda"] button`), waitJS(`document.querySelector('#entries [data-entry="console"]')`))
	admin.shot("files")
	var tarText string
	admin.run("download a file", chromedp.Evaluate(fmt.Sprintf(`(async () => {
		const s = await (await fetch("/api/v1/session")).json();
		const r = await fetch("/api/v1/backups/%s/files/extract", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token},
			body: JSON.stringify({paths: ["/console"], disk: "vda"})});
		return r.status + ":" + await r.text();
	})()`, b1), &tarText, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.HasPrefix(tarText, "200:") || !strings.Contains(tarText, "console\x00") || !strings.Contains(tarText, "before\n") {
		t.Fatalf("the console's download of /console: %.200q", tarText)
	}

	// Quick restore from the console, after the confirmation: the stopped
	// VM runs again at once with the backup's data.
	guest(t, dom, "echo after > /data/console && sync")
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("host", "refresh")
	admin.run("quick restore", chromedp.Navigate(s.URL+"/ui/#/vm/"+dom.Name), ready("vm"),
		clickJS(fmt.Sprintf(`tr[data-backup=%q] [data-action="quick-restore"]`, b1)), waitJS(`document.querySelector("dialog[open] #restore")`))
	admin.shot("quick-restore-confirm")
	admin.run("confirm the quick restore", clickJS("#restore-submit"),
		waitJS(`document.querySelector('#op .op-state[data-state="Succeeded"]')`), ready("vm"))
	if err := dom.WaitAgent(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/console"); got != "before\n" {
		t.Fatalf("after the console's quick restore the guest reads %q, want the backup's", got)
	}
	admin.shot("vm-after-quick-restore")

	// Delete from the console: the confirmation says what the chain rules
	// do (the server's plan), and the deletion does just that.
	b2 := s.backup(dom.Name)
	b3 := s.backup(dom.Name)
	if b3.Type != "incremental" {
		t.Fatalf("b3: %+v", b3)
	}
	// A backup being validated cannot be deleted: let the validations end.
	s.waitValidation(b2.ID)
	s.waitValidation(b3.ID)
	var lines string
	admin.run("delete", chromedp.Navigate(s.URL+"/ui/#/"), ready("dashboard"), chromedp.Navigate(s.URL+"/ui/#/vm/"+dom.Name), ready("vm"),
		clickJS(fmt.Sprintf(`tr[data-backup=%q] [data-action="delete"]`, b2.ID)), waitJS(`document.querySelector("#confirm[open]")`),
		chromedp.Evaluate(`document.querySelector("#confirm-consequences").textContent`, &lines))
	if !strings.Contains(lines, "Only marked Removed") || !strings.Contains(lines, b2.ID[:8]) {
		t.Fatalf("the delete confirmation: %q", lines)
	}
	admin.shot("delete-confirm")
	admin.run("confirm the deletion", clickJS("#confirm-yes"),
		waitJS(`document.querySelector('#op .op-state[data-state="Succeeded"]')`), ready("vm"))
	if got := s.backups(dom.Name)[b2.ID]; got.Status != "Removed" {
		t.Fatalf("b2 after the console's delete: %+v", got)
	}
	if got := s.backups(dom.Name)[b3.ID]; got.Status != "BackedUp" {
		t.Fatalf("b3 after the console's delete of b2: %+v", got)
	}
	admin.phone("vm-phone")

	admin.run("jobs page", chromedp.Navigate(s.URL+"/ui/#/jobs"), ready("jobs"))
	admin.shot("jobs")
	admin.run("admin page", chromedp.Navigate(s.URL+"/ui/#/admin"), ready("admin"))
	admin.shot("admin")

	// Forms: a new offering, a setting at an account's scope, a schedule;
	// the API's refusal shows in the form, which stays open.
	formDone := func(id, pageName string) chromedp.Action {
		return waitJS(fmt.Sprintf(`!document.querySelector(%q) && document.body.dataset.ready === %q`, "#"+id, pageName))
	}
	admin.run("new offering", clickJS("#offering-create"), waitJS(`document.querySelector("#offering")`),
		setJS("#offering-name", "console-form"), checkJS("#offering-validate"), setJS("#offering-backup_chain_size", "4"))
	admin.shot("offering-form")
	admin.run("create the offering", clickJS("#offering-submit"), formDone("offering", "admin"))
	var offerings []struct {
		Name            string
		Validate        bool
		BackupChainSize *int `json:"backup_chain_size"`
	}
	s.MustJSON(&offerings, "offering", "list")
	found := false
	for _, o := range offerings {
		found = found || (o.Name == "console-form" && o.Validate && o.BackupChainSize != nil && *o.BackupChainSize == 4)
	}
	if !found {
		t.Fatalf("the console's offering: %+v", offerings)
	}
	var formErr string
	admin.run("the same offering again", clickJS("#offering-create"), waitJS(`document.querySelector("#offering")`),
		setJS("#offering-name", "console-form"), clickJS("#offering-submit"), waitJS(`!document.querySelector("#offering-error").hidden`),
		chromedp.Evaluate(`document.querySelector("#offering-error").textContent`, &formErr), clickJS("#offering-cancel"))
	if !strings.Contains(formErr, "console-form") {
		t.Fatalf("the refusal of a taken name: %q", formErr)
	}
	admin.run("a setting for an account", clickJS(`[data-setting="backup.compression.task.enabled"]`), waitJS(`document.querySelector("#setting")`),
		setJS("#setting-value", "false"), setJS("#setting-scope", "account"), setJS("#setting-name", "alice"),
		clickJS("#setting-submit"), formDone("setting", "admin"))
	var settings []struct{ Key, Value, Source string }
	s.MustJSON(&settings, "settings", "list", "--scope", "account", "--account", "alice")
	for _, st := range settings {
		if st.Key == "backup.compression.task.enabled" && (st.Value != "false" || st.Source != "account") {
			t.Fatalf("the setting the console set for alice: %+v", st)
		}
	}
	// A token revoked from the admin page authenticates nobody afterwards.
	var tok struct{ ID, Token string }
	s.MustJSON(&tok, "token", "create", "--account", "alice", "--name", "console-revoke")
	whoami := func() int {
		req, _ := http.NewRequest("GET", s.URL+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := whoami(); got != http.StatusOK {
		t.Fatalf("the new token: %d", got)
	}
	admin.run("revoke a token", chromedp.Navigate(s.URL+"/ui/#/"), ready("dashboard"), chromedp.Navigate(s.URL+"/ui/#/admin"), ready("admin"),
		clickJS(fmt.Sprintf(`[data-token=%q]`, tok.ID)), waitJS(`document.querySelector("#confirm[open]")`), clickJS("#confirm-yes"),
		waitJS(fmt.Sprintf(`document.body.dataset.ready === "admin" && !document.querySelector(%q)`, fmt.Sprintf(`[data-token=%q]`, tok.ID))))
	if got := whoami(); got != http.StatusUnauthorized {
		t.Fatalf("the token revoked in the console: %d", got)
	}

	// The admin page shows the effective values at alice's scope.
	admin.run("settings at alice's scope", chromedp.Navigate(s.URL+"/ui/#/admin"), ready("admin"), changeJS("#settings-scope", "account"),
		waitJS(`document.body.dataset.ready === "admin" && !document.querySelector("#settings-scope-name").hidden`),
		changeJS("#settings-scope-name", "alice"),
		waitJS(`[...document.querySelectorAll("tr")].some(tr => tr.textContent.startsWith("backup.compression.task.enabledfalseaccount"))`))
	admin.shot("settings-alice")
	admin.run("a schedule", chromedp.Navigate(s.URL+"/ui/#/vm/"+dom.Name), ready("vm"), clickJS("#schedule-add"),
		waitJS(`document.querySelector("#schedule")`), setJS("#schedule-at", "03:30"), setJS("#schedule-max_backups", "7"),
		clickJS("#schedule-submit"), formDone("schedule", "vm"), waitJS(`document.querySelectorAll("#schedules li").length === 1`))
	var schedules []struct {
		Interval, At string
		MaxBackups   int `json:"max_backups"`
	}
	s.MustJSON(&schedules, "schedule", "list", dom.Name)
	if len(schedules) != 1 || schedules[0].Interval != "daily" || schedules[0].At != "03:30" || schedules[0].MaxBackups != 7 {
		t.Fatalf("the console's schedule: %+v", schedules)
	}
	admin.run("change the schedule", clickJS(`#schedules [data-action="edit"]`), waitJS(`document.querySelector("#schedule")`),
		setJS("#schedule-interval", "weekly"), setJS("#schedule-at", "sun 04:15"), clickJS("#schedule-submit"), formDone("schedule", "vm"))
	s.MustJSON(&schedules, "schedule", "list", dom.Name)
	if len(schedules) != 1 || schedules[0].Interval != "weekly" || schedules[0].At != "sun 04:15" || schedules[0].MaxBackups != 7 {
		t.Fatalf("the console's changed schedule: %+v", schedules)
	}
	var status int
	admin.run("log out", chromedp.Click("#logout", chromedp.ByQuery), ready("login"),
		chromedp.Evaluate(`fetch("/api/v1/whoami").then(r => r.status)`, &status, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
			return p.WithAwaitPromise(true)
		}))
	if status != 401 {
		t.Fatalf("whoami after logout: %d", status)
	}

	// A tenant sees only their VM and cannot open the admin's backup.
	alice := newBrowserSession(t, shots)
	alice.login(s.URL, "alice", "alice-console-pw")
	alice.run("tenant dashboard", chromedp.Text("#dashboard", &table, chromedp.ByQuery))
	if !strings.Contains(table, other.Name) || strings.Contains(table, dom.Name+"\n") || strings.Contains(table, "knib-t-console\t") {
		t.Fatalf("tenant dashboard: %s", table)
	}
	var rows int
	alice.run("tenant rows", chromedp.Evaluate(`document.querySelectorAll("#dashboard tbody tr").length`, &rows))
	if rows != 1 {
		t.Fatalf("the tenant sees %d VMs, want 1: %s", rows, table)
	}
	alice.shot("tenant-dashboard")
	var msg string
	alice.run("tenant opens the admin's backup", chromedp.Navigate(s.URL+"/ui/#/backup/"+b1), ready("error"),
		chromedp.Text("#page-error", &msg, chromedp.ByQuery))
	if !strings.Contains(msg, "not found") {
		t.Fatalf("the tenant's view of the admin's backup: %q", msg)
	}
	// A write from another site with the tenant's cookie is refused.
	var cookies []*network.Cookie
	alice.run("cookies", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{s.URL}).Do(ctx)
		return err
	}))
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/vms/"+other.Name+"/backups", strings.NewReader("{}"))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Content-Type", "text/plain")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(cookies) == 0 || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site write with the tenant's cookie (%d cookies): %d", len(cookies), resp.StatusCode)
	}
}
