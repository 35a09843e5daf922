package guestagent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTransport records every command and answers with handle.
type fakeTransport struct {
	mu     sync.Mutex
	sent   []string
	uuids  []string
	handle func(n int, cmd map[string]any) (string, error)
}

func (f *fakeTransport) AgentCommand(_ context.Context, uuid string, cmd []byte) ([]byte, error) {
	f.mu.Lock()
	n := len(f.sent)
	f.sent = append(f.sent, string(cmd))
	f.uuids = append(f.uuids, uuid)
	f.mu.Unlock()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(cmd))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("fake: command is not JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("fake: trailing data after command")
	}
	reply, err := f.handle(n, m)
	return []byte(reply), err
}

const dom = "6695eb01-f6a4-8304-79aa-97f2502e193f"

func TestPing(t *testing.T) {
	f := &fakeTransport{handle: func(int, map[string]any) (string, error) { return `{"return":{}}`, nil }}
	if err := New(f).Ping(context.Background(), dom); err != nil {
		t.Fatal(err)
	}
	if len(f.sent) != 1 || f.sent[0] != `{"execute":"guest-ping"}` || f.uuids[0] != dom {
		t.Fatalf("sent %q to %q", f.sent, f.uuids)
	}
}

func TestSync(t *testing.T) {
	f := &fakeTransport{handle: func(_ int, m map[string]any) (string, error) {
		id := m["arguments"].(map[string]any)["id"].(json.Number)
		return `{"return":` + id.String() + `}`, nil
	}}
	c := New(f)
	if err := c.Sync(context.Background(), dom); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(context.Background(), dom); err != nil {
		t.Fatal(err)
	}
	var m1, m2 struct {
		Execute   string
		Arguments struct{ ID int64 }
	}
	if err := json.Unmarshal([]byte(f.sent[0]), &m1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(f.sent[1]), &m2); err != nil {
		t.Fatal(err)
	}
	if m1.Execute != "guest-sync" || m1.Arguments.ID <= 0 || m1.Arguments.ID == m2.Arguments.ID {
		t.Fatalf("sent %q", f.sent)
	}
	if want := fmt.Sprintf(`{"execute":"guest-sync","arguments":{"id":%d}}`, m1.Arguments.ID); f.sent[0] != want {
		t.Fatalf("sent %s, want %s", f.sent[0], want)
	}

	// A stale reply with another id is a protocol error.
	f.handle = func(int, map[string]any) (string, error) { return `{"return":12345}`, nil }
	if err := c.Sync(context.Background(), dom); !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v, want ErrProtocol", err)
	}
}

func TestAgentErrorReply(t *testing.T) {
	f := &fakeTransport{handle: func(int, map[string]any) (string, error) {
		return `{"error":{"class":"CommandNotFound","desc":"The command guest-foo has not been found"}}`, nil
	}}
	err := New(f).Call(context.Background(), dom, "guest-foo", nil, nil)
	var ae *AgentError
	if !errors.As(err, &ae) {
		t.Fatalf("got %T %v, want *AgentError", err, err)
	}
	if ae.Command != "guest-foo" || ae.Class != "CommandNotFound" || !strings.Contains(ae.Desc, "not been found") {
		t.Fatalf("got %+v", ae)
	}
	if err.Error() != "guest agent command guest-foo on domain "+dom+": agent replied CommandNotFound: The command guest-foo has not been found" {
		t.Fatalf("Error() = %q", err.Error())
	}
}

func TestTransportErrorWrapped(t *testing.T) {
	f := &fakeTransport{handle: func(int, map[string]any) (string, error) {
		return "", fmt.Errorf("libvirt says no: %w", ErrAgentUnavailable)
	}}
	err := New(f).Ping(context.Background(), dom)
	if !errors.Is(err, ErrAgentUnavailable) {
		t.Fatalf("got %v, want ErrAgentUnavailable", err)
	}
	// A transport may also hand back an *AgentError.
	f.handle = func(int, map[string]any) (string, error) {
		return "", fmt.Errorf("wrapped: %w", &AgentError{Command: "guest-ping", Desc: "x"})
	}
	var ae *AgentError
	if err := New(f).Ping(context.Background(), dom); !errors.As(err, &ae) {
		t.Fatalf("got %v, want *AgentError", err)
	}
}

