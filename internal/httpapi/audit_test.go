package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/httpapi"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/faultstore"
	"github.com/knib/knib/internal/store/sqlstore"
)

// auditLines reads the audit log as token sees it (one page of at most
// 1000 lines) and the raw JSON it came in.
func auditLines(t *testing.T, e *env, token, query string) ([]api.AuditLine, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/audit?limit=1000"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /audit%s: %d %s", query, resp.StatusCode, raw)
	}
	var list []api.AuditLine
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return list, string(raw)
}

// only returns the one line of action on object, failing on none or more.
func only(t *testing.T, list []api.AuditLine, action, object string) api.AuditLine {
	t.Helper()
	var found []api.AuditLine
	for _, l := range list {
		if l.Action == action && l.Object == object {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s %s: %d audit lines, want 1: %+v", action, object, len(found), list)
	}
	return found[0]
}

// A user's restore, an admin's setting change and refused requests (no
// token, a user asking for an admin's call, a wrong password) each leave
// exactly their line with who, from where, what and the result; reads leave
// none; no line holds a password or a token.
func TestAuditLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	user, err := e.svc.Accounts.Authenticate(ctx, e.user)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := e.svc.Accounts.Authenticate(ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)

	// The user's stopped VM "db" and a backup of it.
	e.do(e.admin, "PUT", "/vms/db/owner", `{"account":"alice"}`, 200, nil)
	now := time.Now().UTC()
	st := addStorage(t, e, now)
	b := domain.Backup{ID: "b0000000-0000-4000-8000-0000000000a1", VMID: blockUUID, VMName: "db", AccountID: user.AccountID, Type: domain.BackupFull,
		Position: 1, Status: domain.BackupBackedUp, Dir: "backups/db/b1", Plan: "{}", Created: now, Updated: now, StorageID: st.ID}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	var op api.Operation
	e.do(e.user, "POST", "/backups/"+b.ID+"/restore", `{}`, 202, &op)
	if op.ID == "" {
		t.Fatal("the restore answered no operation")
	}

	// The admin changes a setting; the user may not.
	e.do(e.admin, "PUT", "/settings/backup.chain.size", `{"value":"5"}`, 200, nil)
	e.do(e.user, "PUT", "/settings/backup.chain.size", `{"value":"6"}`, 403, nil)
	// No token at all.
	e.do("", "POST", "/offerings", `{"name":"gold"}`, 401, nil)
	// Secrets: a password set, a token issued, a log-in with a wrong password.
	const password, wrong = "Corr3ct-Horse-Battery", "Wr0ng-Horse-Battery"
	e.do(e.admin, "PUT", "/accounts/alice/password", `{"password":"`+password+`"}`, 200, nil)
	var tok map[string]any
	e.do(e.admin, "POST", "/tokens", `{"account":"alice","role":"user"}`, 201, &tok)
	b2 := newBrowser(t, e.srv.URL)
	if st, _, body := b2.login(`{"account":"alice","password":"` + wrong + `"}`); st != 401 {
		t.Fatalf("a wrong password: %d %s", st, body)
	}
	if st, _, body := b2.login(`{"account":"alice","password":"` + password + `"}`); st != 200 {
		t.Fatalf("the right password: %d %s", st, body)
	}
	if st, _, body := b2.do("DELETE", "/session", "", nil); st != 200 {
		t.Fatalf("log-out: %d %s", st, body)
	}
	// Reads leave no line.
	e.do(e.user, "GET", "/vms", "", 200, nil)

	list, raw := auditLines(t, e, e.admin, "&since="+url.QueryEscape(since))
	r := only(t, list, "POST /backups/{id}/restore", "id="+b.ID)
	if r.AccountID != user.AccountID || r.Account != "alice" || r.TokenID != user.TokenID || r.TokenID == "" || r.Source != "127.0.0.1" ||
		r.Status != 202 || r.OperationID != op.ID || r.Error != "" || r.Time.IsZero() {
		t.Errorf("the restore's line: %+v", r)
	}
	var set []api.AuditLine
	for _, l := range list {
		if l.Action == "PUT /settings/{key}" {
			set = append(set, l)
		}
	}
	if len(set) != 2 {
		t.Fatalf("setting lines: %+v", set)
	}
	for _, l := range set {
		switch l.Account {
		case "admin":
			if l.AccountID != admin.AccountID || l.TokenID != admin.TokenID || l.Status != 200 || l.Error != "" || l.Object != "key=backup.chain.size" {
				t.Errorf("the admin's setting change: %+v", l)
			}
		case "alice":
			if l.AccountID != user.AccountID || l.Status != 403 || l.Error == "" {
				t.Errorf("the user's refused setting change: %+v", l)
			}
		default:
			t.Errorf("a setting line of %q: %+v", l.Account, l)
		}
	}
	if l := only(t, list, "POST /offerings", ""); l.AccountID != "" || l.Account != "" || l.Status != 401 || !strings.Contains(l.Error, "token") {
		t.Errorf("the unauthenticated call's line: %+v", l)
	}
	var logins []api.AuditLine
	for _, l := range list {
		if l.Action == "POST /session" {
			logins = append(logins, l)
		}
		if strings.HasPrefix(l.Action, "GET ") {
			t.Errorf("a read left a line: %+v", l)
		}
	}
	if len(logins) != 2 || logins[0].Status != 200 || logins[0].AccountID != user.AccountID ||
		logins[1].Status != 401 || logins[1].AccountID != "" || logins[1].Account != "alice" || logins[1].Error == "" {
		t.Errorf("log-in lines (newest first): %+v", logins)
	}
	if l := only(t, list, "DELETE /session", ""); l.AccountID != user.AccountID || l.Account != "alice" || l.Status != 200 || l.TokenID != "" {
		t.Errorf("the log-out's line: %+v", l)
	}
	for _, secret := range []string{password, wrong, e.admin, e.user, tok["token"].(string)} {
		if strings.Contains(raw, secret) {
			t.Errorf("the audit log holds a secret %q: %s", secret, raw)
		}
	}

	// A user reads their account's lines only, and may not ask for another's.
	mine, _ := auditLines(t, e, e.user, "")
	if len(mine) == 0 {
		t.Fatal("the user reads none of their lines")
	}
	for _, l := range mine {
		if l.AccountID != user.AccountID && l.Account != "alice" {
			t.Errorf("the user reads another account's line: %+v", l)
		}
	}
	e.do(e.user, "GET", "/audit?account=admin", "", 403, nil)
	if own, _ := auditLines(t, e, e.user, "&account=alice&action="+url.QueryEscape("POST /backups/{id}/restore")); len(own) != 1 || own[0].OperationID != op.ID {
		t.Errorf("the user's own restore lines: %+v", own)
	}
	// An admin filters by account; bad filters are refused.
	for _, l := range func() []api.AuditLine { l, _ := auditLines(t, e, e.admin, "&account=admin"); return l }() {
		if l.Account != "admin" {
			t.Errorf("account=admin gave %+v", l)
		}
	}
	e.do(e.admin, "GET", "/audit?since=yesterday", "", 400, nil)
	e.do(e.admin, "GET", "/audit?account="+strings.Repeat("x", 300), "", 400, nil)
	// Pages: one line, then the next one through the cursor.
	page := func(cursor string) (api.AuditLine, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/audit?limit=1&cursor="+url.QueryEscape(cursor), nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l []api.AuditLine
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || len(l) != 1 {
			t.Fatalf("a page of one line: %+v %v", l, err)
		}
		return l[0], resp.Header.Get(api.NextCursorHeader)
	}
	first, next := page("")
	second, _ := page(next)
	if next == "" || first.ID != list[0].ID || second.ID != list[1].ID {
		t.Errorf("pages: %s then %s (cursor %q), want %s then %s", first.ID, second.ID, next, list[0].ID, list[1].ID)
	}
	e.do(e.admin, "GET", "/audit?limit=0&bogus=1", "", 400, nil)
}

