package agentrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/pki"
)

type identity struct {
	cert   tls.Certificate
	serial string
}

func issue(t *testing.T, ca *pki.CA, role pki.Role, cn string) identity {
	t.Helper()
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Sign(&key.PublicKey, role, cn, nil, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pki.TLSCert(iss.CertPEM, keyPEM, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	return identity{c, iss.Serial}
}

// serve runs a Handler for a on a loopback TLS listener.
func serve(t *testing.T, a agentapi.Agent, cert tls.Certificate, ca *pki.CA) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLS(cert, ca.Cert))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewHandler(a, nil)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// dbUUID is the fake agent's second domain (Domain reads it by uuid).
const dbUUID = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b"

func TestCallsCrossTheWire(t *testing.T) {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	fake := &agenttest.Fake{Report: agentapi.HostReport{Name: "host-a", CPUs: 3, Settings: map[string]string{"k": "v"}},
		Domains: []agentapi.Domain{{UUID: "u1", Name: "web", State: "running"}, {UUID: dbUUID, Name: "db", State: "shutoff"}},
		Task: func(t agentapi.Task) agentapi.TaskStatus {
			req := t.Request.(agentapi.HashRequest) // typed on the agent's side of the wire
			return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100,
				Result: agentapi.HashResult{Hashes: map[string]string{req.Files[0].Disk: req.Storage + "/" + req.Files[0].Path}}}
		}}
	ag := issue(t, ca, pki.RoleAgent, "host-a")
	url := serve(t, fake, ag.cert, ca)
	srv := issue(t, ca, pki.RoleServer, "server")
	c, err := NewClient(Peer{URL: url, Host: "host-a", Serial: ag.serial}, srv.cert, ca.Cert)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rep, err := c.HostReport(ctx)
	if err != nil || rep.Name != "host-a" || rep.CPUs != 3 || rep.Settings["k"] != "v" {
		t.Fatalf("report %+v %v", rep, err)
	}
	doms, err := c.Inventory(ctx)
	if err != nil || len(doms) != 2 || doms[0].Name != "web" {
		t.Fatalf("inventory %+v %v", doms, err)
	}
	if d, err := c.Domain(ctx, dbUUID); err != nil || d.Name != "db" || d.State != "shutoff" {
		t.Fatalf("domain %+v %v", d, err)
	}
	if _, err := c.Domain(ctx, "0b5e1c9a-0000-4000-8000-000000000000"); !errors.Is(err, agentapi.ErrUnknownDomain) {
		t.Fatalf("unknown domain: %v", err)
	}
	// An id that is not a uuid is refused before it reaches the agent.
	if _, err := c.Domain(ctx, "../tasks"); err == nil || !strings.Contains(err.Error(), "not a domain uuid") {
		t.Fatalf("bad domain id: %v", err)
	}
	res, err := c.GuestExec(ctx, agentapi.GuestExecRequest{DomainUUID: "u1", Path: "/bin/echo", Args: []string{"a", "b"}, Timeout: time.Second})
	if err != nil || string(res.Stdout) != "a b\n" {
		t.Fatalf("exec %+v %v", res, err)
	}
	_, err = c.GuestExec(ctx, agentapi.GuestExecRequest{DomainUUID: "nope"})
	if !errors.Is(err, agentapi.ErrUnknownDomain) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown domain: %v", err)
	}
	// A typed request crosses the wire and comes back as a typed result.
	req := agentapi.HashRequest{InStorage: agentapi.InStorage{Storage: "/st"}, Files: []agentapi.RestoreFile{{Disk: "vda", Path: "b/vda.qcow2"}}}
	if err := c.StartTask(ctx, agentapi.Hash.Task("t1", req)); err != nil {
		t.Fatal(err)
	}
	st, err := c.TaskStatus(ctx, "t1")
	if err != nil || st.State != agentapi.TaskSucceeded {
		t.Fatalf("status %+v %v", st, err)
	}
	got, err := agentapi.Hash.ResultOf(st)
	if err != nil || got.Hashes["vda"] != "/st/b/vda.qcow2" {
		t.Fatalf("result %+v %v", got, err)
	}
	// A command the agent does not know is refused on the wire.
	if err := c.StartTask(ctx, agentapi.Task{ID: "t4", Command: "no.such.command", Request: struct{}{}}); !errors.Is(err, agentapi.ErrUnknownKind) {
		t.Fatalf("unknown command: %v", err)
	}
	if _, err := c.TaskStatus(ctx, "t2"); !errors.Is(err, agentapi.ErrUnknownTask) {
		t.Fatalf("unknown task: %v", err)
	}
	if err := c.CancelTask(ctx, "t2"); !errors.Is(err, agentapi.ErrUnknownTask) {
		t.Fatalf("cancel unknown task: %v", err)
	}
	fake.Task = nil
	if err := c.StartTask(ctx, agentapi.Hash.Task("t3", req)); !errors.Is(err, agentapi.ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}

	// The long poll of inventory changes: a new caller gets the mark at
	// once; a waiting one gets the next mark when the inventory changes.
	m0, err := c.WaitInventoryChange(ctx, agentapi.ChangeMark{})
	if err != nil || m0.Epoch != agenttest.FakeEpoch {
		t.Fatalf("first mark %+v %v", m0, err)
	}
	changed := make(chan agentapi.ChangeMark, 1)
	go func() {
		m, err := c.WaitInventoryChange(ctx, m0)
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		changed <- m
	}()
	fake.SetDomains(nil)
	m1 := <-changed
	if m1 == m0 || m1.Epoch != m0.Epoch {
		t.Fatalf("mark after a change %+v, before %+v", m1, m0)
	}
	// A waiting call ends with its context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitInventoryChange(cctx, m1); err == nil {
		t.Fatal("a cancelled wait succeeded")
	}
}

