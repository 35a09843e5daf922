package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a process writing and a test reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartRemoteServer starts a server without an in-process agent
// (--libvirt-uri ”) and with an agent listener on a free port, fast
// heartbeats and a short reconcile interval.
func StartRemoteServer(t *testing.T) *Server {
	t.Helper()
	s := &Server{t: t, DataDir: dataDirFor(t), Listen: freePort(t), NoLocalAgent: true}
	s.URL = "http://" + s.Listen
	s.AgentListen = freePort(t)
	s.Args = []string{"--libvirt-uri", "", "--agent-listen", s.AgentListen, "--agent-heartbeat", "1s", "--agent-failures", "2"}
	s.ReconcileEvery = "5s"
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// AgentURL is the server's agent listener.
func (s *Server) AgentURL() string { return "https://" + s.AgentListen }

// Agent is a `knib agent --server` process with its own data directory and
// port, on the local libvirtd.
type Agent struct {
	t       *testing.T
	srv     *Server
	Name    string
	DataDir string
	Listen  string
	Storage string
	// Args are extra `knib agent` flags (e.g. --libvirt-uri, --disk-dir).
	Args []string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	code int
}

// NewAgent prepares (does not start) an agent for host name that uses the
// server's backup storage directory.
func (s *Server) NewAgent(t *testing.T, name string) *Agent {
	dir := t.TempDir()
	return &Agent{t: t, srv: s, Name: name, DataDir: dir, Listen: freePort(t), Storage: filepath.Join(s.DataDir, "storage")}
}

// Start starts the agent, joining with token when not empty.
func (a *Agent) Start(token string, env ...string) {
	a.t.Helper()
	args := []string{"agent", "--server", a.srv.AgentURL(), "--data-dir", a.DataDir, "--listen", a.Listen,
		"--advertise", "https://" + a.Listen, "--name", a.Name, "--storage-path", a.Storage}
	if token != "" {
		args = append(args, "--join-token", token)
	}
	args = append(args, a.Args...)
	cmd := exec.Command(binary(a.t), args...)
	cmd.Env = append(os.Environ(), env...)
	a.log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.cmd, a.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		a.code = cmd.ProcessState.ExitCode()
		close(a.done)
	}()
	a.t.Cleanup(a.Stop)
}

// Wait waits for the agent to exit by itself and returns its exit code.
func (a *Agent) Wait(timeout time.Duration) (int, error) {
	select {
	case <-a.done:
		return a.code, nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("agent %s still running after %s", a.Name, timeout)
	}
}

// Running reports whether the process still runs.
func (a *Agent) Running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// Kill kills the agent with SIGKILL.
func (a *Agent) Kill() {
	if a.cmd == nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// Stop stops the agent gracefully.
func (a *Agent) Stop() {
	if a.cmd == nil {
		return
	}
	stopProcess(a.cmd, a.done)
	if a.t.Failed() {
		a.t.Logf("agent %s log:\n%s", a.Name, a.log)
	}
}

// Restart stops the agent and starts it again without a token (hello).
func (a *Agent) Restart(env ...string) {
	a.Stop()
	a.Start("", env...)
}

// WaitServing waits until the agent joined or said hello and serves; false
// when it exited instead.
func (a *Agent) WaitServing(timeout time.Duration) bool {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(a.Log(), "knib agent serving") {
		if !a.Running() {
			return false
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("agent %s not serving after %s:\n%s", a.Name, timeout, a.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// Log is what the agent printed so far.
func (a *Agent) Log() string { return a.log.String() }

// HostJSON is `knib host show -o json`.
type HostJSON struct {
	ID       string    `json:"id"`
	Name     string    `json:"name"`
	Zone     string    `json:"zone"`
	Enabled  bool      `json:"enabled"`
	Local    bool      `json:"local"`
	Agent    string    `json:"agent"`
	AgentURL string    `json:"agent_url"`
	LastSeen time.Time `json:"last_seen"`
}

// WaitAgentState waits until the host's agent connection is state.
func (s *Server) WaitAgentState(host, state string, timeout time.Duration, a *Agent) HostJSON {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var h HostJSON
	for {
		err := s.CLIJSON(&h, "host", "show", host)
		if err == nil && h.Agent == state {
			return h
		}
		if a != nil && !a.Running() {
			s.t.Fatalf("agent %s exited (code %d) while waiting for %s:\n%s", a.Name, a.code, state, a.Log())
		}
		if time.Now().After(deadline) {
			log := ""
			if a != nil {
				log = a.Log()
			}
			s.t.Fatalf("host %s: agent %q (err %v), want %s after %s\nserver:\n%s\nagent:\n%s", host, h.Agent, err, state, timeout, s.Log(), log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// joinToken creates a join token and returns its text.
func (s *Server) joinToken(zone string) string {
	s.t.Helper()
	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	// A join token needs its zone: create it unless it exists.
	var zones []struct {
		Name string `json:"name"`
	}
	s.MustJSON(&zones, "zone", "list")
	if !slices.ContainsFunc(zones, func(z struct {
		Name string `json:"name"`
	}) bool {
		return z.Name == zone
	}) {
		s.CLI("zone", "create", zone)
	}
	// Printed as JSON whatever the output format.
	out := s.CLI("host", "join-token", "create", "--zone", zone, "--ttl", "10m")
	if err := jsonDecode(out, &tok); err != nil || !strings.HasPrefix(tok.Token, "knibjoin.") || tok.ExpiresAt.IsZero() {
		s.t.Fatalf("join token: %v %q", err, out)
	}
	return tok.Token
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }
