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
	"regexp"
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

// startServer starts `knib server --data-dir dataDir --listen <free port>
// --jobs-interval 1s --log-level debug` and waits until it answers and the
// local host is registered. Debug logging records every qemu-img run with
// its arguments and duration, which the benchmark reads back.
func startServer(ctx context.Context, bin, dataDir string) (*knibServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s := &knibServer{bin: bin, dataDir: dataDir, url: "http://" + addr, logPath: filepath.Join(dataDir, "server.log")}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "server", "--data-dir", dataDir, "--listen", addr, "--jobs-interval", "1s", "--log-level", "debug")
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

// backup is the part of `knib backup create/list -o json` the benchmark
// reads.
type backup struct {
	ID                string       `json:"id"`
	Type              string       `json:"type"`
	Status            string       `json:"status"`
	Size              int64        `json:"size"`
	Error             string       `json:"error"`
	Files             []backupFile `json:"files"`
	CompressionStatus string       `json:"compression_status"`
	UncompressedSize  int64        `json:"uncompressed_size"`
	ValidationStatus  string       `json:"validation_status"`
	ValidationReason  string       `json:"validation_reason"`
	HasScreenshot     bool         `json:"has_screenshot"`
}

type backupFile struct {
	Disk string `json:"disk"`
	Path string `json:"path"`
	Size int64  `json:"size"`
}

// job is the part of `knib job list --all -o json` the benchmark reads.
type job struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	BackupID  string     `json:"backup_id"`
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`
	Started   *time.Time `json:"started"`
	Ended     *time.Time `json:"ended"`
	LastError string     `json:"last_error"`
}

// createBackup runs `knib backup create VM -o json` (the CLI waits for the
// operation) and returns the backup and the CLI's wall time.
func (s *knibServer) createBackup(ctx context.Context, vm string) (backup, float64, error) {
	var b backup
	start := time.Now()
	out, err := s.cli(ctx, "backup", "create", vm, "-o", "json")
	secs := time.Since(start).Seconds()
	if err != nil {
		return b, secs, err
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil {
		return b, secs, fmt.Errorf("knib backup create %s: decode output: %v: %q", vm, err, out)
	}
	if b.Status != "BackedUp" {
		return b, secs, fmt.Errorf("knib backup create %s: backup %s is %s: %s", vm, b.ID, b.Status, b.Error)
	}
	return b, secs, nil
}

// backupOf returns backup id of vm as `knib backup list --vm VM` shows it.
func (s *knibServer) backupOf(ctx context.Context, vm, id string) (backup, error) {
	var list []backup
	if err := s.cliJSON(ctx, &list, "backup", "list", "--vm", vm); err != nil {
		return backup{}, err
	}
	for _, b := range list {
		if b.ID == id {
			return b, nil
		}
	}
	return backup{}, fmt.Errorf("knib backup list --vm %s: no backup %s", vm, id)
}

// waitBackup polls the backup every second (each poll is a CLI process:
// polling faster takes CPU from the compression it waits for) until done
// says it is finished, or until timeout. The times come from the jobs, not
// from this loop.
func (s *knibServer) waitBackup(ctx context.Context, vm, id string, timeout time.Duration, done func(backup) (bool, error)) (backup, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, err := s.backupOf(ctx, vm, id)
		if err != nil {
			return b, err
		}
		ok, err := done(b)
		if err != nil || ok {
			return b, err
		}
		if time.Now().After(deadline) {
			return b, fmt.Errorf("backup %s not done after %s (compression %s, validation %s)", id, timeout, b.CompressionStatus, b.ValidationStatus)
		}
		select {
		case <-ctx.Done():
			return b, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// jobsOf lists every job (finished ones too) of the backup.
func (s *knibServer) jobsOf(ctx context.Context, backupID string) ([]job, error) {
	var jobs []job
	err := s.cliJSON(ctx, &jobs, "job", "list", "--all", "--backup", backupID)
	return jobs, err
}

// setting returns the global value of a setting (`knib settings list`).
func (s *knibServer) setting(ctx context.Context, key string) (string, error) {
	var list []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := s.cliJSON(ctx, &list, "settings", "list"); err != nil {
		return "", err
	}
	for _, st := range list {
		if st.Key == key {
			return st.Value, nil
		}
	}
	return "", fmt.Errorf("knib settings list: no setting %s", key)
}

// qemuImgRun is one qemu-img run the server logged at debug level.
type qemuImgRun struct {
	Args    string  `json:"args"`
	Seconds float64 `json:"seconds"`
}

// The text handler's debug record of internal/qemuimg:
// ... msg=qemu-img args="[/usr/bin/qemu-img convert ...]" duration=1.2s err=<nil>
var qemuImgLogRE = regexp.MustCompile(`msg=qemu-img args="\[([^\]]*)\]" duration=(\S+)`)

// loggedConverts returns the qemu-img runs in the server's log whose
// arguments contain every one of subs.
func (s *knibServer) loggedConverts(subs ...string) []qemuImgRun {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil
	}
	var out []qemuImgRun
	for _, line := range strings.Split(string(b), "\n") {
		m := qemuImgLogRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		match := true
		for _, sub := range subs {
			if !strings.Contains(m[1], sub) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		d, err := time.ParseDuration(m[2])
		if err != nil {
			continue
		}
		out = append(out, qemuImgRun{Args: m[1], Seconds: d.Seconds()})
	}
	return out
}

// logHas reports whether one line of the server's log contains every one of
// subs.
func (s *knibServer) logHas(subs ...string) bool {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, sub := range subs {
			if !strings.Contains(line, sub) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}
