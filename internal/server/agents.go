package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentrpc"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/httperr"
	"github.com/knib/knib/internal/pki"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/hosts"
	"github.com/knib/knib/internal/store"
)

// remote is the server's side of remote agents: its identity, the
// agent-facing listener (join, hello) and the connection manager.
type remote struct {
	svc       *service.Service
	ca        *pki.CA
	cert      tls.Certificate // this process's server identity (memory only)
	log       *slog.Logger
	every     time.Duration // heartbeat
	failures  int           // consecutive failed heartbeats before Disconnected
	syncs     bool          // also sync the inventory and reconcile (no local agent loop)
	syncEvery time.Duration
	kick      chan struct{}

	mu    sync.Mutex
	conns map[string]*agentConn // by host id
}

type agentConn struct {
	peer  agentrpc.Peer
	hb    *agentrpc.Client // heartbeats: short timeout, no retries
	cmd   *agentrpc.Client // commands
	fails int
	up    bool
	busy  bool // a heartbeat or recovery is running
}

func newRemote(ctx context.Context, svc *service.Service, cfg Config, log *slog.Logger) (*remote, error) {
	ca, err := svc.Hosts.InitCA(ctx)
	if err != nil {
		return nil, fmt.Errorf("certificate authority: %w", err)
	}
	host, _ := os.Hostname()
	cert, err := ca.ServerIdentity(fmt.Sprintf("knib-server %s/%d", host, os.Getpid()), svc.Kernel.Clock().Now())
	if err != nil {
		return nil, fmt.Errorf("server identity: %w", err)
	}
	r := &remote{svc: svc, ca: ca, cert: cert, log: log, every: cfg.AgentHeartbeat, failures: cfg.AgentFailures,
		syncs: cfg.LibvirtURI == "", syncEvery: cfg.SyncEvery, kick: make(chan struct{}, 1), conns: map[string]*agentConn{}}
	if r.every <= 0 {
		r.every = 5 * time.Second
	}
	if r.failures <= 0 {
		r.failures = 3
	}
	return r, nil
}

