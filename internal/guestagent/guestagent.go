package guestagent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Transport delivers guest agent commands.
//
// AgentCommand sends command, one JSON object as described in the package
// documentation, to the guest agent of the domain with UUID domainUUID,
// waits for the reply and returns it unchanged (one JSON object; empty for
// the few commands the agent does not answer, such as guest-shutdown).
//
// Contract:
//   - It must not alter command; it sends it at most once. It is not
//     idempotent in general: retrying a command that may have reached the
//     agent is the caller's decision.
//   - It honours ctx: a deadline bounds the wait for the reply, and the
//     error then wraps context.DeadlineExceeded or ErrAgentTimeout.
//   - An agent that is not connected or not running yields an error
//     wrapping ErrAgentUnavailable. An unknown domain yields the
//     transport's own not-found error (for the hypervisor port:
//     hypervisor.ErrDomainNotFound).
//   - An error reply from the agent is returned either as the raw reply
//     (nil error) or as an error wrapping *AgentError; Client handles both.
//   - It is safe for concurrent use.
type Transport interface {
	AgentCommand(ctx context.Context, domainUUID string, command []byte) ([]byte, error)
}

// ErrAgentUnavailable is wrapped by transport errors meaning the guest
// agent cannot be reached at all (not configured, not connected, not
// running). Retrying later may succeed.
var ErrAgentUnavailable = errors.New("guest agent unavailable")

// ErrAgentTimeout is wrapped by transport errors meaning the agent did not
// answer in time. The command may still run in the guest.
var ErrAgentTimeout = errors.New("guest agent timed out")

// ErrProtocol is wrapped by errors about replies that do not follow the
// protocol: malformed JSON, a missing "return", a wrong sync id.
var ErrProtocol = errors.New("guest agent protocol error")

// AgentError is an error reply from the guest agent.
type AgentError struct {
	// Command is the "execute" name of the failed command.
	Command string
	// Class is the QMP error class, such as "GenericError" or
	// "CommandNotFound"; empty when the transport did not pass it on.
	Class string
	// Desc is the agent's human-readable description.
	Desc string
}

func (e *AgentError) Error() string {
	if e.Class == "" {
		return "agent replied: " + e.Desc
	}
	return fmt.Sprintf("agent replied %s: %s", e.Class, e.Desc)
}

// Client sends typed guest agent commands over a Transport. It is safe for
// concurrent use.
type Client struct {
	t Transport
	// pollMin and pollMax bound the guest-exec-status polling interval.
	pollMin, pollMax time.Duration
}

// New returns a Client using t.
func New(t Transport) *Client {
	return &Client{t: t, pollMin: 50 * time.Millisecond, pollMax: time.Second}
}

type command struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

type reply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

// encode marshals v without HTML escaping, so "<", ">" and "&" stay as they
// are (encoding/json would otherwise write \u003c; both decode the same).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// Call sends the command execute with args (nil for none; otherwise a value
// that encoding/json encodes as an object) to the agent of domainUUID and
// decodes the reply's "return" value into result (nil to ignore it).
// Errors wrap *AgentError for an error reply, ErrProtocol for a malformed
// reply, or the transport's error; their text names the command and the
// domain.
func (c *Client) Call(ctx context.Context, domainUUID, execute string, args, result any) error {
	op := "guest agent command " + execute + " on domain " + domainUUID
	msg, err := encode(command{Execute: execute, Arguments: args})
	if err != nil {
		return fmt.Errorf("%s: encode: %w", op, err)
	}
	raw, err := c.t.AgentCommand(ctx, domainUUID, msg)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		if result == nil {
			return nil
		}
		return fmt.Errorf("%s: empty reply: %w", op, ErrProtocol)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("%s: decode reply: %w: %w", op, ErrProtocol, err)
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %w", op, &AgentError{Command: execute, Class: r.Error.Class, Desc: r.Error.Desc})
	}
	if r.Return == nil {
		return fmt.Errorf("%s: reply has neither return nor error: %w", op, ErrProtocol)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.Return, result); err != nil {
		return fmt.Errorf("%s: decode return value: %w: %w", op, ErrProtocol, err)
	}
	return nil
}

// Ping checks that the agent answers (guest-ping).
func (c *Client) Ping(ctx context.Context, domainUUID string) error {
	return c.Call(ctx, domainUUID, "guest-ping", nil, nil)
}

