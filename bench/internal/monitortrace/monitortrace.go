package monitortrace

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Command is one QMP command and how long QEMU took to answer it.
type Command struct {
	Execute string
	ID      string
	Sent    time.Time
	Span    time.Duration // from the write to the reply
}

// Trace is a running trace; Stop ends it.
type Trace struct {
	file    string
	filters string
	outputs string
}

// Start makes libvirtd log its QEMU monitor traffic to file (created
// fresh) in addition to its current outputs.
func Start(ctx context.Context, file string) (*Trace, error) {
	filters, err := admin(ctx, "daemon-log-filters")
	if err != nil {
		return nil, err
	}
	outputs, err := admin(ctx, "daemon-log-outputs")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	t := &Trace{file: file, filters: setting(filters), outputs: setting(outputs)}
	if _, err := admin(ctx, "daemon-log-filters", "1:qemu.qemu_monitor"); err != nil {
		return nil, err
	}
	if _, err := admin(ctx, "daemon-log-outputs", strings.TrimSpace("1:file:"+file+" "+t.outputs)); err != nil {
		return nil, errors.Join(err, t.reset(ctx))
	}
	return t, nil
}

// Stop puts libvirtd's logging back as it was and returns the commands of
// the trace in the order they were written, those with a reply only.
func (t *Trace) Stop(ctx context.Context) ([]Command, error) {
	if err := t.reset(ctx); err != nil {
		return nil, err
	}
	f, err := os.Open(t.file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmds, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("monitor trace %s: %w", t.file, err)
	}
	return cmds, os.Remove(t.file)
}

func (t *Trace) reset(ctx context.Context) error {
	// The daemon's logging is put back even when ctx ended (an interrupt).
	ctx = context.WithoutCancel(ctx)
	// virt-admin refuses an empty argument's absence: "" resets filters.
	_, ferr := admin(ctx, "daemon-log-filters", t.filters)
	_, oerr := admin(ctx, "daemon-log-outputs", t.outputs)
	return errors.Join(ferr, oerr)
}

// setting is the value of virt-admin's " Logging filters: X" answer.
func setting(out string) string {
	_, v, _ := strings.Cut(out, ":")
	return strings.TrimSpace(v)
}

func admin(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "virt-admin", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("virt-admin %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// logTime is the layout of the timestamp that starts each line of
// libvirtd's log.
const logTime = "2006-01-02 15:04:05.000-0700"

// Parse reads libvirtd's debug log and returns the QMP commands that got a
// reply, in the order they were written.
func Parse(r io.Reader) ([]Command, error) {
	var cmds []Command
	sent := map[string]int{} // id → index in cmds
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		stamp, rest, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		at, err := time.Parse(logTime, stamp)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(rest, "QEMU_MONITOR_IO_WRITE:"):
			var msg struct {
				Execute string `json:"execute"`
				ID      string `json:"id"`
			}
			if !payload(rest, " buf=", &msg) || msg.ID == "" {
				continue
			}
			sent[msg.ID] = len(cmds)
			cmds = append(cmds, Command{Execute: msg.Execute, ID: msg.ID, Sent: at, Span: -1})
		case strings.Contains(rest, "QEMU_MONITOR_RECV_REPLY:"):
			var msg struct {
				ID string `json:"id"`
			}
			if !payload(rest, " reply=", &msg) {
				continue
			}
			if i, ok := sent[msg.ID]; ok && cmds[i].Span < 0 {
				cmds[i].Span = at.Sub(cmds[i].Sent)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := cmds[:0]
	for _, c := range cmds {
		if c.Span >= 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// payload decodes the JSON object that follows marker in a log line (the
// log may add " len=..." after it, which the decoder does not read).
func payload(rest, marker string, v any) bool {
	_, raw, ok := strings.Cut(rest, marker)
	if !ok {
		return false
	}
	return json.NewDecoder(strings.NewReader(raw)).Decode(v) == nil
}
