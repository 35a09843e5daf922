package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/pki"
	"github.com/knib/knib/internal/testbed"
)

// TestRemoteAgent: a server without an in-process agent and one `knib
// agent` joined with a token manage a real VM on the local libvirtd over
// mutual TLS: inventory, full and incremental backups and a restore, with
// the guest's data checked; a replayed token and a certificate from another
// CA are refused; a disabled host takes no new work; an agent killed during
// a backup goes Disconnected, and when it is back recovery runs before new
// work, the chain is consistent and the next backup works.
func TestRemoteAgent(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-remote", DiskSizes: []int64{64 << 20, 32 << 20}, Start: true})
	s := StartRemoteServer(t)
	var hosts []HostJSON
	s.MustJSON(&hosts, "host", "list")
	if len(hosts) != 0 {
		t.Fatalf("a server without an in-process agent has hosts: %+v", hosts)
	}

	// A join token for an unknown zone is refused and creates nothing.
	if msg := s.Fail(nil, 0, "host", "join-token", "create", "--zone", "zone-a", "--ttl", "10m"); !strings.Contains(msg, "does not exist") {
		t.Fatalf("join token for an unknown zone: %s", msg)
	}
	if out := s.CLI("zone", "list"); strings.Contains(out, "zone-a") {
		t.Fatalf("a refused join token created its zone: %s", out)
	}

	// Join.
	tok := s.joinToken("zone-a")
	ag := s.NewAgent(t, "knib-remote-a")
	ag.Start(tok)
	h := s.WaitAgentState(ag.Name, "Connected", 2*time.Minute, ag)
	if h.Zone != "zone-a" || h.Local || !h.Enabled || h.AgentURL != "https://"+ag.Listen {
		t.Fatalf("joined host: %+v", h)
	}
	for _, f := range []string{"agent.key", "agent.crt", "ca.crt"} {
		st, err := os.Stat(filepath.Join(ag.DataDir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("identity file %s: %v %v", f, err, st)
		}
	}
	var list []struct {
		ID, Name, State, Host string
	}
	s.MustJSON(&list, "vm", "list")
	found := false
	for _, v := range list {
		if v.Name == dom.Name {
			found = v.Host == ag.Name && v.ID == dom.UUID && v.State == "Running"
		}
	}
	if !found {
		t.Fatalf("inventory through the remote agent misses %s on %s: %+v", dom.Name, ag.Name, list)
	}

	// A replayed join token is refused; the agent exits non-zero and says why.
	replay := s.NewAgent(t, "knib-remote-b")
	replay.Start(tok)
	code, err := replay.Wait(time.Minute)
	if err != nil || code == 0 || !strings.Contains(replay.Log(), "join token already used") {
		t.Fatalf("replayed token: code %d, %v:\n%s", code, err, replay.Log())
	}
	if r := s.Run(nil, "host", "show", "knib-remote-b"); r.Code == 0 {
		t.Fatalf("the replayed token created a host: %s", r.Stdout)
	}
	// A made-up token of the right form is refused too, and so is a token
	// for another installation's CA.
	garbage := s.NewAgent(t, "knib-remote-c")
	other, _ := pki.NewCA(time.Now())
	forgedTok, _ := pki.NewJoinToken(other.Pin())
	garbage.Start(forgedTok.String())
	if code, err := garbage.Wait(time.Minute); err != nil || code == 0 || !strings.Contains(garbage.Log(), "CA does not match") {
		t.Fatalf("token for another CA: code %d, %v:\n%s", code, err, garbage.Log())
	}

	// An agent presenting a certificate from another CA (trusting the real
	// one) is refused by the server.
	forged := s.NewAgent(t, ag.Name)
	key, keyPEM, _ := pki.NewKey()
	iss, err := other.Sign(&key.PublicKey, pki.RoleAgent, ag.Name, nil, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(ag.DataDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"agent.key": keyPEM, "agent.crt": iss.CertPEM, "ca.crt": caPEM} {
		if err := os.WriteFile(filepath.Join(forged.DataDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	forged.Start("")
	if code, err := forged.Wait(time.Minute); err != nil || code == 0 || !strings.Contains(forged.Log(), "agent certificate refused") {
		t.Fatalf("certificate from another CA: code %d, %v:\n%s", code, err, forged.Log())
	}
	if h := s.WaitAgentState(ag.Name, "Connected", time.Minute, ag); h.AgentURL != "https://"+ag.Listen {
		t.Fatalf("the forged hello changed the host: %+v", h)
	}

	// Backups and a restore through the remote agent, data checked. The
	// zone's backup storage is the directory the agent was given.
	s.CLI("storage", "add", "--zone", "zone-a", "--path", ag.Storage, "--name", "zone-a-storage")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "remote")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)
	guest(t, dom, "echo remote-b1 > /data/r1 && sync")
	b1 := s.backup(dom.Name)
	guest(t, dom, "echo remote-b2 > /data/r2 && sync")
	if err := dom.WriteDisk(ctxT(t), 1, 0x6b, 2<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	b2 := s.backup(dom.Name)
	if b1.Type != "full" || b2.Type != "incremental" || b2.ParentID != b1.ID {
		t.Fatalf("chain through the remote agent: %+v / %+v", b1, b2)
	}
	files := map[string]string{}
	for _, f := range b2.Files {
		files[f.Disk] = s.storage(f.Path)
	}
	vda := flatten(t, files["vda"])
	if got, ok := ext4Cat(t, vda, "/r1"); !ok || got != "remote-b1\n" {
		t.Fatalf("b2 /r1: %q %v", got, ok)
	}
	if got, ok := ext4Cat(t, vda, "/r2"); !ok || got != "remote-b2\n" {
		t.Fatalf("b2 /r2: %q %v", got, ok)
	}
	if !pattern(t, flatten(t, files["vdb"]), 0x6b, 2<<20, 1<<20) {
		t.Fatal("b2 vdb misses the pattern")
	}
	guest(t, dom, "rm /data/r1 /data/r2 && sync")
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s.CLI("backup", "restore", b2.ID)
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "cat /data/r1 /data/r2"); got != "remote-b1\nremote-b2\n" {
		t.Fatalf("after the restore through the remote agent: %q", got)
	}

	// Maintenance: a disabled host takes no new work.
	s.CLI("host", "disable", ag.Name)
	msg := s.Fail(nil, 1, "backup", "create", dom.Name)
	if !strings.Contains(msg, "disabled for maintenance") {
		t.Fatalf("backup on a disabled host: %s", msg)
	}
	if n := len(s.backups(dom.Name)); n != 2 {
		t.Fatalf("a refused backup left %d backups", n)
	}
	s.CLI("host", "enable", ag.Name)
	s.backup(dom.Name) // a healthy chain head, so the next one must also merge

	// The agent dies (SIGKILL at a crash point) during a backup.
	guest(t, dom, "echo before-crash > /data/crash && sync")
	ag.Restart("KNIB_CRASH_AT=backup.during-copy")
	if !ag.WaitServing(time.Minute) {
		t.Fatalf("agent did not say hello:\n%s", ag.Log())
	}
	s.WaitAgentState(ag.Name, "Connected", 2*time.Minute, ag)
	if r := s.Run(nil, "backup", "create", dom.Name, "--async"); r.Code != 0 {
		t.Fatalf("backup create: %s", r.Stderr)
	}
	if _, err := ag.Wait(3 * time.Minute); err != nil || !strings.Contains(ag.Log(), "crash point backup.during-copy") {
		t.Fatalf("the agent did not die at the crash point: %v\n%s", err, ag.Log())
	}
	s.WaitAgentState(ag.Name, "Disconnected", time.Minute, nil)
	// The interrupted backup fails; recovery cannot run while the agent is
	// away, so the VM waits in BackupError and takes no new backup.
	for deadline := time.Now().Add(2 * time.Minute); s.vmDisks(dom.Name).State == "BackingUp"; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted backup did not fail:\n%s", s.Log())
		}
	}
	if v := s.vmDisks(dom.Name); v.State != "BackupError" {
		t.Fatalf("VM after its agent was lost during a backup: %+v", v)
	}
	if msg := s.Fail(nil, 1, "backup", "create", dom.Name); !strings.Contains(msg, "no connected agent") && !strings.Contains(msg, "BackupError") {
		t.Fatalf("backup while the agent is lost: %s", msg)
	}
	ag.Restart()
	if !ag.WaitServing(time.Minute) {
		t.Fatalf("agent did not say hello:\n%s", ag.Log())
	}
	s.WaitAgentState(ag.Name, "Connected", 3*time.Minute, ag)
	v := waitRecovered(t, s, dom.Name)
	if v.State != "Running" || len(v.deltas()) != 0 || v.LastError != "" {
		t.Fatalf("after recovery: %+v", v)
	}
	if !strings.Contains(s.Log(), "agent connected") {
		t.Fatalf("server log misses the reconnection:\n%s", s.Log())
	}
	for _, disk := range dom.Disks {
		run(t, "qemu-img", "check", "-U", "-q", disk)
	}
	if left, _ := filepath.Glob(filepath.Join(dom.Dir, "knib-delta.*")); len(left) != 0 {
		t.Fatalf("orphan deltas: %v", left)
	}
	for _, b := range s.backups(dom.Name) {
		if b.Status == "BackingUp" {
			t.Fatalf("backup still BackingUp: %+v", b)
		}
		if b.Status == "Error" {
			if _, err := os.Stat(s.storage(filepath.Join("backups", dom.UUID, b.ID))); !os.IsNotExist(err) {
				t.Fatalf("partial backup %s left on storage: %v", b.ID, err)
			}
		}
	}
	if got := guest(t, dom, "cat /data/crash"); got != "before-crash\n" {
		t.Fatalf("guest data after recovery: %q", got)
	}
	next := s.backup(dom.Name)
	if next.Type != "full" {
		t.Fatalf("next backup after recovery: %+v", next)
	}
	if got, ok := ext4Cat(t, flatten(t, s.storage(next.Files[0].Path)), "/crash"); !ok || got != "before-crash\n" {
		t.Fatalf("next backup /crash: %q %v", got, ok)
	}

	// Revocation: the identity is refused from then on.
	s.CLI("host", "revoke", ag.Name)
	s.WaitAgentState(ag.Name, "Revoked", time.Minute, nil)
	ag.Restart()
	if code, err := ag.Wait(time.Minute); err != nil || code == 0 || !strings.Contains(ag.Log(), "agent identity revoked: join again with a new token") {
		t.Fatalf("revoked identity: code %d, %v:\n%s", code, err, ag.Log())
	}
	if msg := s.Fail(nil, 1, "backup", "create", dom.Name); !strings.Contains(msg, "no connected agent") {
		t.Fatalf("backup on a revoked host: %s", msg)
	}
	// A new token joins it again.
	ag.Start(s.joinToken("zone-a"))
	if !ag.WaitServing(time.Minute) {
		t.Fatalf("agent did not join again:\n%s", ag.Log())
	}
	s.WaitAgentState(ag.Name, "Connected", 2*time.Minute, ag)
	if cert, err := os.ReadFile(filepath.Join(ag.DataDir, "agent.crt")); err != nil {
		t.Fatal(err)
	} else if c, err := pki.ParseCert(cert); err != nil || c.Subject.CommonName != ag.Name || pki.RoleOf(c) != pki.RoleAgent {
		t.Fatalf("re-joined identity: %v %+v", err, c)
	}
}
