package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/httpapi"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/store/sqlstore"
)

var update = flag.Bool("update", false, "rewrite docs/openapi.json from the route table")

const vmUUID = "11111111-2222-4333-8444-555555555555"
const blockUUID = "11111111-2222-4333-8444-666666666666"

type env struct {
	t      testing.TB
	srv    *httptest.Server
	svc    *service.Service
	admin  string
	user   string
	agent  *agenttest.Fake
	handle *httpapi.Handler
	st     *sqlstore.DB
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := service.New(st, clock.Real{}, log)
	adminAcc, err := svc.Kernel.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adminTok, _, err := svc.Accounts.IssueToken(ctx, adminAcc.ID, domain.RoleAdmin, "test")
	if err != nil {
		t.Fatal(err)
	}
	fake := &agenttest.Fake{
		Report: agentapi.HostReport{Name: "localhost", URI: "qemu:///system", LibvirtVersion: "9.0.0", HypervisorVersion: "7.2.0",
			Settings: map[string]string{"backup.validation.max.concurrent.operations.per.host": "3"}},
		Domains: []agentapi.Domain{
			{UUID: vmUUID, Name: "web", State: "running", Disks: []agentapi.Disk{
				{Target: "vda", Device: "disk", SourceType: "file", Source: "/img/web.qcow2", Format: "qcow2", VirtualSize: 1 << 30,
					BackingChain: []agentapi.Layer{{Path: "/img/base.qcow2", Format: "qcow2"}}}}},
			{UUID: blockUUID, Name: "db", State: "shutoff", Disks: []agentapi.Disk{
				{Target: "vda", Device: "disk", SourceType: "file", Source: "/img/db.qcow2", Format: "qcow2"},
				{Target: "vdb", Device: "disk", SourceType: "block", Source: "/dev/sdb", Format: "raw"}}},
		},
	}
	if _, err := svc.Hosts.RegisterHost(ctx, "default", fake, true); err != nil {
		t.Fatal(err)
	}
	if err := svc.Hosts.SyncInventory(ctx); err != nil {
		t.Fatal(err)
	}
	h := httpapi.New(svc, log)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, svc: svc, admin: adminTok, agent: fake, handle: h, st: st}
	// A user account with its own token.
	var acc map[string]any
	e.do(adminTok, "POST", "/accounts", `{"name":"alice"}`, 201, &acc)
	var tok map[string]any
	e.do(adminTok, "POST", "/tokens", `{"account":"alice","role":"user"}`, 201, &tok)
	e.user = tok["token"].(string)
	return e
}

// do sends a request and checks the status; out may be nil. It returns the
// decoded problem for error statuses.
func (e *env) do(token, method, path, body string, want int, out any) map[string]any {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.srv.URL+"/api/v1"+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if resp.StatusCode >= 400 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
			e.t.Fatalf("error content type %q", ct)
		}
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			e.t.Fatalf("problem body: %v: %s", err, raw)
		}
		return p
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("decode %s: %v", raw, err)
		}
	}
	return nil
}

