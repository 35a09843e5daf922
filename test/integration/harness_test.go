package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

var (
	buildOnce sync.Once
	knibBin   string
	buildErr  error
)

// binary builds the knib binary once per test process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := testbed.ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "knib-bin-")
		if err != nil {
			buildErr = err
			return
		}
		knibBin = filepath.Join(dir, "knib")
		cmd := exec.Command("go", "build", "-o", knibBin, "./cmd/knib")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return knibBin
}

// Server is a knib server process with its own data directory and port.
type Server struct {
	t       *testing.T
	URL     string
	DataDir string
	Listen  string
	Env     []string
	// ReconcileEvery, JobsEvery and LogLevel, when set, are passed as
	// --reconcile-interval, --jobs-interval and --log-level.
	ReconcileEvery, JobsEvery, LogLevel, JobLease string
	// Args are extra server flags; NoLocalAgent skips waiting for the
	// in-process agent's host (a server started with --libvirt-uri '').
	Args         []string
	NoLocalAgent bool
	AgentListen  string // the agent listener of a server started by StartRemoteServer
	// Database, when set, is passed as --database (a postgres:// URL).
	Database string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	mu       sync.Mutex
	done     chan struct{}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// StartServer starts `knib server` on a fresh data directory (or dataDir when
// not empty, to restart on the same state) and waits until it answers.
func StartServer(t *testing.T, dataDir string, env ...string) *Server {
	t.Helper()
	testbed.Require(t)
	if dataDir == "" {
		dataDir = dataDirFor(t)
	}
	s := &Server{t: t, DataDir: dataDir, Listen: freePort(t), Env: env}
	s.URL = "http://" + s.Listen
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	t := s.t
	args := []string{"server", "--data-dir", s.DataDir, "--listen", s.Listen}
	if s.ReconcileEvery != "" {
		args = append(args, "--reconcile-interval", s.ReconcileEvery)
	}
	if s.JobsEvery != "" {
		args = append(args, "--jobs-interval", s.JobsEvery)
	}
	if s.LogLevel != "" {
		args = append(args, "--log-level", s.LogLevel)
	}
	if s.JobLease != "" {
		args = append(args, "--job-lease", s.JobLease)
	}
	if s.Database != "" {
		args = append(args, "--database", s.Database)
	}
	args = append(args, s.Args...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), s.Env...)
	s.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				if !s.NoLocalAgent {
					s.waitHost()
				}
				return
			}
		}
		select {
		case <-s.done:
			t.Fatalf("knib server exited at start:\n%s", s.log)
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("knib server did not answer within 30 s:\n%s", s.log)
}

// waitHost waits until the local host is registered (its agent is ready).
func (s *Server) waitHost() {
	// The host row survives restarts: wait for this process's agent to
	// register it (last_seen after the start).
	started := time.Now().Add(-time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var hosts []struct {
			LastSeen time.Time `json:"last_seen"`
		}
		// The log line proves that this process's agent is in service (a
		// last_seen within the second before the start may be the old one's).
		if s.CLIJSON(&hosts, "host", "list") == nil && len(hosts) > 0 && hosts[0].LastSeen.After(started) &&
			strings.Contains(s.Log(), "host registered") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("the local host did not register:\n%s", s.log)
}

// Restart stops the server gracefully and starts it again on the same data.
func (s *Server) Restart(env ...string) {
	s.Stop()
	s.Env = env
	s.start()
}

// Kill kills the server with SIGKILL and waits for it to be gone.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Wait waits for the server process to exit by itself (a crash point).
func (s *Server) Wait(timeout time.Duration) error {
	select {
	case <-s.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("server still running after %s", timeout)
	}
}

// Stop stops the server gracefully.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	stopProcess(s.cmd, s.done)
	if s.t.Failed() {
		s.t.Logf("server log:\n%s", s.log)
	}
}

// stopProcess sends SIGTERM to a process that has not exited (done is
// closed when it has) and waits for it, with SIGKILL after 20 s.
func stopProcess(cmd *exec.Cmd, done chan struct{}) {
	select {
	case <-done:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Log returns what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// Result is what one CLI run did.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs the knib CLI against this server with the admin token (unless
// env sets KNIB_TOKEN).
func (s *Server) Run(env []string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(s.t), args...)
	cmd.Env = append(os.Environ(), "KNIB_SERVER="+s.URL, "KNIB_DATA_DIR="+s.DataDir, "KNIB_TOKEN=")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatalf("run knib %v: %v", args, err)
	}
	return r
}

// CLI runs the CLI as admin and fails the test on a non-zero exit.
func (s *Server) CLI(args ...string) string {
	s.t.Helper()
	r := s.Run(nil, args...)
	if r.Code != 0 {
		s.t.Fatalf("knib %s: exit %d: %s%s", strings.Join(args, " "), r.Code, r.Stderr, r.Stdout)
	}
	return r.Stdout
}

// CLIJSON runs the CLI as admin with -o json and decodes the output.
func (s *Server) CLIJSON(out any, args ...string) error {
	r := s.Run(nil, append(args, "-o", "json")...)
	if r.Code != 0 {
		return fmt.Errorf("knib %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	return json.Unmarshal([]byte(r.Stdout), out)
}

// MustJSON is CLIJSON failing the test on error.
func (s *Server) MustJSON(out any, args ...string) {
	s.t.Helper()
	if err := s.CLIJSON(out, args...); err != nil {
		s.t.Fatal(err)
	}
}

// Fail runs the CLI expecting failure; it returns the one-line message.
func (s *Server) Fail(env []string, wantCode int, args ...string) string {
	s.t.Helper()
	r := s.Run(env, args...)
	if r.Code == 0 {
		s.t.Fatalf("knib %s succeeded, want exit %d: %s", strings.Join(args, " "), wantCode, r.Stdout)
	}
	if wantCode != 0 && r.Code != wantCode {
		s.t.Fatalf("knib %s: exit %d, want %d: %s", strings.Join(args, " "), r.Code, wantCode, r.Stderr)
	}
	msg := strings.TrimSpace(r.Stderr)
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "knib: ") {
		s.t.Fatalf("knib %s: want a one-line message, got %q", strings.Join(args, " "), msg)
	}
	return msg
}

// dataDirFor makes a data directory QEMU can traverse (t.TempDir's parents
// are 0700, which keeps libvirt-qemu out of the backup storage).
func dataDirFor(t *testing.T) string {
	t.Helper()
	root := "/var/tmp/knib-it"
	if err := os.MkdirAll(root, 0o711); err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o711)
	dir, err := os.MkdirTemp(root, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o711)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
