package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/bench/internal/monitortrace"
	"github.com/knib/knib/internal/clock"
)

// knibServer is the all-in-one `knib server` the benchmark drives.
type knibServer struct {
	*knibproc.Server
	// trace is the file libvirtd logs its QEMU monitor traffic to during a
	// timed backup (monitortrace).
	trace string
}

// startServer starts it on dataDir and waits until it is ready.
func startServer(ctx context.Context, bin, dataDir string) (*knibServer, error) {
	s, err := knibproc.Start(ctx, bin, dataDir, filepath.Join(dataDir, "server.log"))
	if err != nil {
		return nil, err
	}
	return &knibServer{Server: s, trace: filepath.Join(dataDir, "monitor-trace.log")}, nil
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
	// Held is how long QEMU held the guest's I/O: the span of the
	// snapshot's QMP transaction, from libvirtd's monitor trace.
	Held float64
	// Phases is the operation result's phases_seconds (snapshot, copy,
	// fsync; merge when the backup still merged inline).
	Phases map[string]float64
	// MergeAfter is from the CLI's exit until the VM is free again: the
	// merge of the previous delta that follows the backup. Untimed by the
	// brief's figure, waited for so that it does not run into the next
	// measurement.
	MergeAfter float64
}

// timedBackup times `knib backup create VM -o json` (the CLI waits for the
// operation), checks the backup's type, then reads the operation's
// freeze_seconds and the snapshot transaction's span from a monitor trace
// taken meanwhile.
func (s *knibServer) timedBackup(ctx context.Context, vm, wantType string) (backupRun, error) {
	var r backupRun
	trace, err := monitortrace.Start(ctx, s.trace)
	if err != nil {
		return r, err
	}
	start := clock.Real{}.Now()
	out, err := s.CLI(ctx, "backup", "create", vm, "-o", "json")
	r.Seconds = clock.Since(clock.Real{}, start).Seconds()
	cmds, terr := trace.Stop(ctx)
	if err != nil {
		return r, err
	}
	if terr != nil {
		return r, terr
	}
	if r.Held, err = transactionSpan(cmds); err != nil {
		return r, fmt.Errorf("knib backup create %s: %w", vm, err)
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
	ended := clock.Real{}.Now()
	if err := s.waitIdle(ctx, vm); err != nil {
		return r, err
	}
	r.MergeAfter = clock.Since(clock.Real{}, ended).Seconds()
	op, freeze, phases, err := s.operationOf(ctx, r.Backup.ID)
	if err != nil {
		return r, err
	}
	r.Freeze, r.Phases, r.OpSeconds = freeze, phases, op.Updated.Sub(op.Created).Seconds()
	r.PreSeconds = op.Created.Sub(start).Seconds()
	r.PostSeconds = r.Seconds - r.PreSeconds - r.OpSeconds
	return r, nil
}

// transactionSpan is how long the guest's I/O was held during a backup,
// from its monitor commands: the span of the QMP transaction (the disk-only
// snapshot), or, if libvirt paused the vCPUs around it, from the "stop" to
// the reply to the "cont". Other VMs' commands in the same window (a
// machine that is not quiet) make it the longest one: an upper bound.
func transactionSpan(cmds []monitortrace.Command) (float64, error) {
	span, found := 0.0, false
	var stopped time.Time
	for _, c := range cmds {
		switch c.Execute {
		case "transaction":
			span, found = max(span, c.Span.Seconds()), true
		case "stop":
			stopped = c.Sent
		case "cont":
			if !stopped.IsZero() {
				span = max(span, c.Sent.Add(c.Span).Sub(stopped).Seconds())
				stopped = time.Time{}
			}
		}
	}
	if !found {
		return 0, errors.New("the monitor trace holds no QMP transaction (the snapshot)")
	}
	return span, nil
}

// operationOf finds the finished backup operation whose result names
// backupID and returns it with its result's freeze_seconds.
func (s *knibServer) operationOf(ctx context.Context, backupID string) (operation, float64, map[string]float64, error) {
	var ops []operation
	if err := s.CLIJSON(ctx, &ops, "operation", "list", "--all"); err != nil {
		return operation{}, 0, nil, err
	}
	for _, op := range ops {
		if op.State != "Succeeded" || len(op.Result) == 0 {
			continue
		}
		var res struct {
			ID     string             `json:"id"`
			Freeze *float64           `json:"freeze_seconds"`
			Phases map[string]float64 `json:"phases_seconds"`
		}
		if json.Unmarshal(op.Result, &res) != nil || res.ID != backupID {
			continue
		}
		if res.Freeze == nil {
			return op, 0, nil, fmt.Errorf("operation %s (backup %s) has no freeze_seconds in its result: %s", op.ID, backupID, op.Result)
		}
		return op, *res.Freeze, res.Phases, nil
	}
	return operation{}, 0, nil, errors.New("no succeeded operation names backup " + backupID)
}

// waitIdle waits until the VM is no longer BackingUp: the merge that
// follows a backup is done (`vm show` itself waits for it on the server).
func (s *knibServer) waitIdle(ctx context.Context, vm string) error {
	for {
		var v struct {
			State string `json:"state"`
		}
		if err := s.CLIJSON(ctx, &v, "vm", "show", vm); err != nil {
			return err
		}
		if v.State != "BackingUp" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
