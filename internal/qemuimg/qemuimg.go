package qemuimg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/knib/knib/internal/clock"
)

// Tool runs one qemu-img binary. The zero value runs "qemu-img" from PATH
// and logs to slog.Default(). A Tool is safe for concurrent use; it holds no
// state besides its configuration.
type Tool struct {
	// Binary is the program to run: a path, or a name looked up in PATH.
	// Empty means "qemu-img".
	Binary string
	// Logger receives one debug record per run. Nil means slog.Default().
	Logger *slog.Logger
}

// Default is the Tool used by code that has no reason to pick another
// binary. Tests and deployments may replace its Binary.
var Default = &Tool{Binary: "qemu-img"}

// RunError reports a qemu-img run that exited with a non-zero status.
type RunError struct {
	// Args is the complete argument list, the program first (as in
	// exec.Cmd.Args).
	Args []string
	// ExitCode is the process exit status; -1 when it was killed by a signal.
	ExitCode int
	// Stderr is what the program wrote to its standard error, trimmed.
	Stderr string
}

func (e *RunError) Error() string {
	sub := ""
	if len(e.Args) > 1 {
		sub = " " + e.Args[1]
	}
	msg := fmt.Sprintf("qemu-img%s: exit status %d", sub, e.ExitCode)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (t *Tool) binary() string {
	if t == nil || t.Binary == "" {
		return "qemu-img"
	}
	return t.Binary
}

func (t *Tool) logger() *slog.Logger {
	if t == nil || t.Logger == nil {
		return slog.Default()
	}
	return t.Logger
}

// run executes qemu-img with args. When stdout is nil the standard output is
// collected and returned; otherwise it is streamed to stdout and the
// returned slice is nil.
func (t *Tool) run(ctx context.Context, args []string, stdout io.Writer) ([]byte, error) {
	cmd := exec.CommandContext(ctx, t.binary(), args...)
	// Stable, untranslated messages in Stderr.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.WaitDelay = 5 * time.Second
	var outBuf, errBuf bytes.Buffer
	if stdout != nil {
		cmd.Stdout = stdout
	} else {
		cmd.Stdout = &outBuf
	}
	cmd.Stderr = &errBuf

	start := clock.Real{}.Now()
	err := cmd.Run()
	t.logger().Debug("qemu-img", "args", cmd.Args, "duration", clock.Since(clock.Real{}, start), "err", err)
	if err == nil {
		if stdout != nil {
			return nil, nil
		}
		return outBuf.Bytes(), nil
	}
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("qemu-img %s: %w", subcommand(args), ctxErr)
		}
		return nil, fmt.Errorf("run qemu-img %s: %w", subcommand(args), err)
	}
	runErr := &RunError{
		Args:     cmd.Args,
		ExitCode: exitErr.ExitCode(),
		Stderr:   strings.TrimSpace(errBuf.String()),
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return outBuf.Bytes(), fmt.Errorf("%w: %w", ctxErr, runErr)
	}
	return outBuf.Bytes(), runErr
}

func subcommand(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// imagePath makes a file name safe to pass where qemu-img opens an image:
// a relative name with a colon before any slash ("nbd:x", "a:b") would be
// taken as a protocol prefix, so it is given a "./" prefix.
func imagePath(p string) string {
	if p == "" || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "./") {
		return p
	}
	if i := strings.IndexByte(p, ':'); i >= 0 && !strings.Contains(p[:i], "/") {
		return "./" + p
	}
	return p
}

// exitCode reports the exit code carried by err, if it is (or wraps) a
// *RunError.
func exitCode(err error) (int, bool) {
	var re *RunError
	if errors.As(err, &re) {
		return re.ExitCode, true
	}
	return 0, false
}
