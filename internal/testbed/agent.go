package testbed

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/digitalocean/go-libvirt"
)

// ExecResult is the outcome of a command run in the guest by ExecFull.
type ExecResult struct {
	Stdout, Stderr string
	// ExitCode is the command's exit status; for a command killed by a
	// signal it is 128+Signal, as in a shell.
	ExitCode int
	// Signal that killed the command, or 0.
	Signal int
	// Truncated is set when the guest agent cut the captured output.
	Truncated bool
}

type agentRequest struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

type agentReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// agentTimeout turns ctx's deadline into libvirt's per-command timeout in
// seconds (1..60; 30 without deadline).
func agentTimeout(ctx context.Context) int32 {
	dl, ok := ctx.Deadline()
	if !ok {
		return 30
	}
	s := int32(time.Until(dl)/time.Second) + 1
	return max(1, min(s, 60))
}

// Agent sends one guest-agent command (execute, with arguments marshalled
// by encoding/json; nil for none) and unmarshals its "return" value into
// ret (unless ret is nil).
func (d *Domain) Agent(ctx context.Context, execute string, arguments, ret any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(agentRequest{Execute: execute, Arguments: arguments})
	if err != nil {
		return err
	}
	res, err := d.L.QEMUDomainAgentCommand(d.Dom, string(b), agentTimeout(ctx), 0)
	// libvirt refuses agent commands while the domain is paused; knib
	// pauses a VM for milliseconds (the flush after a block job, e.g. the
	// merge that follows a backup), so the command is sent again once the
	// domain runs. A refused command never reached the guest.
	for err != nil && strings.Contains(err.Error(), "domain is not running") && d.alive() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("guest agent %s: the domain stayed paused: %w (%v)", execute, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
		res, err = d.L.QEMUDomainAgentCommand(d.Dom, string(b), agentTimeout(ctx), 0)
	}
	if err != nil {
		return fmt.Errorf("guest agent %s: %w", execute, err)
	}
	if len(res) == 0 {
		return fmt.Errorf("guest agent %s: empty reply", execute)
	}
	var r agentReply
	if err := json.Unmarshal([]byte(res[0]), &r); err != nil {
		return fmt.Errorf("guest agent %s: bad reply %q: %w", execute, res[0], err)
	}
	if r.Error != nil {
		return fmt.Errorf("guest agent %s: %s: %s", execute, r.Error.Class, r.Error.Desc)
	}
	if ret == nil {
		return nil
	}
	if err := json.Unmarshal(r.Return, ret); err != nil {
		return fmt.Errorf("guest agent %s: bad return %q: %w", execute, r.Return, err)
	}
	return nil
}

// alive reports whether the domain is running or paused now: a command
// refused as "domain is not running" by a domain that is alive was refused
// during a pause.
func (d *Domain) alive() bool {
	state, err := d.State()
	return err == nil && (state == libvirt.DomainPaused || state == libvirt.DomainRunning)
}

// WaitAgent waits until the guest agent answers guest-ping, bounded by ctx.
// It fails at once when the domain is not running.
func (d *Domain) WaitAgent(ctx context.Context) error {
	var last error
	for {
		state, err := d.State()
		if err != nil {
			return err
		}
		if state != libvirt.DomainRunning {
			return fmt.Errorf("domain %s is not running (state %d)", d.Name, state)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = d.Agent(pctx, "guest-ping", nil, nil)
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("guest agent of %s did not answer: %w (last error: %v)", d.Name, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Exec runs path with args in the guest through the guest agent and returns
// its standard output and exit code. A non-zero exit code is not an error;
// err reports failures to run the command or to talk to the agent. See
// ExecFull for standard error.
func (d *Domain) Exec(ctx context.Context, path string, args ...string) (stdout string, exitCode int, err error) {
	r, err := d.ExecFull(ctx, path, args...)
	return r.Stdout, r.ExitCode, err
}

// ExecFull is Exec returning standard error as well. path is looked up in
// the guest's PATH (/bin:/sbin:/usr/bin:/usr/sbin) when it has no slash.
func (d *Domain) ExecFull(ctx context.Context, path string, args ...string) (ExecResult, error) {
	type execArgs struct {
		Path          string   `json:"path"`
		Arg           []string `json:"arg,omitempty"`
		CaptureOutput bool     `json:"capture-output"`
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := d.Agent(ctx, "guest-exec", execArgs{Path: path, Arg: args, CaptureOutput: true}, &started); err != nil {
		return ExecResult{}, err
	}
	type statusArgs struct {
		PID int `json:"pid"`
	}
	var status struct {
		Exited       bool   `json:"exited"`
		ExitCode     *int   `json:"exitcode"`
		Signal       *int   `json:"signal"`
		OutData      string `json:"out-data"`
		ErrData      string `json:"err-data"`
		OutTruncated bool   `json:"out-truncated"`
		ErrTruncated bool   `json:"err-truncated"`
	}
	delay := 20 * time.Millisecond
	for {
		if err := d.Agent(ctx, "guest-exec-status", statusArgs{PID: started.PID}, &status); err != nil {
			return ExecResult{}, err
		}
		if status.Exited {
			break
		}
		select {
		case <-ctx.Done():
			return ExecResult{}, fmt.Errorf("guest-exec %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
	var r ExecResult
	out, err1 := base64.StdEncoding.DecodeString(status.OutData)
	errOut, err2 := base64.StdEncoding.DecodeString(status.ErrData)
	if err := errors.Join(err1, err2); err != nil {
		return r, fmt.Errorf("guest-exec %s: decoding output: %w", path, err)
	}
	r.Stdout, r.Stderr = string(out), string(errOut)
	r.Truncated = status.OutTruncated || status.ErrTruncated
	switch {
	case status.ExitCode != nil:
		r.ExitCode = *status.ExitCode
	case status.Signal != nil:
		r.Signal = *status.Signal
		r.ExitCode = 128 + r.Signal
	}
	return r, nil
}
