package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/httpapi"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/store/sqlstore"
)

// browser is a client with a cookie jar, as the console's page is.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar}}
}

// do sends a request with the jar's cookies (and the CSRF header when set);
// it returns the status, the headers and the body.
func (b *browser) do(method, path, body string, hdr map[string]string) (int, http.Header, string) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.base+"/api/v1"+path, strings.NewReader(body))
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

func (b *browser) login(body string) (int, http.Header, string) {
	b.t.Helper()
	st, h, raw := b.do("POST", "/session", body, nil)
	if st == 200 {
		var s struct {
			CSRF string `json:"csrf_token"`
		}
		if err := json.Unmarshal([]byte(raw), &s); err != nil || s.CSRF == "" {
			b.t.Fatalf("log-in answer: %s", raw)
		}
		b.csrf = s.CSRF
	}
	return st, h, raw
}

// Console log-in: passwords (bcrypt), the session cookie's attributes,
// CSRF on writes, cross-site refusal, throttling, logout, idle and absolute
// expiry, and a tenant's session reaching only their account.
func TestConsoleSessions(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The fake clock starts now: the browser's cookie jar drops cookies
	// whose Expires (server time) is past by the real clock.
	clk := clock.NewFake(clock.Real{}.Now().Truncate(time.Second))
	svc := service.New(st, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	adminAcc, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adminTok, _, err := svc.Accounts.IssueToken(ctx, adminAcc.ID, domain.RoleAdmin, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv}
	e.do(adminTok, "POST", "/accounts", `{"name":"alice"}`, 201, nil)
	e.do(adminTok, "POST", "/accounts", `{"name":"bob"}`, 201, nil)
	e.do(adminTok, "PUT", "/accounts/alice/password", `{"password":"short"}`, 400, nil)
	e.do(adminTok, "PUT", "/accounts/alice/password", `{"password":"alice-secret-1"}`, 200, nil)
	e.do(adminTok, "PUT", "/accounts/admin/password", `{"password":"admin-secret-1"}`, 200, nil)
	if h, _ := st.AccountPassword(ctx, "alice"); !strings.HasPrefix(h, "$2") || strings.Contains(h, "alice-secret-1") {
		t.Fatalf("stored password is not a bcrypt hash: %q", h)
	}

	// Wrong password and unknown account: one answer.
	b := newBrowser(t, srv.URL)
	_, _, wrong := b.login(`{"account":"alice","password":"nope-nope"}`)
	_, _, unknown := b.login(`{"account":"carol","password":"nope-nope"}`)
	if !strings.Contains(wrong, "wrong account name or password") || wrong != unknown {
		t.Fatalf("wrong password %s, unknown account %s", wrong, unknown)
	}
	if code, _, _ := b.do("GET", "/whoami", "", nil); code != 401 {
		t.Fatalf("whoami without a session: %d", code)
	}

	// Log in: the cookie is HttpOnly, SameSite=Strict, Path=/.
	code, hdr, raw := b.login(`{"account":"alice","password":"alice-secret-1"}`)
	if code != 200 || !strings.Contains(raw, `"role":"user"`) {
		t.Fatalf("log-in: %d %s", code, raw)
	}
	cookie := hdr.Get("Set-Cookie")
	for _, want := range []string{"knib_session=knib_", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Fatalf("cookie %q lacks %s", cookie, want)
		}
	}
	if code, _, raw := b.do("GET", "/whoami", "", nil); code != 200 || !strings.Contains(raw, `"account":"alice"`) {
		t.Fatalf("whoami with the session: %d %s", code, raw)
	}

	// A write needs the CSRF header and, when sent, this server's Origin.
	csrf := b.csrf
	b.csrf = ""
	if code, _, raw := b.do("PUT", "/accounts/alice/password", `{"password":"alice-secret-2","current_password":"alice-secret-1"}`, nil); code != 403 || !strings.Contains(raw, "X-CSRF-Token") {
		t.Fatalf("cookie write without CSRF: %d %s", code, raw)
	}
	// A token that differs in its first character (not a fixed "0", which
	// the real token starts with one time in sixteen).
	first := "0"
	if csrf[0] == '0' {
		first = "1"
	}
	b.csrf = first + csrf[1:]
	if code, _, _ := b.do("POST", "/vms/x/assign", `{"offering_id":"y"}`, nil); code != 403 {
		t.Fatalf("cookie write with a wrong CSRF token: %d", code)
	}
	b.csrf = csrf
	if code, _, raw := b.do("POST", "/vms/x/assign", `{"offering_id":"y"}`, map[string]string{"Origin": "https://evil.example"}); code != 403 || !strings.Contains(raw, "cross-site") {
		t.Fatalf("cross-site write: %d %s", code, raw)
	}
	// A form posted from another site carries neither the header nor a
	// readable token.
	form, _ := http.NewRequest("POST", srv.URL+"/api/v1/accounts", strings.NewReader("name=pwned"))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	form.Header.Set("Origin", "https://evil.example")
	for _, c := range b.c.Jar.Cookies(form.URL) {
		form.AddCookie(c)
	}
	if resp, err := http.DefaultClient.Do(form); err != nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site form post: %v %v", resp, err)
	}
	// With the token, a user may act on their own account only.
	if code, _, raw := b.do("PUT", "/accounts/bob/password", `{"password":"bob-secret-1"}`, nil); code != 404 {
		t.Fatalf("alice sets bob's password: %d %s", code, raw)
	}
	if code, _, raw := b.do("POST", "/accounts", `{"name":"eve"}`, nil); code != 403 {
		t.Fatalf("a user's session creates an account: %d %s", code, raw)
	}

	// Idle expiry, then a fresh log-in, then the absolute end.
	clk.Advance(accountsIdle + time.Second)
	if code, _, _ := b.do("GET", "/whoami", "", nil); code != 401 {
		t.Fatalf("an idle session still works: %d", code)
	}
	if code, _, _ := b.login(`{"account":"alice","password":"alice-secret-1"}`); code != 200 {
		t.Fatal("log-in again")
	}
	for i := 0; i < 30; i++ { // used every 25 min: never idle
		clk.Advance(25 * time.Minute)
		if code, _, _ := b.do("GET", "/whoami", "", nil); code != 200 {
			if i < 28 {
				t.Fatalf("a session in use ended after %d min", 25*(i+1))
			}
			break
		}
		if i == 29 {
			t.Fatal("a session outlived its 12 h")
		}
	}

	// Logout ends the session server-side: the old cookie is refused.
	if code, _, _ := b.login(`{"account":"alice","password":"alice-secret-1"}`); code != 200 {
		t.Fatal("log-in again")
	}
	old := b.c.Jar.Cookies(form.URL)
	if code, _, _ := b.do("DELETE", "/session", "", nil); code != 200 {
		t.Fatal("logout")
	}
	replay, _ := http.NewRequest("GET", srv.URL+"/api/v1/whoami", nil)
	for _, c := range old {
		replay.AddCookie(c)
	}
	if resp, err := http.DefaultClient.Do(replay); err != nil || resp.StatusCode != 401 {
		t.Fatalf("the cookie works after logout: %v %v", resp, err)
	}

	// An API token logs in too, with its role.
	a := newBrowser(t, srv.URL)
	if code, _, raw := a.login(`{"token":"` + adminTok + `"}`); code != 200 || !strings.Contains(raw, `"role":"admin"`) {
		t.Fatalf("token log-in: %d %s", code, raw)
	}
	if code, _, _ := a.do("POST", "/accounts", `{"name":"dave"}`, nil); code != 201 {
		t.Fatalf("an admin session with CSRF creates an account: %d", code)
	}

	// Throttling: five failures for a name, then 429 with Retry-After even
	// for the right password, until the window passes.
	for i := 0; i < 5; i++ {
		if code, _, _ := b.login(`{"account":"admin","password":"wrong-wrong"}`); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	code, hdr, raw = b.login(`{"account":"admin","password":"admin-secret-1"}`)
	if code != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(raw, "too many failed log-ins") {
		t.Fatalf("after 5 failures: %d %q %s", code, hdr.Get("Retry-After"), raw)
	}
	clk.Advance(5*time.Minute + time.Second)
	if code, _, raw := b.login(`{"account":"admin","password":"admin-secret-1"}`); code != 200 || !strings.Contains(raw, `"role":"admin"`) {
		t.Fatalf("after the window: %d %s", code, raw)
	}
}

const accountsIdle = 30 * time.Minute
