package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/knib/knib/internal/testbed"
)

// A user restores their VM; the audit log (knib audit list, as the user and
// as the admin) holds the restore's line with the user's account, token and
// the operation it started, and that operation is the restore.
func TestAuditUserRestore(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-audit", DiskSizes: []int64{32 << 20}, Start: true})
	s := StartServer(t, "")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "plain")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	s.CLI("account", "create", "carol")
	var tok struct{ ID, Token string }
	s.MustJSON(&tok, "token", "create", "--account", "carol")
	s.CLI("vm", "set-owner", dom.Name, "--account", "carol")
	b := s.backup(dom.Name)
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	asCarol := []string{"KNIB_TOKEN=" + tok.Token}
	if r := s.Run(asCarol, "backup", "restore", b.ID); r.Code != 0 {
		t.Fatalf("carol's restore: exit %d: %s%s", r.Code, r.Stderr, r.Stdout)
	}

	type line struct {
		Account, Source, Action, Object, Error string
		AccountID                              string `json:"account_id"`
		TokenID                                string `json:"token_id"`
		OperationID                            string `json:"operation_id"`
		Status                                 int
	}
	var mine []line
	r := s.Run(asCarol, "audit", "list", "--action", "POST /backups/{id}/restore", "-o", "json")
	if r.Code != 0 {
		t.Fatalf("carol's audit list: exit %d: %s", r.Code, r.Stderr)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &mine); err != nil {
		t.Fatalf("%v: %s", err, r.Stdout)
	}
	if len(mine) != 1 || mine[0].Account != "carol" || mine[0].TokenID != tok.ID || mine[0].Object != "id="+b.ID ||
		mine[0].Status != 202 || mine[0].OperationID == "" || mine[0].Source == "" || mine[0].Error != "" {
		t.Fatalf("carol's restore lines: %+v", mine)
	}
	var op struct{ ID, Kind, State string }
	s.MustJSON(&op, "operation", "show", mine[0].OperationID)
	if op.Kind != "backup.restore" || op.State != "Succeeded" {
		t.Fatalf("the line's operation: %+v", op)
	}
	// The admin reads it among carol's lines; carol may not read the admin's.
	var all []line
	s.MustJSON(&all, "audit", "list", "--account", "carol")
	found := 0
	for _, l := range all {
		if l.Account != "carol" {
			t.Fatalf("--account carol gave %+v", l)
		}
		if l.OperationID == op.ID {
			found++
		}
	}
	if found != 1 {
		t.Fatalf("the admin finds the restore's line %d times in %+v", found, all)
	}
	if msg := s.Fail(asCarol, 1, "audit", "list", "--account", "admin"); !strings.Contains(msg, "admins") {
		t.Fatalf("carol asking for the admin's lines: %s", msg)
	}

	// The console's Audit page shows carol her restore (and her log-in).
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("carol-console-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.CLI("account", "passwd", "carol", "--password-file", pw)
	shots := os.Getenv("KNIB_TEST_ARTIFACTS")
	if shots == "" {
		shots = t.ArtifactDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	carol := newBrowserSession(t, shots)
	carol.login(s.URL, "carol", "carol-console-pw")
	var table string
	carol.run("audit page", chromedp.Navigate(s.URL+"/ui/#/audit"), ready("audit"), chromedp.Text("#audit", &table, chromedp.ByQuery))
	if !strings.Contains(table, "POST /backups/{id}/restore") || !strings.Contains(table, op.ID[:8]) || !strings.Contains(table, "POST /session") ||
		strings.Contains(table, "PUT /accounts/{account}/password") {
		t.Fatalf("carol's audit page: %s", table)
	}
	carol.phone("audit-phone")

	// The admin's page shows every account and filters by one.
	if err := os.WriteFile(pw, []byte("admin-console-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.CLI("account", "passwd", "admin", "--password-file", pw)
	admin := newBrowserSession(t, shots)
	admin.login(s.URL, "admin", "admin-console-pw")
	admin.run("admin's audit page", chromedp.Navigate(s.URL+"/ui/#/audit"), ready("audit"), chromedp.Text("#audit", &table, chromedp.ByQuery))
	if !strings.Contains(table, "PUT /accounts/{account}/password") || !strings.Contains(table, "POST /backups/{id}/restore") {
		t.Fatalf("the admin's audit page: %s", table)
	}
	admin.run("filter by carol", setJS("#audit-account", "carol"), clickJS("form.toolbar button[type=submit]"), ready("audit"),
		chromedp.Text("#audit", &table, chromedp.ByQuery))
	if strings.Contains(table, "PUT /accounts/{account}/password") || !strings.Contains(table, "POST /backups/{id}/restore") {
		t.Fatalf("the admin's audit page for carol: %s", table)
	}
	admin.phone("audit-admin-phone")
}