// listen serves join and hello on addr until ctx ends.
func (r *remote) listen(ctx context.Context, addr string, ready func(string)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent listener on %s: %w", addr, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{r.cert},
		// Join has no client certificate yet; hello verifies its own.
		ClientAuth: tls.RequestClientCert}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentrpc.JoinPath, r.join)
	mux.HandleFunc("POST "+agentrpc.HelloPath, r.hello)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: cfg,
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug)}
	r.log.Info("agent listener", "addr", ln.Addr().String(), "ca_sha256", r.ca.Pin())
	if ready != nil {
		ready(ln.Addr().String())
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func decodeBody(w http.ResponseWriter, req *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(req.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		refuse(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

func refuse(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(agentrpc.Refusal{Reason: reason})
}

func (r *remote) fail(w http.ResponseWriter, err error) {
	msg := err.Error()
	status, _ := httperr.Status(err)
	if s := httperr.Sentinel(err); s != nil {
		msg = strings.TrimSuffix(msg, ": "+s.Error())
	}
	if status == http.StatusInternalServerError {
		r.log.Error("agent request failed", "err", err)
	} else {
		r.log.Warn("agent refused", "status", status, "reason", msg)
	}
	refuse(w, status, msg)
}

func (r *remote) join(w http.ResponseWriter, req *http.Request) {
	var in agentrpc.JoinRequest
	if !decodeBody(w, req, &in) {
		return
	}
	res, err := r.svc.Hosts.JoinAgent(req.Context(), hosts.JoinRequest{Token: in.Token, CSR: []byte(in.CSR), Name: in.Name, URL: in.URL, Report: in.Report})
	if err != nil {
		r.fail(w, err)
		return
	}
	writeOK(w, agentrpc.JoinResponse{HostID: res.HostID, Cert: string(res.CertPEM), CA: string(res.CAPEM)})
	r.poke()
}

func (r *remote) hello(w http.ResponseWriter, req *http.Request) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		refuse(w, http.StatusForbidden, "no client certificate: join with a token first")
		return
	}
	leaf, err := r.ca.Verify(req.TLS.PeerCertificates, pki.RoleAgent, r.svc.Kernel.Clock().Now())
	if err != nil {
		refuse(w, http.StatusForbidden, "agent certificate refused: "+err.Error())
		return
	}
	var in agentrpc.HelloRequest
	if !decodeBody(w, req, &in) {
		return
	}
	h, err := r.svc.Hosts.AgentHello(req.Context(), leaf, in.URL, in.Report)
	if err != nil {
		r.fail(w, err)
		return
	}
	// A hello comes from a freshly started agent process: whatever ran there
	// before is gone, so the host goes through recovery before new work.
	r.mu.Lock()
	if c := r.conns[h.ID]; c != nil {
		c.up = false
	}
	r.mu.Unlock()
	r.svc.Hosts.DropAgent(req.Context(), h.ID, store.AgentRecovering, "agent restarted")
	writeOK(w, agentrpc.HelloResponse{HostID: h.ID, Host: h.Name})
	r.poke()
}

func writeOK(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// poke makes the connection manager run a round now.
func (r *remote) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// manage is the connection manager: every heartbeat interval it calls each
// remote host's agent; a reachable agent is brought into service (after
// recovery), one that fails several heartbeats in a row is taken out and
// its host marked Disconnected.
func (r *remote) manage(ctx context.Context) {
	lastSync := time.Time{}
	for {
		r.round(ctx)
		if r.syncs && clock.Since(clock.Real{}, lastSync) >= r.syncEvery {
			lastSync = clock.Real{}.Now()
			go func() {
				if err := r.svc.Hosts.SyncInventory(ctx); err != nil && ctx.Err() == nil {
					r.log.Warn("inventory sync", "err", err)
				}
				r.svc.Recovery.Reconcile(ctx)
			}()
		}
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for _, c := range r.conns {
				c.hb.Close()
				c.cmd.Close()
			}
			r.mu.Unlock()
			return
		case <-time.After(r.every):
		case <-r.kick:
		}
	}
}

func (r *remote) round(ctx context.Context) {
	hosts, err := r.svc.Hosts.RemoteHosts(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("remote hosts", "err", err)
		}
		return
	}
	seen := map[string]bool{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rh := range hosts {
		id := rh.Host.ID
		seen[id] = true
		peer := agentrpc.Peer{URL: rh.Agent.URL, Host: rh.Host.Name, Serial: rh.Agent.CertSerial}
		c := r.conns[id]
		if c != nil && c.peer != peer {
			if c.busy {
				continue
			}
			// A new join or another URL: forget the old connection.
			r.svc.Hosts.DropAgent(ctx, id, "", "agent identity or address changed")
			c.hb.Close()
			c.cmd.Close()
			c = nil
		}
		if c == nil {
			hb, err1 := agentrpc.NewClient(peer, r.cert, r.ca.Cert)
			cmd, err2 := agentrpc.NewClient(peer, r.cert, r.ca.Cert)
			if err := errors.Join(err1, err2); err != nil {
				r.log.Warn("agent client", "host", rh.Host.Name, "err", err)
				continue
			}
			hb.SetRetries(0)
			hb.SetTimeout(max(r.every, 5*time.Second))
			c = &agentConn{peer: peer, hb: hb, cmd: cmd}
			r.conns[id] = c
		}
		if c.busy {
			continue
		}
		c.busy = true
		go r.beat(ctx, id, rh.Agent.Connection, c)
	}
	for id, c := range r.conns {
		if !seen[id] && !c.busy {
			r.svc.Hosts.DropAgent(ctx, id, "", "identity revoked or host removed")
			c.hb.Close()
			c.cmd.Close()
			delete(r.conns, id)
		}
	}
}

func (r *remote) beat(ctx context.Context, hostID, recorded string, c *agentConn) {
	defer func() {
		r.mu.Lock()
		c.busy = false
		r.mu.Unlock()
	}()
	rep, err := c.hb.HostReport(ctx)
	r.mu.Lock()
	up := c.up
	r.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		r.mu.Lock()
		c.fails++
		fails := c.fails
		r.mu.Unlock()
		r.log.Debug("agent heartbeat failed", "host", c.peer.Host, "fails", fails, "err", err)
		if fails >= r.failures && (up || recorded != store.AgentDisconnected) {
			r.log.Warn("agent lost", "host", c.peer.Host, "failed_heartbeats", fails, "err", err)
			r.svc.Hosts.DropAgent(ctx, hostID, store.AgentDisconnected, err.Error())
			r.mu.Lock()
			c.up = false
			r.mu.Unlock()
		}
		return
	}
	r.mu.Lock()
	c.fails = 0
	r.mu.Unlock()
	if up {
		if err := r.svc.Hosts.AgentSeen(ctx, hostID, rep); err != nil {
			r.log.Warn("agent heartbeat", "host", c.peer.Host, "err", err)
		}
		return
	}
	// Reachable again (or for the first time since this server started):
	// recovery first, then new work.
	if err := r.svc.Hosts.AgentUp(ctx, hostID, c.cmd); err != nil {
		r.log.Warn("agent not taken into service", "host", c.peer.Host, "err", err)
		return
	}
	r.mu.Lock()
	c.up = true
	r.mu.Unlock()
}
