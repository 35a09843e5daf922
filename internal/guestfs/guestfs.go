package guestfs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultEnvFile is where `make setup` writes the environment libguestfs
// needs on these hosts (direct backend, TCG, the supermin kernel).
const DefaultEnvFile = "/var/cache/knib/gfk/env"

// Config says how to run guestfish.
type Config struct {
	// Binary is the guestfish program; empty means "guestfish" from PATH.
	Binary string
	// Env is added to the process environment (KEY=VALUE).
	Env []string
}

// LoadEnv reads KEY=VALUE lines (blank lines and # comments skipped).
func LoadEnv(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("libguestfs environment: %w (run make setup)", err)
	}
	var env []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			return nil, fmt.Errorf("libguestfs environment %s: bad line %q", path, line)
		}
		env = append(env, line)
	}
	return env, nil
}

// Drive is a disk image to attach.
type Drive struct {
	Path   string
	Format string // qcow2 or raw; always given, never probed
}

// Error is a failed guestfish call.
type Error struct {
	Command string
	Message string // libguestfs' message, trimmed
}

func (e *Error) Error() string { return "guestfish " + e.Command + ": " + e.Message }

// ErrClosed is returned by calls on a closed handle or one whose guestfish
// process is gone.
var ErrClosed = errors.New("file system helper is gone")

// Handle is one running appliance. Calls on it are serialised.
type Handle struct {
	cfg Config
	pid int
	// errf: the listener's standard output and error, shared with it (so
	// its offset is the listener's: reads are at errOff).
	errf   *os.File
	errOff int64

	mu      sync.Mutex
	closed  bool
	mounted string
	starts  map[string]int64 // partitions' byte offsets on their drives (DeviceOnDrive)
}

var pidLine = regexp.MustCompile(`GUESTFISH_PID=(\d+)`)

// Launch starts guestfish in listen mode with drives attached read-only and
// boots its appliance. The caller must Close the handle.
func Launch(ctx context.Context, cfg Config, drives []Drive) (*Handle, error) {
	if len(drives) == 0 {
		return nil, errors.New("guestfs: no drive")
	}
	args := []string{"--listen", "--ro"}
	for _, d := range drives {
		if d.Format != "qcow2" && d.Format != "raw" {
			return nil, fmt.Errorf("guestfs: drive %s: format %q is not qcow2 or raw", d.Path, d.Format)
		}
		args = append(args, "--format="+d.Format, "-a", d.Path)
	}
	// The listening guestfish prints the errors of the commands it runs to
	// its own standard error, not to the client's: a file read after each
	// call (calls are serialised).
	errf, err := appendOnlyTemp()
	if err != nil {
		return nil, err
	}
	pid, err := listen(ctx, cfg, args, errf)
	if err != nil {
		errf.Close()
		return nil, err
	}
	st, err := errf.Stat()
	if err != nil {
		errf.Close()
		Kill(pid)
		return nil, err
	}
	h := &Handle{cfg: cfg, pid: pid, errf: errf, errOff: st.Size()}
	if _, err := h.call(ctx, nil, "run"); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// listen starts guestfish --listen, which forks a listening process that
// keeps the standard output and error it was given: both are out, a file
// (never a pipe, whose reader would wait for the listener's end), where the
// first process prints the listener's pid.
func listen(ctx context.Context, cfg Config, args []string, out *os.File) (int, error) {
	cmd := exec.CommandContext(ctx, cfg.binary(), args...)
	cmd.Env = cfg.env()
	cmd.Stdout, cmd.Stderr = out, out
	runErr := cmd.Run()
	st, err := out.Stat()
	if err != nil {
		return 0, err
	}
	printed := make([]byte, st.Size())
	if _, err := out.ReadAt(printed, 0); err != nil {
		return 0, err
	}
	if runErr != nil {
		return 0, fmt.Errorf("guestfish --listen: %w: %s", runErr, strings.TrimSpace(string(printed)))
	}
	m := pidLine.FindSubmatch(printed)
	if m == nil {
		return 0, fmt.Errorf("guestfish --listen: no pid in %q", printed)
	}
	pid, _ := strconv.Atoi(string(m[1]))
	return pid, nil
}

// printed returns what the listener printed since the last call.
func (h *Handle) printed() string {
	var b bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := h.errf.ReadAt(buf, h.errOff)
		b.Write(buf[:n])
		h.errOff += int64(n)
		if err != nil || n == 0 {
			return b.String()
		}
	}
}

