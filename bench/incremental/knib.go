package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// knibServer is an all-in-one `knib server` process with its own data
// directory and port, started and stopped by the benchmark.
type knibServer struct {
	bin     string
	dataDir string
	url     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// buildKnib builds ./cmd/knib into dir and returns the binary's path.
func buildKnib(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "knib")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/knib")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/knib: %v\n%s", err, out)
	}
	return bin, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startServer starts `knib server --data-dir dataDir --listen <free port>`
// and waits until it answers and the local host is registered.
func startServer(ctx context.Context, bin, dataDir string) (*knibServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, err
	}
	s := &knibServer{bin: bin, dataDir: dataDir, url: "http://" + addr, logPath: filepath.Join(dataDir, "server.log")}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--data-dir", dataDir, "--listen", addr)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(s.done) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/api/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("knib server did not answer within 30 s (log %s)", s.logPath)
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
	for {
		var hosts []json.RawMessage
		if err := s.cliJSON(ctx, &hosts, "host", "list"); err == nil && len(hosts) > 0 {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("the local host did not register within 30 s (log %s)", s.logPath)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *knibServer) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// stop stops the server gracefully (SIGTERM, SIGKILL after 20 s).
func (s *knibServer) stop() {
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

// cli runs the knib CLI against this server as admin and returns its stdout.
func (s *knibServer) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), "KNIB_SERVER="+s.url, "KNIB_DATA_DIR="+s.dataDir, "KNIB_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("knib %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// cliJSON runs the CLI with -o json and decodes its output into v.
func (s *knibServer) cliJSON(ctx context.Context, v any, args ...string) error {
	out, err := s.cli(ctx, append(args, "-o", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("knib %s: decode output: %v: %q", strings.Join(args, " "), err, out)
	}
	return nil
}

// backup is the part of `knib backup create -o json` the benchmark reads.
type backup struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Size   int64  `json:"size"`
	Error  string `json:"error"`
}

// operation is the part of `knib operation list --all -o json` the
// benchmark reads.
type operation struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	State   string          `json:"state"`
	Result  json.RawMessage `json:"result"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`
}

// backupRun is one timed `knib backup create`.
type backupRun struct {
	Backup    backup
	Seconds   float64 // wall time of the CLI call, which waits for the operation
	OpSeconds float64 // the operation's own duration: updated - created
	// PreSeconds is from the CLI's start to the operation's creation (the
	// CLI starting, the POST handler's synchronous work); PostSeconds from
	// the operation's end to the CLI's exit (polling lag, the final GET).
	PreSeconds, PostSeconds float64
	Freeze                  float64 // the operation result's freeze_seconds
}

// timedBackup times `knib backup create VM -o json` (the CLI waits for the
// operation), checks the backup's type, then reads the operation's
// freeze_seconds.
func (s *knibServer) timedBackup(ctx context.Context, vm, wantType string) (backupRun, error) {
	var r backupRun
	start := time.Now()
	out, err := s.cli(ctx, "backup", "create", vm, "-o", "json")
	r.Seconds = time.Since(start).Seconds()
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(out), &r.Backup); err != nil {
		return r, fmt.Errorf("knib backup create %s: decode output: %v: %q", vm, err, out)
	}
	if r.Backup.Status != "BackedUp" {
		return r, fmt.Errorf("knib backup create %s: backup %s is %s: %s", vm, r.Backup.ID, r.Backup.Status, r.Backup.Error)
	}
	if r.Backup.Type != wantType {
		return r, fmt.Errorf("knib backup create %s: backup %s is %s, want %s", vm, r.Backup.ID, r.Backup.Type, wantType)
	}
	op, freeze, err := s.operationOf(ctx, r.Backup.ID)
	if err != nil {
		return r, err
	}
	r.Freeze, r.OpSeconds = freeze, op.Updated.Sub(op.Created).Seconds()
	r.PreSeconds = op.Created.Sub(start).Seconds()
	r.PostSeconds = r.Seconds - r.PreSeconds - r.OpSeconds
	return r, nil
}

// operationOf finds the finished backup operation whose result names
// backupID and returns it with its result's freeze_seconds.
func (s *knibServer) operationOf(ctx context.Context, backupID string) (operation, float64, error) {
	var ops []operation
	if err := s.cliJSON(ctx, &ops, "operation", "list", "--all"); err != nil {
		return operation{}, 0, err
	}
	for _, op := range ops {
		if op.State != "Succeeded" || len(op.Result) == 0 {
			continue
		}
		var res struct {
			ID     string   `json:"id"`
			Freeze *float64 `json:"freeze_seconds"`
		}
		if json.Unmarshal(op.Result, &res) != nil || res.ID != backupID {
			continue
		}
		if res.Freeze == nil {
			return op, 0, fmt.Errorf("operation %s (backup %s) has no freeze_seconds in its result: %s", op.ID, backupID, op.Result)
		}
		return op, *res.Freeze, nil
	}
	return operation{}, 0, errors.New("no succeeded operation names backup " + backupID)
}