func TestMalformedReplies(t *testing.T) {
	for _, r := range []string{`not json`, `{}`, `{"return":"str"}`} {
		f := &fakeTransport{handle: func(int, map[string]any) (string, error) { return r, nil }}
		var got struct{ PID int }
		err := New(f).Call(context.Background(), dom, "guest-x", nil, &got)
		if !errors.Is(err, ErrProtocol) {
			t.Errorf("reply %q: got %v, want ErrProtocol", r, err)
		}
	}
	// An empty reply is fine when no result is wanted (guest-shutdown).
	f := &fakeTransport{handle: func(int, map[string]any) (string, error) { return "", nil }}
	if err := New(f).Call(context.Background(), dom, "guest-shutdown", nil, nil); err != nil {
		t.Fatal(err)
	}
}

// execAgent emulates guest-exec: the program "exits" after running polls.
type execAgent struct {
	running int
	status  string
}

func (a *execAgent) handle(_ int, m map[string]any) (string, error) {
	switch m["execute"] {
	case "guest-exec":
		return `{"return":{"pid":42}}`, nil
	case "guest-exec-status":
		if a.running > 0 {
			a.running--
			return `{"return":{"exited":false}}`, nil
		}
		return a.status, nil
	}
	return `{"error":{"class":"CommandNotFound","desc":"no"}}`, nil
}

func fastClient(f *fakeTransport) *Client {
	c := New(f)
	c.pollMin, c.pollMax = time.Millisecond, 4*time.Millisecond
	return c
}