// Sync performs the guest-sync handshake with a random id and checks that
// the agent echoes it; a different id wraps ErrProtocol.
func (c *Client) Sync(ctx context.Context, domainUUID string) error {
	id := rand.Int64N(1<<52) + 1 // exact in a float64, for any JSON reader
	var got int64
	if err := c.Call(ctx, domainUUID, "guest-sync", map[string]int64{"id": id}, &got); err != nil {
		return err
	}
	if got != id {
		return fmt.Errorf("guest-sync: agent echoed id %d, sent %d: %w", got, id, ErrProtocol)
	}
	return nil
}

// ExecRequest is a program to run in the guest.
type ExecRequest struct {
	// Path is the program, absolute or looked up in the agent's PATH.
	Path string
	// Args are the arguments after the program name (argv[1:]).
	Args []string
	// Env, when set, is the complete environment ("NAME=value").
	Env []string
	// Input, when set, is fed to the program's standard input.
	Input []byte
}

// ExecResult is the outcome of a program run in the guest.
type ExecResult struct {
	// PID is the guest process id the agent reported.
	PID int
	// ExitCode is the exit status; meaningful when Signal is 0.
	ExitCode int
	// Signal is the signal that terminated the program, or 0.
	Signal int
	// Stdout and Stderr are the captured outputs.
	Stdout, Stderr []byte
	// Truncated is set when the agent cut either output short.
	Truncated bool
}

type execArgs struct {
	Path          string   `json:"path"`
	Arg           []string `json:"arg,omitempty"`
	Env           []string `json:"env,omitempty"`
	InputData     string   `json:"input-data,omitempty"`
	CaptureOutput bool     `json:"capture-output"`
}

type execStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode"`
	Signal       *int   `json:"signal"`
	OutData      string `json:"out-data"`
	ErrData      string `json:"err-data"`
	OutTruncated bool   `json:"out-truncated"`
	ErrTruncated bool   `json:"err-truncated"`
}

// Exec runs a program in the guest with its output captured and waits for
// it to exit, polling guest-exec-status at intervals doubling from 50 ms to
// 1 s. A non-zero exit status is not an error: it is in the result. When
// ctx ends first, Exec returns an error wrapping ctx.Err() together with
// the PID so far; the program keeps running in the guest. Exec is not
// idempotent: every call starts a new process.
func (c *Client) Exec(ctx context.Context, domainUUID string, req ExecRequest) (ExecResult, error) {
	if req.Path == "" {
		return ExecResult{}, errors.New("guest exec: path required")
	}
	args := execArgs{Path: req.Path, Arg: req.Args, Env: req.Env, CaptureOutput: true}
	if len(req.Input) > 0 {
		args.InputData = base64.StdEncoding.EncodeToString(req.Input)
	}
	var started struct {
		PID *int `json:"pid"`
	}
	if err := c.Call(ctx, domainUUID, "guest-exec", args, &started); err != nil {
		return ExecResult{}, err
	}
	if started.PID == nil {
		return ExecResult{}, fmt.Errorf("guest-exec: reply has no pid: %w", ErrProtocol)
	}
	res := ExecResult{PID: *started.PID}

	interval := c.pollMin
	for {
		var st execStatus
		if err := c.Call(ctx, domainUUID, "guest-exec-status", map[string]int{"pid": res.PID}, &st); err != nil {
			return res, fmt.Errorf("pid %d: %w", res.PID, err)
		}
		if st.Exited {
			return decodeStatus(res, st)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return res, fmt.Errorf("guest exec %s (pid %d): %w", req.Path, res.PID, ctx.Err())
		case <-t.C:
		}
		interval = min(interval*2, c.pollMax)
	}
}

func decodeStatus(res ExecResult, st execStatus) (ExecResult, error) {
	var err error
	if st.ExitCode != nil {
		res.ExitCode = *st.ExitCode
	}
	if st.Signal != nil {
		res.Signal = *st.Signal
	}
	if res.Stdout, err = base64.StdEncoding.DecodeString(st.OutData); err != nil {
		return res, fmt.Errorf("guest exec (pid %d): decode out-data: %w: %w", res.PID, ErrProtocol, err)
	}
	if res.Stderr, err = base64.StdEncoding.DecodeString(st.ErrData); err != nil {
		return res, fmt.Errorf("guest exec (pid %d): decode err-data: %w: %w", res.PID, ErrProtocol, err)
	}
	res.Truncated = st.OutTruncated || st.ErrTruncated
	return res, nil
}
