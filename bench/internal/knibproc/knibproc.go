package knibproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/testbed"
)

// Build compiles ./cmd/knib of the module at root into dir and returns the
// binary's path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "knib")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/knib")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/knib: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// Server is a `knib server` process with its own data directory and port.
type Server struct {
	Bin, DataDir, URL string
	// LogPath is the file the server's output goes to.
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs `knib server --data-dir dataDir --listen 127.0.0.1:<free>
// [extra...]`, its output in logPath, and waits until it answers and has
// registered the local host.
func Start(ctx context.Context, bin, dataDir, logPath string, extra ...string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	s := &Server{Bin: bin, DataDir: dataDir, URL: "http://" + addr, LogPath: logPath}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, append([]string{"server", "--data-dir", dataDir, "--listen", addr}, extra...)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()

	deadline := clock.Real{}.Now().Add(30 * time.Second)
	up := false
	for {
		if !up {
			if resp, err := http.Get(s.URL + "/api/v1/health"); err == nil {
				resp.Body.Close()
				up = resp.StatusCode == http.StatusOK
			}
		}
		if up {
			var hosts []json.RawMessage
			if s.CLIJSON(ctx, &hosts, "host", "list") == nil && len(hosts) > 0 {
				return s, nil
			}
		}
		if (clock.Real{}).Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("knib server not ready within 30 s: %s", s.LogTail())
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("knib server exited at start: %s", s.LogTail())
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogTail returns the end of the server's log.
func (s *Server) LogTail() string {
	b, _ := os.ReadFile(s.LogPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// LogLines returns the server's log, a line each.
func (s *Server) LogLines() []string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// LogHas reports whether one line of the server's log contains every one
// of subs.
func (s *Server) LogHas(subs ...string) bool {
	for _, line := range s.LogLines() {
		if ContainsAll(line, subs...) {
			return true
		}
	}
	return false
}

// ContainsAll reports whether s contains every one of subs.
func ContainsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// Stop sends SIGTERM and waits (SIGKILL after 20 s). A nil or stopped
// server is fine.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil {
		return
	}
	StopProcess(s.cmd, s.done)
}

// StopProcess ends a started process: SIGTERM, SIGKILL after 20 s. done
// closes when the process was waited for.
func StopProcess(cmd *exec.Cmd, done <-chan struct{}) {
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

// Command returns the knib CLI command for args, talking to this server as
// admin (the token is read from the data directory).
func (s *Server) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.Bin, args...)
	cmd.Env = append(os.Environ(), "KNIB_SERVER="+s.URL, "KNIB_DATA_DIR="+s.DataDir, "KNIB_TOKEN=")
	return cmd
}

// CLI runs the CLI (at most 20 minutes) and returns its standard output;
// the error carries its standard error.
func (s *Server) CLI(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := s.Command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("knib %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// CLIJSON runs the CLI with -o json and decodes its output into v.
func (s *Server) CLIJSON(ctx context.Context, v any, args ...string) error {
	out, err := s.CLI(ctx, append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("knib %s: decode output: %v: %q", strings.Join(args, " "), err, out)
	}
	return nil
}

// Logf prints a time-stamped progress line on standard error.
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", clock.Real{}.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Machine describes this machine for a report.
func Machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs, TCG guests (type='qemu')", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}

// Main runs a benchmark under a deadline, stopping early on SIGINT or
// SIGTERM; prints its report (whatever was measured, also when it failed)
// as indented JSON or with print; and exits 1 if it failed.
func Main[R any](name string, timeout time.Duration, asJSON bool, run func(context.Context) (*R, error), print func(io.Writer, *R)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	rep, err := run(ctx)
	cancel()
	stop()
	if rep != nil {
		if asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if jerr := enc.Encode(rep); jerr != nil {
				fmt.Fprintln(os.Stderr, name+":", jerr)
			}
		} else {
			print(os.Stdout, rep)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, name+": FAILED:", err)
		os.Exit(1)
	}
}

// Prepare checks what every benchmark with a test VM needs (root, the
// test guest) and returns the module's root directory, for Build.
func Prepare() (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("must run as root (test VMs live under " + testbed.ImagesDir + ")")
	}
	root, err := testbed.ModuleRoot()
	if err != nil {
		return "", err
	}
	if err := testbed.EnsureGuest(); err != nil {
		return "", fmt.Errorf("test guest: %v (run bash scripts/setup.sh)", err)
	}
	return root, nil
}

// Settle flushes dirty pages (untimed), with cold drops the page cache too,
// and pauses half a second, so that a timed step neither pays for the step
// before it nor reads what that one left in memory.
func Settle(ctx context.Context, cold bool) {
	if out, err := exec.CommandContext(ctx, "sync").CombinedOutput(); err != nil {
		Logf("sync: %v: %s", err, bytes.TrimSpace(out))
	}
	if cold {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o644); err != nil {
			Logf("drop caches: %v", err)
		}
	}
	time.Sleep(500 * time.Millisecond)
}

// Backup is what the benchmarks read of `knib backup create/show -o json`.
type Backup struct {
	ID     string       `json:"id"`
	Type   string       `json:"type"`
	Status string       `json:"status"`
	Size   int64        `json:"size"`
	Error  string       `json:"error"`
	Files  []BackupFile `json:"files"`
}

// BackupFile is one file of a Backup.
type BackupFile struct {
	Disk string `json:"disk"`
	Path string `json:"path"` // relative to the backup storage
	Size int64  `json:"size"`
}

// DiskFile is the path of disk's file of b in the backup storage at
// storage; an error when b has none.
func (b Backup) DiskFile(storage, disk string) (string, error) {
	for _, f := range b.Files {
		if f.Disk == disk {
			return filepath.Join(storage, f.Path), nil
		}
	}
	return "", fmt.Errorf("backup %s has no file for %s", b.ID, disk)
}