func TestExecExactJSON(t *testing.T) {
	a := &execAgent{running: 2, status: `{"return":{"exited":true,"exitcode":3,"out-data":"` +
		base64.StdEncoding.EncodeToString([]byte("out\n")) + `","err-data":"` +
		base64.StdEncoding.EncodeToString([]byte("err")) + `","err-truncated":true}}`}
	f := &fakeTransport{handle: a.handle}
	res, err := fastClient(f).Exec(context.Background(), dom, ExecRequest{
		Path: "/bin/sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"},
		Env: []string{"A=b"}, Input: []byte("in<&>"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.PID != 42 || res.ExitCode != 3 || res.Signal != 0 || string(res.Stdout) != "out\n" ||
		string(res.Stderr) != "err" || !res.Truncated {
		t.Fatalf("got %+v", res)
	}
	want := []string{
		`{"execute":"guest-exec","arguments":{"path":"/bin/sh","arg":["-c","echo out; echo err >&2; exit 3"],"env":["A=b"],"input-data":"` +
			base64.StdEncoding.EncodeToString([]byte("in<&>")) + `","capture-output":true}}`,
		`{"execute":"guest-exec-status","arguments":{"pid":42}}`,
		`{"execute":"guest-exec-status","arguments":{"pid":42}}`,
		`{"execute":"guest-exec-status","arguments":{"pid":42}}`,
	}
	if strings.Join(f.sent, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sent:\n%s\nwant:\n%s", strings.Join(f.sent, "\n"), strings.Join(want, "\n"))
	}
}

func TestExecMinimalJSONAndSignal(t *testing.T) {
	a := &execAgent{status: `{"return":{"exited":true,"signal":9}}`}
	f := &fakeTransport{handle: a.handle}
	res, err := fastClient(f).Exec(context.Background(), dom, ExecRequest{Path: "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Signal != 9 || res.ExitCode != 0 || len(res.Stdout) != 0 || res.Truncated {
		t.Fatalf("got %+v", res)
	}
	if f.sent[0] != `{"execute":"guest-exec","arguments":{"path":"/bin/true","capture-output":true}}` {
		t.Fatalf("sent %s", f.sent[0])
	}
}

// TestExecNoInjection proves that argument strings full of JSON syntax
// arrive at the agent as exactly those strings.
func TestExecNoInjection(t *testing.T) {
	tricky := []string{
		`a"b`, `x","y":"z`, "line1\nline2", `back\slash`, `{"execute":"guest-shutdown"}`,
		`}]}`, `,`, "", " lead and trail ", "tab\there", "nul\x00byte", "ünïcødé ✓", `\u0022`, "<&>",
	}
	var got execArgs
	f := &fakeTransport{handle: func(n int, m map[string]any) (string, error) {
		if n == 0 {
			return `{"return":{"pid":7}}`, nil
		}
		return `{"return":{"exited":true,"exitcode":0}}`, nil
	}}
	if _, err := fastClient(f).Exec(context.Background(), dom, ExecRequest{Path: `/bin/e"cho`, Args: tricky, Env: []string{`K=v","x`}}); err != nil {
		t.Fatal(err)
	}
	var cmd struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	dec := json.NewDecoder(strings.NewReader(f.sent[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		t.Fatal(err)
	}
	dec = json.NewDecoder(bytes.NewReader(cmd.Arguments))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if cmd.Execute != "guest-exec" || got.Path != `/bin/e"cho` || !got.CaptureOutput ||
		len(got.Env) != 1 || got.Env[0] != `K=v","x` {
		t.Fatalf("got %s %+v", cmd.Execute, got)
	}
	if len(got.Arg) != len(tricky) {
		t.Fatalf("got %d args, want %d: %q", len(got.Arg), len(tricky), got.Arg)
	}
	for i := range tricky {
		if got.Arg[i] != tricky[i] {
			t.Errorf("arg %d: got %q, want %q", i, got.Arg[i], tricky[i])
		}
	}
}

func TestExecContextCancel(t *testing.T) {
	a := &execAgent{running: 1 << 30}
	f := &fakeTransport{handle: a.handle}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	res, err := fastClient(f).Exec(ctx, dom, ExecRequest{Path: "/bin/sleep", Args: []string{"100"}})
	if !errors.Is(err, context.DeadlineExceeded) || res.PID != 42 {
		t.Fatalf("got %+v %v, want deadline exceeded with pid 42", res, err)
	}
}

func TestExecPollBackoff(t *testing.T) {
	var times []time.Time
	a := &execAgent{running: 6, status: `{"return":{"exited":true,"exitcode":0}}`}
	f := &fakeTransport{handle: func(n int, m map[string]any) (string, error) {
		times = append(times, time.Now())
		return a.handle(n, m)
	}}
	c := New(f)
	c.pollMin, c.pollMax = 5*time.Millisecond, 20*time.Millisecond
	if _, err := c.Exec(context.Background(), dom, ExecRequest{Path: "/x"}); err != nil {
		t.Fatal(err)
	}
	// exec, then 7 polls; the gaps before polls 2..7 are 5, 10, 20, 20, 20, 20 ms.
	if len(times) != 8 {
		t.Fatalf("%d calls", len(times))
	}
	wantMin := []time.Duration{5, 10, 20, 20, 20, 20}
	for i, w := range wantMin {
		if gap := times[i+2].Sub(times[i+1]); gap < w*time.Millisecond {
			t.Errorf("gap %d = %v, want >= %v", i, gap, w*time.Millisecond)
		}
	}
}

func TestExecAgentErrors(t *testing.T) {
	f := &fakeTransport{handle: func(int, map[string]any) (string, error) {
		return `{"error":{"class":"GenericError","desc":"Failed to execute child process"}}`, nil
	}}
	_, err := New(f).Exec(context.Background(), dom, ExecRequest{Path: "/nope"})
	var ae *AgentError
	if !errors.As(err, &ae) || ae.Command != "guest-exec" {
		t.Fatalf("got %v", err)
	}
	if _, err := New(f).Exec(context.Background(), dom, ExecRequest{}); err == nil {
		t.Fatal("empty path: want error")
	}
	f.handle = func(int, map[string]any) (string, error) { return `{"return":{}}`, nil }
	if _, err := New(f).Exec(context.Background(), dom, ExecRequest{Path: "/x"}); !errors.Is(err, ErrProtocol) {
		t.Fatalf("missing pid: got %v", err)
	}
}