func TestOpenAPIDocumentIsCheckedIn(t *testing.T) {
	e := newEnv(t)
	got := e.handle.OpenAPI()
	file := filepath.Join("..", "..", "docs", "openapi.json")
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run: go test ./internal/httpapi -run OpenAPI -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/openapi.json is out of date: run go test ./internal/httpapi -run OpenAPI -update")
	}
	// And the server serves the same document without a token.
	resp, err := http.Get(e.srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(served, got) {
		t.Fatal("served document differs")
	}
	var doc map[string]any
	if err := json.Unmarshal(got, &doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("not an OpenAPI 3.1 document: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	e.do("", "GET", "/vms", "", 401, nil)
	e.do("knib_"+strings.Repeat("A", 43), "GET", "/vms", "", 401, nil)
	e.do("garbage", "GET", "/vms", "", 401, nil)
	var who map[string]string
	e.do(e.user, "GET", "/whoami", "", 200, &who)
	if who["account"] != "alice" || who["role"] != "user" {
		t.Fatalf("whoami: %v", who)
	}
	e.do("", "GET", "/health", "", 200, nil)
}

func TestOfferingsAPI(t *testing.T) {
	e := newEnv(t)
	var o map[string]any
	e.do(e.admin, "POST", "/offerings", `{"name":"gold","compress":true,"validate":true,"backup_chain_size":3}`, 201, &o)
	if o["compression_library"] != "zstd" || o["backup_chain_size"].(float64) != 3 || o["validation_steps"].([]any)[0] != "screenshot" {
		t.Fatalf("offering: %v", o)
	}
	id := o["id"].(string)
	for _, c := range []struct{ body, field string }{
		{`{"name":"x","bogus":1}`, "bogus"},
		{`{"name":"x","backup_chain_size":"abc"}`, "backup_chain_size"},
		{`{"name":"x","backup_chain_size":2.5}`, "backup_chain_size"},
		{`{"name":"x","compression_library":"lz4"}`, "compression_library"},
		{`{"name":"x","validate":true,"validation_steps":["dance"]}`, "validation_steps"},
		{`{"name":""}`, "name"},
	} {
		p := e.do(e.admin, "POST", "/offerings", c.body, 400, nil)
		if p["field"] != c.field || p["detail"] == "" {
			t.Fatalf("%s: problem %v, want field %s", c.body, p, c.field)
		}
	}
	p := e.do(e.admin, "POST", "/offerings", `{"name":"gold"}`, 409, nil)
	if !strings.Contains(p["detail"].(string), "gold") {
		t.Fatalf("conflict message: %v", p)
	}
	var list []map[string]any
	e.do(e.admin, "GET", "/offerings?compress=true", "", 200, &list)
	if len(list) != 1 {
		t.Fatalf("filtered list: %v", list)
	}
	e.do(e.admin, "GET", "/offerings?allow_quick_restore=true", "", 200, &list)
	if len(list) != 0 {
		t.Fatalf("quick restore filter: %v", list)
	}
	e.do(e.admin, "GET", "/offerings?color=red", "", 400, nil)
	e.do(e.user, "GET", "/offerings", "", 403, nil)
	e.do(e.user, "POST", "/offerings", `{"name":"mine"}`, 403, nil)

	// Assigned offerings cannot be removed; unassigned ones are marked removed.
	e.do(e.admin, "POST", "/vms/web/assign", `{"offering_id":"`+id+`"}`, 200, nil)
	p = e.do(e.admin, "DELETE", "/offerings/"+id, "", 409, nil)
	if !strings.Contains(p["detail"].(string), "web") {
		t.Fatalf("refusal should name the VM: %v", p)
	}
	e.do(e.admin, "POST", "/vms/web/unassign", "", 200, nil)
	e.do(e.admin, "DELETE", "/offerings/"+id, "", 200, nil)
	e.do(e.admin, "GET", "/offerings", "", 200, &list)
	if len(list) != 0 {
		t.Fatalf("removed offering listed: %v", list)
	}
	e.do(e.admin, "GET", "/offerings?show_removed=true", "", 200, &list)
	if len(list) != 1 || list[0]["removed"] == nil {
		t.Fatalf("show_removed: %v", list)
	}
}

func TestVMsAndOwnership(t *testing.T) {
	e := newEnv(t)
	var o map[string]any
	e.do(e.admin, "POST", "/offerings", `{"name":"basic"}`, 201, &o)
	id := o["id"].(string)

	var vms []map[string]any
	e.do(e.admin, "GET", "/vms", "", 200, &vms)
	if len(vms) != 2 {
		t.Fatalf("admin sees %d VMs", len(vms))
	}
	var vm map[string]any
	e.do(e.admin, "GET", "/vms/"+vmUUID, "", 200, &vm)
	disk := vm["disks"].([]any)[0].(map[string]any)
	if vm["name"] != "web" || vm["state"] != "Running" || disk["target"] != "vda" ||
		disk["backing_chain"].([]any)[0].(map[string]any)["path"] != "/img/base.qcow2" {
		t.Fatalf("vm show: %v", vm)
	}
	// Users see only their account's VMs, and unknown and foreign VMs look the same.
	e.do(e.user, "GET", "/vms", "", 200, &vms)
	if len(vms) != 0 {
		t.Fatalf("user sees foreign VMs: %v", vms)
	}
	e.do(e.user, "GET", "/vms/web", "", 404, nil)
	e.do(e.user, "PUT", "/vms/web/owner", `{"account":"alice"}`, 403, nil)
	e.do(e.admin, "PUT", "/vms/web/owner", `{"account":"alice"}`, 200, nil)
	e.do(e.user, "GET", "/vms", "", 200, &vms)
	if len(vms) != 1 || vms[0]["account"] != "alice" {
		t.Fatalf("user VMs after set-owner: %v", vms)
	}
	e.do(e.user, "POST", "/vms/web/assign", `{"offering_id":"`+id+`"}`, 200, &vm)
	if vm["offering"] != "basic" {
		t.Fatalf("assign: %v", vm)
	}
	e.do(e.user, "POST", "/vms/db/assign", `{"offering_id":"`+id+`"}`, 404, nil)
	p := e.do(e.admin, "POST", "/vms/db/assign", `{"offering_id":"`+id+`"}`, 400, nil)
	if !strings.Contains(p["detail"].(string), "vdb") {
		t.Fatalf("refusal must name the disk: %v", p)
	}
	e.do(e.admin, "POST", "/vms/web/assign", `{"offering_id":"nope"}`, 404, nil)
	e.do(e.admin, "GET", "/vms/a%2Fb", "", 400, nil)
	e.do(e.user, "GET", "/hosts", "", 403, nil)
	var hosts []map[string]any
	e.do(e.admin, "GET", "/hosts", "", 200, &hosts)
	if len(hosts) != 1 || hosts[0]["name"] != "localhost" || hosts[0]["zone"] != "default" || hosts[0]["libvirt_version"] != "9.0.0" {
		t.Fatalf("hosts: %v", hosts)
	}
}

func TestGuestExecArgumentsArriveVerbatim(t *testing.T) {
	e := newEnv(t)
	var got agentapi.GuestExecRequest
	e.agent.Exec = func(req agentapi.GuestExecRequest) (agentapi.GuestExecResult, error) {
		got = req
		return agentapi.GuestExecResult{Stdout: []byte("ok\n")}, nil
	}
	args := []string{`a"b`, `x","y":"z`, "line1\nline2", `\`, "{}"}
	body, _ := json.Marshal(map[string]any{"path": "/bin/echo", "args": args})
	var res map[string]any
	e.do(e.admin, "POST", "/vms/web/guest-exec", string(body), 200, &res)
	if res["stdout"] != "ok\n" || len(got.Args) != len(args) {
		t.Fatalf("exec: %v %v", res, got)
	}
	for i := range args {
		if got.Args[i] != args[i] {
			t.Fatalf("argument %d: got %q want %q", i, got.Args[i], args[i])
		}
	}
	e.do(e.user, "POST", "/vms/web/guest-exec", string(body), 403, nil)
}

func TestSettingsAPI(t *testing.T) {
	e := newEnv(t)
	var list []map[string]any
	e.do(e.admin, "GET", "/settings", "", 200, &list)
	byKey := map[string]map[string]any{}
	for _, s := range list {
		byKey[s["key"].(string)] = s
	}
	if byKey["backup.chain.size"]["value"] != "8" || byKey["backup.chain.size"]["source"] != "default" {
		t.Fatalf("chain size default: %v", byKey["backup.chain.size"])
	}
	var s map[string]any
	e.do(e.admin, "PUT", "/settings/backup.chain.size", `{"value":"3"}`, 200, &s)
	if s["value"] != "3" || s["source"] != "global" {
		t.Fatalf("set: %v", s)
	}
	p := e.do(e.admin, "PUT", "/settings/backup.chain.size", `{"value":"three"}`, 400, nil)
	if p["field"] != "value" || !strings.Contains(p["detail"].(string), "backup.chain.size") {
		t.Fatalf("invalid value problem: %v", p)
	}
	e.do(e.admin, "PUT", "/settings/no.such.key", `{"value":"1"}`, 400, nil)
	// One range for a chain size, global or an offering's: 0 (unlimited)
	// to 1,000,000; negative values are refused by both.
	e.do(e.admin, "PUT", "/settings/backup.chain.size", `{"value":"-3"}`, 400, nil)
	e.do(e.admin, "POST", "/offerings", `{"name":"neg","backup_chain_size":-5}`, 400, nil)
	e.do(e.admin, "PUT", "/settings/backup.chain.size", `{"value":"1000001"}`, 400, nil)
	e.do(e.admin, "POST", "/offerings", `{"name":"big","backup_chain_size":1000001}`, 400, nil)
	e.do(e.admin, "PUT", "/settings/backup.chain.size", `{"value":"3","host":"localhost"}`, 400, nil)
	e.do(e.admin, "PUT", "/settings/backup.compression.max.concurrent.operations.per.host", `{"value":"-1","host":"localhost"}`, 200, &s)
	if s["source"] != "host" || s["value"] != "-1" {
		t.Fatalf("host value: %v", s)
	}
	e.do(e.admin, "GET", "/settings?scope=host&host=localhost", "", 200, &list)
	for _, s := range list {
		switch s["key"] {
		case "backup.validation.max.concurrent.operations.per.host":
			if s["value"] != "3" || s["source"] != "agent" {
				t.Fatalf("agent file value: %v", s)
			}
		case "backup.compression.max.concurrent.operations.per.host":
			if s["value"] != "-1" {
				t.Fatalf("host value in list: %v", s)
			}
		case "backup.chain.size":
			if s["value"] != "3" || s["source"] != "global" {
				t.Fatalf("global value seen from host: %v", s)
			}
		}
	}
	e.do(e.admin, "GET", "/settings?scope=host", "", 400, nil)
	e.do(e.admin, "DELETE", "/settings/backup.chain.size", "", 200, &s)
	if s["value"] != "8" || s["source"] != "default" {
		t.Fatalf("reset: %v", s)
	}
	e.do(e.user, "GET", "/settings", "", 403, nil)
}

func TestVMDetailsAPI(t *testing.T) {
	e := newEnv(t)
	e.do(e.admin, "PUT", "/vms/web/owner", `{"account":"alice"}`, 200, nil)
	var details []map[string]any
	e.do(e.user, "PUT", "/vms/web/details/backupValidationCommand", `{"value":"echo"}`, 200, &details)
	e.do(e.user, "PUT", "/vms/web/details/backupValidationCommandExpectedResult", `{"value":"YWJhYmEK"}`, 200, &details)
	if len(details) != 2 {
		t.Fatalf("details: %v", details)
	}
	e.do(e.user, "PUT", "/vms/web/details/backupValidationCommandExpectedResult", `{"value":"not base64!"}`, 400, nil)
	e.do(e.user, "PUT", "/vms/web/details/backupValidationBootTimeout", `{"value":"100"}`, 403, nil)
	e.do(e.admin, "PUT", "/vms/web/details/backupValidationBootTimeout", `{"value":"100"}`, 200, nil)
	e.do(e.admin, "PUT", "/vms/web/details/backupValidationBootTimeout", `{"value":"soon"}`, 400, nil)
	e.do(e.admin, "PUT", "/vms/web/details/noSuchDetail", `{"value":"1"}`, 400, nil)
	e.do(e.user, "GET", "/vms/web/details", "", 200, &details)
	if len(details) != 3 {
		t.Fatalf("details after admin set: %v", details)
	}
	e.do(e.user, "DELETE", "/vms/web/details/backupValidationCommand", "", 200, &details)
	if len(details) != 2 {
		t.Fatalf("after delete: %v", details)
	}

	// The setting user.vm.readonly.details decides, not the default list:
	// with only the command read-only, users may change the boot timeout
	// but no longer the command, and the details say so.
	e.do(e.admin, "PUT", "/settings/user.vm.readonly.details", `{"value":"backupValidationCommand"}`, 200, nil)
	e.do(e.user, "PUT", "/vms/web/details/backupValidationBootTimeout", `{"value":"120"}`, 200, &details)
	e.do(e.user, "PUT", "/vms/web/details/backupValidationCommand", `{"value":"echo"}`, 403, nil)
	e.do(e.user, "DELETE", "/vms/web/details/backupValidationCommandExpectedResult", "", 200, nil)
	e.do(e.admin, "PUT", "/vms/web/details/backupValidationCommand", `{"value":"true"}`, 200, nil)
	e.do(e.user, "DELETE", "/vms/web/details/backupValidationCommand", "", 403, nil)
	e.do(e.user, "GET", "/vms/web/details", "", 200, &details)
	ro := map[string]bool{}
	for _, d := range details {
		ro[d["key"].(string)] = d["read_only_for_users"].(bool)
	}
	if len(details) != 2 || !ro["backupValidationCommand"] || ro["backupValidationBootTimeout"] {
		t.Fatalf("details with the setting changed: %v", details)
	}
	var got []map[string]any
	e.do(e.admin, "GET", "/vms/web/details", "", 200, &got)
	for _, d := range got {
		if d["key"] == "backupValidationBootTimeout" && d["value"] != "120" {
			t.Fatalf("the user's change did not stick: %v", got)
		}
	}
}

func TestInventoryRefreshIsAnOperation(t *testing.T) {
	e := newEnv(t)
	e.agent.SetDomains(e.agent.Domains[:1])
	var op map[string]any
	e.do(e.admin, "POST", "/inventory/refresh", "", 202, &op)
	id := op["id"].(string)
	if op["state"] != "Pending" {
		t.Fatalf("operation starts pending: %v", op)
	}
	e.svc.Kernel.Wait()
	e.do(e.admin, "GET", "/operations/"+id, "", 200, &op)
	if op["state"] != "Succeeded" || op["progress"].(float64) != 100 || op["result"].(map[string]any)["vms"].(float64) != 2 {
		t.Fatalf("operation: %v", op)
	}
	var vm map[string]any
	e.do(e.admin, "GET", "/vms/db", "", 200, &vm)
	if vm["state"] != "Missing" {
		t.Fatalf("VM no longer reported must be Missing: %v", vm)
	}
	e.do(e.user, "GET", "/operations/"+id, "", 404, nil)
	e.do(e.user, "POST", "/inventory/refresh", "", 403, nil)
	_ = time.Second
}

// Every list is paged: a limit up to 1000, a cursor in the Knib-Next-Cursor
// header while more follow, and a clear 400 for a bad limit or cursor.
func TestListsArePaged(t *testing.T) {
	e := newEnv(t)
	get := func(path string) ([]map[string]any, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1"+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []map[string]any
		if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&list) != nil {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return list, resp.Header.Get("Knib-Next-Cursor")
	}
	all, next := get("/vms")
	if len(all) != 2 || next != "" {
		t.Fatalf("whole list: %d VMs, cursor %q", len(all), next)
	}
	first, next := get("/vms?limit=1")
	if len(first) != 1 || next == "" || first[0]["id"] != all[0]["id"] {
		t.Fatalf("first page: %v, cursor %q", first, next)
	}
	second, last := get("/vms?limit=1&cursor=" + next)
	if len(second) != 1 || second[0]["id"] != all[1]["id"] || last != "" {
		t.Fatalf("second page: %v, cursor %q", second, last)
	}
	for _, path := range []string{"/backups", "/jobs", "/operations"} {
		if list, next := get(path + "?limit=1000"); list == nil || next != "" {
			t.Fatalf("%s: %v %q", path, list, next)
		}
	}
	for _, bad := range []string{"/vms?limit=1001", "/vms?limit=-1", "/backups?limit=x", "/vms?cursor=zz", "/jobs?cursor=" + next + "x",
		"/operations?cursor=eyJ4IjoxfQ"} {
		p := e.do(e.admin, "GET", bad, "", 400, nil)
		if p["detail"] == "" {
			t.Fatalf("%s: no message", bad)
		}
	}
}

// A disk target reaches the domain XML and a file name: anything but a
// device name is a 400 that changes nothing.
func TestAttachDiskTargetIsValidated(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"../../etc/PWN", "vd/b", "VDB", "vdb\n", strings.Repeat("v", 40), "1vd"} {
		body, _ := json.Marshal(map[string]any{"size": 1 << 20, "target": target})
		p := e.do(e.admin, "POST", "/vms/web/disks", string(body), 400, nil)
		if p["field"] != "target" {
			t.Fatalf("target %q: %v", target, p)
		}
	}
}

// A known path with the wrong method is a 405 with the allowed methods; an
// unknown path is a 404.
func TestWrongMethodIs405(t *testing.T) {
	e := newEnv(t)
	p := e.do(e.admin, "DELETE", "/vms", "", 405, nil)
	if !strings.Contains(p["detail"].(string), "GET") {
		t.Fatalf("405 without the allowed methods: %v", p)
	}
	e.do(e.admin, "PUT", "/backups/x/restore", "", 405, nil)
	e.do(e.admin, "GET", "/no/such/route", "", 404, nil)
}

// A new account answers the limits it has: none (-1), as GET shows.
func TestNewAccountAnswersItsLimits(t *testing.T) {
	e := newEnv(t)
	var created, shown map[string]any
	e.do(e.admin, "POST", "/accounts", `{"name":"carol"}`, 201, &created)
	e.do(e.admin, "GET", "/accounts/carol", "", 200, &shown)
	c, _ := json.Marshal(created["limits"])
	s, _ := json.Marshal(shown["limits"])
	if string(c) != string(s) || !strings.Contains(string(c), "-1") {
		t.Fatalf("limits on creation %s, shown %s", c, s)
	}
}

// JSON keys match exactly and once: {"name":"a","Name":"b"} is refused,
// not read as "b".
func TestBodyKeysAreExact(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{`{"name":"a","Name":"b"}`, `{"NAME":"x"}`, `{"name":"a","name":"b"}`} {
		e.do(e.admin, "POST", "/offerings", body, 400, nil)
	}
	var offs []map[string]any
	e.do(e.admin, "GET", "/offerings", "", 200, &offs)
	if len(offs) != 0 {
		t.Fatalf("refused bodies created offerings: %v", offs)
	}
	e.do(e.admin, "POST", "/offerings", `{"name":"ok"}`, 201, nil)
}

// Counts have one range on every engine: a chain size beyond it is a 400,
// never a database error.
func TestCountsHaveOneRange(t *testing.T) {
	e := newEnv(t)
	p := e.do(e.admin, "POST", "/offerings", `{"name":"big","backup_chain_size":2147483648}`, 400, nil)
	if p["field"] != "backup_chain_size" {
		t.Fatalf("chain size 2^31: %v", p)
	}
	e.do(e.admin, "POST", "/offerings", `{"name":"ok","backup_chain_size":1000000}`, 201, nil)
}
