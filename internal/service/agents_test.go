package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/pki"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/hosts"
	"github.com/knib/knib/internal/store/sqlstore"
)

// TestJoinTokensAndIdentities: the rules of join tokens (one-time, expiry,
// revocation, CA pin) and agent identities (current serial, revocation,
// re-join), and host maintenance.
func TestJoinTokensAndIdentities(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	svc := service.New(st, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ca, err := svc.Hosts.InitCA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A second server on the same database gets the same CA.
	svc2 := service.New(st, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if ca2, err := svc2.Hosts.InitCA(ctx); err != nil || ca2.Pin() != ca.Pin() {
		t.Fatalf("second server's CA: %v", err)
	}
	acc, _ := svc.Kernel.EnsureAdmin(ctx)
	admin := domain.Principal{AccountID: acc.ID, Role: domain.RoleAdmin}
	user := domain.Principal{AccountID: acc.ID, Role: domain.RoleUser}

	if _, _, err := svc.Hosts.CreateJoinToken(ctx, user, "z", time.Hour); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("user created a join token: %v", err)
	}
	var inv *domain.InvalidError
	for _, ttl := range []time.Duration{0, -time.Second, 8 * 24 * time.Hour} {
		if _, _, err := svc.Hosts.CreateJoinToken(ctx, admin, "z", ttl); !errors.As(err, &inv) {
			t.Fatalf("ttl %s: %v", ttl, err)
		}
	}
	if _, _, err := svc.Hosts.CreateJoinToken(ctx, admin, "../z", time.Hour); !errors.As(err, &inv) {
		t.Fatalf("bad zone: %v", err)
	}
	// A token for an unknown zone is refused and creates no zone.
	if _, _, err := svc.Hosts.CreateJoinToken(ctx, admin, "zone-a", time.Hour); !errors.As(err, &inv) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("unknown zone: %v", err)
	}
	if _, err := st.Zone(ctx, "zone-a"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a refused join token created its zone: %v", err)
	}
	if _, err := svc.Storages.CreateZone(ctx, admin, "zone-a"); err != nil {
		t.Fatal(err)
	}
	text, jt, err := svc.Hosts.CreateJoinToken(ctx, admin, "zone-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := pki.ParseJoinToken(text)
	if err != nil || tok.Pin != ca.Pin() || jt.Hash == tok.Secret || strings.Contains(jt.Hash, tok.Secret) {
		t.Fatalf("token %q: %v", text, err)
	}

	key, _, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "whatever")
	rep := agentapi.HostReport{Name: "ignored", URI: "qemu:///system", CPUs: 2}
	join := func(token, name string) (hosts.JoinResult, error) {
		return svc.Hosts.JoinAgent(ctx, hosts.JoinRequest{Token: token, CSR: csr, Name: name, URL: "https://10.0.0.5:8282", Report: rep})
	}
	refused := func(err error, want string) {
		t.Helper()
		if !errors.Is(err, domain.ErrForbidden) || !strings.Contains(err.Error(), want) {
			t.Fatalf("want refusal %q, got %v", want, err)
		}
	}
	// Bad input changes nothing and does not spend the token.
	if _, err := svc.Hosts.JoinAgent(ctx, hosts.JoinRequest{Token: text, CSR: []byte("junk"), Name: "h1", URL: "https://h:1"}); !errors.As(err, &inv) {
		t.Fatalf("junk CSR: %v", err)
	}
	if _, err := svc.Hosts.JoinAgent(ctx, hosts.JoinRequest{Token: text, CSR: csr, Name: "h1", URL: "http://h:1"}); !errors.As(err, &inv) {
		t.Fatalf("plain http URL: %v", err)
	}
	_, err = join("knibjoin.nope", "h1")
	refused(err, "malformed join token")
	wrongSecret := pki.JoinToken{ID: tok.ID, Secret: strings.Repeat("0", 64), Pin: tok.Pin}
	_, err = join(wrongSecret.String(), "h1")
	refused(err, "unknown join token")
	otherCA, _ := pki.NewCA(clk.Now())
	foreign := pki.JoinToken{ID: tok.ID, Secret: tok.Secret, Pin: otherCA.Pin()}
	_, err = join(foreign.String(), "h1")
	refused(err, "another installation")

	res, err := join(text, "h1")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCert(res.CertPEM)
	if err != nil || cert.Subject.CommonName != "h1" || pki.RoleOf(cert) != pki.RoleAgent {
		t.Fatalf("issued %v %+v", err, cert)
	}
	h, err := st.Host(ctx, "h1")
	if err != nil || h.Local || h.CPUs != 2 || svc.Kernel.ZoneName(ctx, h.ZoneID) != "zone-a" {
		t.Fatalf("joined host %+v %v", h, err)
	}
	_, err = join(text, "h2")
	refused(err, "join token already used")
	if _, err := st.Host(ctx, "h2"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("replay created a host: %v", err)
	}

	expiring, _, _ := svc.Hosts.CreateJoinToken(ctx, admin, "zone-a", time.Minute)
	clk.Advance(2 * time.Minute)
	_, err = join(expiring, "h3")
	refused(err, "join token expired")
	revoked, rjt, _ := svc.Hosts.CreateJoinToken(ctx, admin, "zone-a", time.Hour)
	if _, err := svc.Hosts.RevokeJoinToken(ctx, admin, rjt.ID); err != nil {
		t.Fatal(err)
	}
	_, err = join(revoked, "h3")
	refused(err, "join token revoked")

	// Hello: the current identity only.
	if _, err := svc.Hosts.AgentHello(ctx, cert, "https://10.0.0.6:8282", rep); err != nil {
		t.Fatalf("hello: %v", err)
	}
	again, _, _ := svc.Hosts.CreateJoinToken(ctx, admin, "zone-a", time.Hour)
	res2, err := join(again, "h1") // a re-join replaces the identity
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Hosts.AgentHello(ctx, cert, "https://10.0.0.6:8282", rep)
	refused(err, "replaced by a newer join")
	cert2, _ := pki.ParseCert(res2.CertPEM)
	if _, err := svc.Hosts.RevokeHost(ctx, admin, "h1"); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Hosts.AgentHello(ctx, cert2, "https://10.0.0.6:8282", rep)
	refused(err, "agent identity revoked: join again with a new token")

	// Maintenance: a disabled host takes no new work; user operations say
	// so with a conflict.
	fake := &agenttest.Fake{Report: agentapi.HostReport{Name: "h1"}}
	if _, err := svc.Hosts.SetHostEnabled(ctx, user, "h1", false); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("user disabled a host: %v", err)
	}
	if h, err := svc.Hosts.SetHostEnabled(ctx, admin, "h1", false); err != nil || h.Enabled {
		t.Fatalf("disable: %+v %v", h, err)
	}
	if err := svc.Hosts.AgentUp(ctx, h.ID, fake); err != nil {
		t.Fatal(err)
	}
	if !svc.Kernel.HasAgent(h.ID) {
		t.Fatal("agent not in service after AgentUp")
	}
	if state, _ := svc.Kernel.HostAgentState(ctx, h); state != "Revoked" {
		t.Fatalf("state of a revoked host: %q", state)
	}
	svc.Hosts.DropAgent(ctx, h.ID, "Disconnected", "test")
	if svc.Kernel.HasAgent(h.ID) {
		t.Fatal("agent still in service after DropAgent")
	}
}

