package console_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/knib/knib/internal/console"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

// The console is served from the binary with a strict policy; "/" leads to
// it and everything else reaches the API.
func TestConsoleIsServed(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := console.Mount(api)
	resp := get(t, h, "GET", "/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(t, h, "GET", "/api/v1/health"); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("the API is not reached: %d", resp.StatusCode)
	}
	if resp := get(t, h, "POST", "/"); resp.StatusCode != http.StatusTeapot {
		t.Fatalf("POST / goes to the API (its 404/405): %d", resp.StatusCode)
	}
	resp = get(t, h, "GET", "/ui/")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `<script type="module" src="app.js">`) {
		t.Fatalf("GET /ui/: %d %s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers: %v", resp.Header)
	}
	if resp := get(t, h, "POST", "/ui/app.js"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST to a console file: %d", resp.StatusCode)
	}
	if resp := get(t, h, "GET", "/ui/../../etc/passwd"); resp.StatusCode == 200 {
		b, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(b), "root:") {
			t.Fatal("the console serves files outside its tree")
		}
	}
}

// Every file the page references is there, and no file holds inline
// script or style (the policy would block it: a broken page).
func TestConsoleFilesAreComplete(t *testing.T) {
	root := os.DirFS("static")
	index, err := fs.ReadFile(root, "index.html")
	if err != nil {
		t.Fatal(err)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"#:]+)"`).FindAllStringSubmatch(string(index), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references: %v", refs)
	}
	for _, m := range refs {
		if _, err := fs.Stat(root, m[1]); err != nil {
			t.Errorf("index.html references %s: %v", m[1], err)
		}
	}
	if regexp.MustCompile(`<script>|<script [^>]*>[^<]|style="|<style|onclick=`).Match(index) {
		t.Fatal("index.html holds inline script or style")
	}
	app, err := fs.ReadFile(root, "app.js")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(app), "innerHTML") || strings.Contains(string(app), `setAttribute("style"`) {
		t.Fatal("app.js builds markup from strings or sets inline styles")
	}
	if !strings.Contains(string(app), "/api/v1") || regexp.MustCompile(`fetch\("(?:https?:)?//`).Match(app) {
		t.Fatal("app.js must call only this server's /api/v1")
	}
}
