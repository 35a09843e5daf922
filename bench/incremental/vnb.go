package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/knib/knib/internal/clock"
)

// virtnbdbackup runs the Debian package's tool (dirty bitmaps, libvirt
// checkpoints, NBD pull) into one output directory: a full backup once, then
// incrementals.
type virtnbdbackup struct {
	bin    string
	outDir string
	logDir string
	runs   int
}

func newVirtnbdbackup(outDir, logDir string) (*virtnbdbackup, error) {
	bin, err := exec.LookPath("virtnbdbackup")
	if err != nil {
		return nil, fmt.Errorf("virtnbdbackup is not installed (Debian package virtnbdbackup; bash scripts/setup.sh installs it): %v", err)
	}
	return &virtnbdbackup{bin: bin, outDir: outDir, logDir: logDir}, nil
}

// vnbRun is one timed virtnbdbackup call.
type vnbRun struct {
	Seconds     float64 // wall time of the virtnbdbackup command
	SyncSeconds float64 // fsync of the files it wrote (it does not fsync them itself)
	Bytes       int64   // bytes of the data files it wrote
}

// run times `virtnbdbackup -d vm -l level -o outDir -n`, then times
// `sync FILE...` of the files it created or grew, which knib's number
// includes (knib fsyncs its backup files) and virtnbdbackup's does not.
func (v *virtnbdbackup) run(ctx context.Context, vm, level string) (vnbRun, error) {
	var r vnbRun
	before := sizes(v.outDir)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.bin, "-d", vm, "-l", level, "-o", v.outDir, "-n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := clock.Real{}.Now()
	err := cmd.Run()
	r.Seconds = clock.Since(clock.Real{}, start).Seconds()
	v.runs++
	logPath := filepath.Join(v.logDir, fmt.Sprintf("virtnbdbackup.%d.%s.log", v.runs, level))
	_ = os.WriteFile(logPath, out.Bytes(), 0o644)
	if err != nil {
		return r, fmt.Errorf("virtnbdbackup -d %s -l %s: %v: %s (full log %s)", vm, level, err, lastLines(out.String(), 3), logPath)
	}
	var changed []string
	for path, size := range sizes(v.outDir) {
		if old, ok := before[path]; !ok || old != size {
			changed = append(changed, path)
			if strings.HasSuffix(path, ".data") {
				r.Bytes += size - old
			}
		}
	}
	if len(changed) > 0 {
		start = clock.Real{}.Now()
		if err := runQuiet(ctx, "sync", changed...); err != nil {
			return r, err
		}
		r.SyncSeconds = clock.Since(clock.Real{}, start).Seconds()
	}
	return r, nil
}

// sizes returns the regular files under dir with their sizes.
func sizes(dir string) map[string]int64 {
	m := map[string]int64{}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			m[path] = fi.Size()
		}
		return nil
	})
	return m
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func runQuiet(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