// An audit line that cannot be written is logged at error level; the call
// it records, made already, still answers its own result.
func TestAuditWriteFailureIsLogged(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := faultstore.New(db)
	var logged bytes.Buffer
	svc := service.New(fs, clock.Real{}, slog.New(slog.NewTextHandler(&logged, nil)))
	acc, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.Accounts.IssueToken(ctx, acc.ID, domain.RoleAdmin, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(svc, svc.Kernel.Log()))
	defer srv.Close()
	e := &env{t: t, srv: srv}
	fs.FailWrite(2) // 1: the setting, 2: its audit line
	e.do(tok, "PUT", "/settings/backup.chain.size", `{"value":"5"}`, 200, nil)
	if got := fs.Failed(); len(got) != 1 || got[0] != "AppendAudit" {
		t.Fatalf("failed writes: %v, want the audit line's", got)
	}
	list, err := db.ListSettings(ctx)
	if err != nil || len(list) != 1 || list[0].Value != "5" {
		t.Fatalf("the setting: %+v %v", list, err)
	}
	if l := logged.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "audit line not recorded") ||
		!strings.Contains(l, "PUT /settings/{key}") {
		t.Fatalf("log: %s", l)
	}
	if lines, err := db.ListAudit(ctx, store.AuditFilter{}); err != nil || len(lines) != 0 {
		t.Fatalf("audit lines: %+v %v", lines, err)
	}
}
