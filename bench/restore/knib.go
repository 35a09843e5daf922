package main

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
	"syscall"
	"time"
)

// server is a `knib server` process started by the benchmark on its own data
// directory and a free port.
type server struct {
	bin, dataDir, url, logPath string

	cmd  *exec.Cmd
	done chan struct{}
}

// build compiles ./cmd/knib of the module at root into dir.
func build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "knib")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/knib")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/knib: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return bin, nil
}

// start runs `knib server --data-dir dataDir --listen 127.0.0.1:<free>` and
// waits until it answers and has registered the local host.
func start(ctx context.Context, bin, dataDir string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &server{bin: bin, dataDir: dataDir, url: "http://" + addr, logPath: filepath.Join(filepath.Dir(dataDir), "server.log")}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "server", "--data-dir", dataDir, "--listen", addr)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()

	deadline := time.Now().Add(30 * time.Second)
	up := false
	for {
		if !up {
			if resp, err := http.Get(s.url + "/api/v1/health"); err == nil {
				resp.Body.Close()
				up = resp.StatusCode == http.StatusOK
			}
		}
		if up {
			var hosts []json.RawMessage
			if s.json(ctx, &hosts, "host", "list") == nil && len(hosts) > 0 {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("knib server not ready within 30 s: %s", s.logTail())
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("knib server exited at start: %s", s.logTail())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (s *server) stop() {
	if s == nil || s.cmd == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// command returns the knib CLI command for args, talking to this server as
// admin (the token is read from the data directory).
func (s *server) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "KNIB_SERVER="+s.url, "KNIB_DATA_DIR="+s.dataDir, "KNIB_TOKEN=")
	return cmd
}

// run runs the CLI and returns its standard output.
func (s *server) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := s.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("knib %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// json runs the CLI with -o json and decodes its output into v.
func (s *server) json(ctx context.Context, v any, args ...string) error {
	out, err := s.run(ctx, append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("knib %s -o json: %v: %q", strings.Join(args, " "), err, out)
	}
	return nil
}

// backupInfo is what the benchmark reads of `knib backup create/show -o json`.
type backupInfo struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Size   int64  `json:"size"`
	Error  string `json:"error"`
	Files  []struct {
		Disk string `json:"disk"`
		Path string `json:"path"` // relative to the backup storage
	} `json:"files"`
}

// restoreResult is what the benchmark reads of `knib backup restore -o json`.
type restoreResult struct {
	Disks []struct {
		Target   string `json:"target"`
		Path     string `json:"path"`
		Verified string `json:"verified"`
	} `json:"disks"`
}

// vmInfo is what the benchmark reads of `knib vm show -o json`.
type vmInfo struct {
	State     string `json:"state"`
	LastError string `json:"last_error"`
	Disks     []struct {
		Target  string `json:"target"`
		Source  string `json:"source"`
		Backing []struct {
			Path string `json:"path"`
		} `json:"backing_chain"`
	} `json:"disks"`
}
