package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/restores"
)

// TestAccountsAreIsolated walks every route of the OpenAPI document as a
// user of another account, with the first account's objects in the path:
// no answer may show one of them, and afterwards every one of them is as
// it was.
func TestAccountsAreIsolated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin, err := e.svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	// The first account's objects: its VMs, a backup, a snapshot, a
	// schedule, an operation, a VM detail.
	var off map[string]any
	e.do(e.admin, "POST", "/offerings", `{"name":"gold"}`, 201, &off)
	e.do(e.admin, "POST", "/vms/web/assign", `{"offering_id":"`+off["id"].(string)+`"}`, 200, nil)
	b := domain.Backup{ID: "b0000000-0000-4000-8000-000000000001", VMID: vmUUID, VMName: "web", AccountID: admin.ID, Type: domain.BackupFull,
		Position: 1, Status: domain.BackupBackedUp, Dir: "backups/web/b1", Plan: "{}", Created: now, Updated: now}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Files = []domain.BackupFile{{Disk: "vda", Path: "backups/web/b1/vda.qcow2", Full: true, Size: 1, Hash: "xxh3-128:00"}}
	if err := e.st.SaveBackup(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	sn := domain.Snapshot{ID: "50000000-0000-4000-8000-000000000001", VMID: vmUUID, Name: "before", Status: domain.SnapshotReady, Created: now}
	if err := e.st.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	var sched, op map[string]any
	e.do(e.admin, "POST", "/vms/web/schedules", `{"interval":"daily","at":"02:00"}`, 201, &sched)
	e.do(e.admin, "POST", "/inventory/refresh", "", 202, &op)
	e.do(e.admin, "PUT", "/vms/web/details/backupValidationCommand", `{"value":"c2VjcmV0"}`, 200, nil)
	secrets := []string{vmUUID, blockUUID, b.ID, sn.ID, sched["id"].(string), op["id"].(string), "c2VjcmV0", admin.ID}
	state := func() string {
		var parts []string
		for _, path := range []string{"/vms/web", "/vms/db", "/backups/" + b.ID, "/vms/web/schedules", "/vms/web/snapshots", "/vms/web/details", "/operations/" + op["id"].(string)} {
			var v any
			e.do(e.admin, "GET", path, "", 200, &v)
			raw, _ := json.Marshal(v)
			parts = append(parts, string(raw))
		}
		return strings.Join(parts, "\n")
	}
	before := state()

	raw, err := os.ReadFile("../../docs/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	fill := func(path string) []string {
		ids := map[string][]string{
			"{vm}": {"web", vmUUID}, "{account}": {"admin"}, "{host}": {"localhost"}, "{storage}": {"default"}, "{target}": {"vda"},
		}
		switch {
		case strings.HasPrefix(path, "/api/v1/backups/"):
			ids["{id}"] = []string{b.ID}
		case strings.HasPrefix(path, "/api/v1/operations/"):
			ids["{id}"] = []string{op["id"].(string)}
		case strings.HasPrefix(path, "/api/v1/schedules/"):
			ids["{id}"] = []string{sched["id"].(string)}
		case strings.HasPrefix(path, "/api/v1/snapshots/"):
			ids["{id}"] = []string{sn.ID}
		default:
			ids["{id}"] = []string{off["id"].(string)}
		}
		if strings.HasPrefix(path, "/api/v1/settings/") {
			ids["{key}"] = []string{"backup.chain.size"}
		} else {
			ids["{key}"] = []string{"backupValidationCommand"}
		}
		out := []string{path}
		for param, values := range ids {
			var next []string
			for _, p := range out {
				if !strings.Contains(p, param) {
					next = append(next, p)
					continue
				}
				for _, v := range values {
					next = append(next, strings.ReplaceAll(p, param, v))
				}
			}
			out = next
		}
		return out
	}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tried := 0
	for _, p := range paths {
		for method := range doc.Paths[p] {
			for _, url := range fill(p) {
				for _, body := range []string{"", "{}"} {
					ctx, cancel := context.WithCancel(context.Background())
					if p == "/api/v1/events" {
						// A stream stays open: read what it sends in a
						// second, for the caller's operations and for the
						// first account's.
						ctx, cancel = context.WithTimeout(context.Background(), time.Second)
						if body != "" {
							url += "?operation=" + op["id"].(string)
						}
					}
					req, _ := http.NewRequestWithContext(ctx, strings.ToUpper(method), e.srv.URL+url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+e.user)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					cancel()
					tried++
					if resp.StatusCode >= 500 {
						t.Errorf("%s %s as another account: %d %s", strings.ToUpper(method), url, resp.StatusCode, got)
					}
					for _, secret := range secrets {
						// A refusal may echo what the caller sent; any other
						// sight of the first account's objects is a leak.
						echo := resp.StatusCode >= 400 && strings.Contains(url, secret)
						if !echo && strings.Contains(string(got), secret) {
							t.Errorf("%s %s as another account (%d) shows %s: %.300s", strings.ToUpper(method), url, resp.StatusCode, secret, got)
						}
					}
				}
			}
		}
	}
	if tried < 100 {
		t.Fatalf("only %d requests tried", tried)
	}
	e.svc.Kernel.Wait()
	if after := state(); after != before {
		t.Fatalf("another account's requests changed the first account's objects:\nbefore %s\nafter  %s", before, after)
	}
}

// A user's new VM lives in the account's namespace (alice.NAME): a name that
// another account uses is no refusal, so the answer reveals nothing about
// it, while an admin asking for a taken name gets a conflict.
func TestCreateVMNamesDoNotDiscloseOtherAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.do(e.admin, "PUT", "/vms/web/owner", `{"account":"alice"}`, 200, nil)
	alice, err := e.st.Account(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	b := domain.Backup{ID: "b0000000-0000-4000-8000-000000000002", VMID: vmUUID, VMName: "web", AccountID: alice.ID,
		Type: domain.BackupFull, Position: 1, Status: domain.BackupBackedUp, Dir: "backups/web/b1", Plan: "{}", Created: now, Updated: now}
	if err := e.st.CreateBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	// "db" belongs to the admin's account.
	e.do(e.admin, "POST", "/backups/"+b.ID+"/create-vm", `{"name":"db"}`, 409, nil)
	var op map[string]any
	e.do(e.user, "POST", "/backups/"+b.ID+"/create-vm", `{"name":"db"}`, 202, &op)
	e.svc.Kernel.Wait()
	e.do(e.user, "GET", "/operations/"+op["id"].(string), "", 200, &op)
	if msg, _ := op["error"].(string); strings.Contains(msg, "exists") {
		t.Fatalf("the operation tells the user another account's name: %v", op)
	}
	// The prefix is given once, whatever the caller writes.
	p := domain.Principal{AccountName: "alice", Role: domain.RoleUser}
	for in, want := range map[string]string{"db": "alice.db", "alice.db": "alice.db", "x.y": "alice.x.y"} {
		if got, err := restores.UserVMName(p, in); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := restores.UserVMName(domain.Principal{AccountName: "a b", Role: domain.RoleUser}, "db"); err == nil {
		t.Error("an account name that cannot prefix a VM name was used")
	}
	if _, err := restores.UserVMName(p, strings.Repeat("x", 60)); err == nil {
		t.Error("a name too long with its prefix was accepted")
	}
}