func TestWrongCertificatesAreRefused(t *testing.T) {
	ca, _ := pki.NewCA(time.Now())
	other, _ := pki.NewCA(time.Now())
	fake := &agenttest.Fake{Report: agentapi.HostReport{Name: "host-a"}}
	ag := issue(t, ca, pki.RoleAgent, "host-a")
	url := serve(t, fake, ag.cert, ca)
	ctx := context.Background()
	call := func(p Peer, cert tls.Certificate) error {
		c, err := NewClient(p, cert, ca.Cert)
		if err != nil {
			t.Fatal(err)
		}
		c.retries = 0
		_, err = c.HostReport(ctx)
		return err
	}
	good := Peer{URL: url, Host: "host-a", Serial: ag.serial}
	if err := call(good, issue(t, ca, pki.RoleServer, "s").cert); err != nil {
		t.Fatalf("good call: %v", err)
	}
	// The agent refuses a server certificate from another CA, and an agent
	// certificate used as a server's.
	if err := call(good, issue(t, other, pki.RoleServer, "s").cert); err == nil {
		t.Fatal("other CA's server certificate accepted by the agent")
	}
	if err := call(good, issue(t, ca, pki.RoleAgent, "host-b").cert); err == nil {
		t.Fatal("agent certificate accepted as a server's")
	}
	// The server refuses an agent with another host's name or an old serial.
	srv := issue(t, ca, pki.RoleServer, "s").cert
	if err := call(Peer{URL: url, Host: "host-b"}, srv); err == nil || !strings.Contains(err.Error(), `want "host-b"`) {
		t.Fatalf("wrong host name: %v", err)
	}
	if err := call(Peer{URL: url, Host: "host-a", Serial: "1234"}, srv); err == nil || !strings.Contains(err.Error(), "serial") {
		t.Fatalf("old serial: %v", err)
	}
	// And an agent whose certificate another CA issued.
	forged := issue(t, other, pki.RoleAgent, "host-a")
	furl := serve(t, fake, forged.cert, other)
	if err := call(Peer{URL: furl, Host: "host-a"}, srv); err == nil || !errors.Is(err, pki.ErrUntrusted) && !strings.Contains(err.Error(), "not issued") {
		t.Fatalf("forged agent: %v", err)
	}
	// Plain TCP without a client certificate gets nothing.
	conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Write([]byte("GET " + prefix + "/tasks/x HTTP/1.1\r\nHost: x\r\n\r\n"))
		if err == nil {
			buf := make([]byte, 100)
			_, err = conn.Read(buf)
		}
		conn.Close()
	}
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("client without certificate: %v", err)
	}
	if _, err := NewClient(Peer{URL: "http://x:1", Host: "h"}, srv, ca.Cert); err == nil {
		t.Fatal("plain http URL accepted")
	}
}

// The wire decodes every host command agentapi declares.
func TestEveryCommandHasACodec(t *testing.T) {
	names := agentapi.Commands()
	if len(names) < 20 {
		t.Fatalf("only %d commands declared", len(names))
	}
	for _, n := range names {
		if _, ok := codecs[n]; !ok {
			t.Errorf("command %s has no codec on the wire", n)
		}
	}
	if len(codecs) != len(names) {
		t.Errorf("%d codecs for %d commands", len(codecs), len(names))
	}
}
