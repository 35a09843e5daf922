package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"time"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/internal/clock"
)

// knibServer is the all-in-one `knib server` the benchmark drives.
type knibServer struct{ *knibproc.Server }

// startServer starts it on dataDir (--jobs-interval 1s, and --log-level debug: the log records every qemu-img run with its arguments and duration, which the benchmark reads back) and waits until it is ready.
func startServer(ctx context.Context, bin, dataDir string) (*knibServer, error) {
	s, err := knibproc.Start(ctx, bin, dataDir, filepath.Join(dataDir, "server.log"), "--jobs-interval", "1s", "--log-level", "debug")
	if err != nil {
		return nil, err
	}
	return &knibServer{s}, nil
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
	start := clock.Real{}.Now()
	out, err := s.CLI(ctx, "backup", "create", vm, "-o", "json")
	secs := clock.Since(clock.Real{}, start).Seconds()
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
	if err := s.CLIJSON(ctx, &list, "backup", "list", "--vm", vm); err != nil {
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
	deadline := clock.Real{}.Now().Add(timeout)
	for {
		b, err := s.backupOf(ctx, vm, id)
		if err != nil {
			return b, err
		}
		ok, err := done(b)
		if err != nil || ok {
			return b, err
		}
		if (clock.Real{}).Now().After(deadline) {
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
	err := s.CLIJSON(ctx, &jobs, "job", "list", "--all", "--backup", backupID)
	return jobs, err
}

// setting returns the global value of a setting (`knib settings list`).
func (s *knibServer) setting(ctx context.Context, key string) (string, error) {
	var list []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := s.CLIJSON(ctx, &list, "settings", "list"); err != nil {
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
	var out []qemuImgRun
	for _, line := range s.LogLines() {
		m := qemuImgLogRE.FindStringSubmatch(line)
		if m == nil || !knibproc.ContainsAll(m[1], subs...) {
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