// TestReconnectedAgentRecoversBeforeNewWork: while a reconnected agent's
// host is recovering (left-over validation VMs, inventory, reconciliation),
// its agent is not handed out for new work; afterwards it is.
func TestReconnectedAgentRecoversBeforeNewWork(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := service.New(st, clock.Real{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := svc.Hosts.InitCA(ctx); err != nil {
		t.Fatal(err)
	}
	acc, _ := svc.Kernel.EnsureAdmin(ctx)
	admin := domain.Principal{AccountID: acc.ID, Role: domain.RoleAdmin}
	if _, err := svc.Storages.CreateZone(ctx, admin, "zone-a"); err != nil {
		t.Fatal(err)
	}
	text, _, err := svc.Hosts.CreateJoinToken(ctx, admin, "zone-a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "h1")
	res, err := svc.Hosts.JoinAgent(ctx, hosts.JoinRequest{Token: text, CSR: csr, Name: "h1", URL: "https://h1:8282"})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan string, 10)
	fake := &agenttest.Fake{Report: agentapi.HostReport{Name: "h1"},
		Task: func(req agentapi.Task) agentapi.TaskStatus {
			select {
			case started <- req.Command:
			default:
			}
			select {
			case <-release:
				return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Progress: 100}
			default:
				return agentapi.TaskStatus{State: agentapi.TaskRunning}
			}
		}}
	done := make(chan error, 1)
	go func() { done <- svc.Hosts.AgentUp(ctx, res.HostID, fake) }()
	if kind := <-started; kind != agentapi.KindCleanupValidation {
		t.Fatalf("first task of a reconnected agent: %s", kind)
	}
	h, _ := st.Host(ctx, res.HostID)
	if svc.Kernel.HasAgent(res.HostID) {
		t.Fatal("a recovering host's agent is handed out for new work")
	}
	if state, _ := svc.Kernel.HostAgentState(ctx, h); state != "Recovering" {
		t.Fatalf("state while recovering: %q", state)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !svc.Kernel.HasAgent(res.HostID) {
		t.Fatal("the agent is not in service after recovery")
	}
	if state, _ := svc.Kernel.HostAgentState(ctx, h); state != "Connected" {
		t.Fatalf("state after recovery: %q", state)
	}
}