// appendOnlyTemp returns an unnamed file opened for reading and appending:
// a process given it writes at its end whatever offset the reader is at.
func appendOnlyTemp() (*os.File, error) {
	f, err := os.CreateTemp("", "knib-guestfish-*.out")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return os.OpenFile(f.Name(), os.O_RDWR|os.O_APPEND, 0)
}

// PID is the guestfish process (its appliance dies with it).
func (h *Handle) PID() int { return h.pid }

// Close ends the appliance. It is idempotent.
func (h *Handle) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cfg.binary(), "--remote="+strconv.Itoa(h.pid), "--", "exit")
	cmd.Env = h.cfg.env()
	_ = cmd.Run() // a gone process is what we want
	err := Kill(h.pid)
	h.errf.Close()
	return err
}

// Kill ends the guestfish process pid if it is still a guestfish process
// (its appliance's QEMU follows it: libguestfs runs a recovery process that
// kills QEMU when guestfish dies). Used to reap helpers of a dead agent.
func Kill(pid int) error {
	for i := 0; i < 50; i++ {
		if !IsGuestfish(pid) {
			return nil
		}
		sig := syscall.SIGTERM
		if i >= 20 {
			sig = syscall.SIGKILL
		}
		if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill guestfish %d: %w", pid, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("guestfish %d does not end", pid)
}

// IsGuestfish reports whether pid is a live guestfish process.
func IsGuestfish(pid int) bool {
	if pid <= 0 {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ...": a zombie is gone already.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) || s[i+2] == 'Z' {
		return false
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "guestfish"
}

func (c Config) binary() string {
	if c.Binary == "" {
		return "guestfish"
	}
	return c.Binary
}

func (c Config) env() []string {
	return append(append(os.Environ(), "LC_ALL=C"), c.Env...)
}

// call runs one command. With stdout nil the output is returned; otherwise
// it is streamed there.
func (h *Handle) call(ctx context.Context, stdout io.Writer, args ...string) ([]byte, error) {
	if !IsGuestfish(h.pid) {
		return nil, ErrClosed
	}
	// "-command": an error does not end the listening guestfish.
	full := append([]string{"--remote=" + strconv.Itoa(h.pid), "--", "-" + args[0]}, args[1:]...)
	cmd := exec.CommandContext(ctx, h.cfg.binary(), full...)
	cmd.Env = h.cfg.env()
	cmd.WaitDelay = 5 * time.Second
	var out, errb bytes.Buffer
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = &out
	}
	cmd.Stderr = &errb
	runErr := cmd.Run()
	if msg := errorMessage(errb.String() + h.printed()); msg != "" {
		return nil, &Error{Command: args[0], Message: msg}
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !IsGuestfish(h.pid) {
			return nil, ErrClosed
		}
		return nil, &Error{Command: args[0], Message: strings.TrimSpace(runErr.Error() + ": " + errb.String())}
	}
	return out.Bytes(), nil
}

// errorMessage returns libguestfs' error lines of stderr, if any.
func errorMessage(stderr string) string {
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "libguestfs: error: "); ok {
			msgs = append(msgs, strings.TrimSpace(rest))
		} else if rest, ok := strings.CutPrefix(line, "guestfish: "); ok {
			msgs = append(msgs, strings.TrimSpace(rest))
		}
	}
	return strings.Join(msgs, "; ")
}
