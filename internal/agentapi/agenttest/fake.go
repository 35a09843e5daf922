// Package agenttest provides Fake, an in-memory agentapi.Agent for unit tests
// of the server side. It is never proof that a capability works with a real
// hypervisor: integration tests use the real agent.
package agenttest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
)

// Fake answers commands from its fields.
type Fake struct {
	agentapi.NoFiles
	// ListFilesFunc, if set, answers ListFiles (otherwise NoFiles does).
	ListFilesFunc func(req agentapi.ListFilesRequest) (agentapi.ListFilesResult, error)
	mu            sync.Mutex
	Report        agentapi.HostReport
	Domains       []agentapi.Domain
	// Exec, if set, answers GuestExec; by default it echoes the arguments.
	Exec func(req agentapi.GuestExecRequest) (agentapi.GuestExecResult, error)
	// Task, if set, accepts every task and gives its status at each poll;
	// without it no task kind is known.
	Task  func(req agentapi.Task) agentapi.TaskStatus
	tasks map[string]agentapi.Task
	// Started records the kinds of the tasks started, in order.
	Started []string
	// changes: SetDomains is a change (WaitInventoryChange).
	changes uint64
	wake    chan struct{}
}

// ListFiles implements agentapi.Files through ListFilesFunc.
func (f *Fake) ListFiles(ctx context.Context, req agentapi.ListFilesRequest) (agentapi.ListFilesResult, error) {
	if f.ListFilesFunc != nil {
		return f.ListFilesFunc(req)
	}
	return f.NoFiles.ListFiles(ctx, req)
}

// FakeEpoch is the Epoch of every Fake's change marks.
const FakeEpoch = "fake"

var _ agentapi.Agent = (*Fake)(nil)

// SetDomains replaces the inventory; it is a change for
// WaitInventoryChange.
func (f *Fake) SetDomains(d []agentapi.Domain) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Domains = d
	f.changes++
	if f.wake != nil {
		close(f.wake)
		f.wake = nil
	}
}

// WaitInventoryChange implements agentapi.Agent: each SetDomains is one
// change. It waits at most agentapi.MaxChangeWait.
func (f *Fake) WaitInventoryChange(ctx context.Context, since agentapi.ChangeMark) (agentapi.ChangeMark, error) {
	f.mu.Lock()
	mark := agentapi.ChangeMark{Epoch: FakeEpoch, Seq: f.changes}
	if mark != since {
		f.mu.Unlock()
		return mark, nil
	}
	if f.wake == nil {
		f.wake = make(chan struct{})
	}
	wake := f.wake
	f.mu.Unlock()
	timer := time.NewTimer(agentapi.MaxChangeWait)
	defer timer.Stop()
	select {
	case <-wake:
	case <-timer.C:
	case <-ctx.Done():
		return since, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return agentapi.ChangeMark{Epoch: FakeEpoch, Seq: f.changes}, nil
}

// HostReport returns Report.
func (f *Fake) HostReport(ctx context.Context) (agentapi.HostReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Report, nil
}

// Inventory returns Domains.
func (f *Fake) Inventory(ctx context.Context) ([]agentapi.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]agentapi.Domain(nil), f.Domains...), nil
}

// Domain finds one of Domains.
func (f *Fake) Domain(ctx context.Context, uuid string) (agentapi.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.Domains {
		if d.UUID == uuid {
			return d, nil
		}
	}
	return agentapi.Domain{}, fmt.Errorf("domain %s: %w", uuid, agentapi.ErrUnknownDomain)
}

// GuestExec calls Exec or echoes the arguments like /bin/echo.
func (f *Fake) GuestExec(ctx context.Context, req agentapi.GuestExecRequest) (agentapi.GuestExecResult, error) {
	f.mu.Lock()
	known := false
	for _, d := range f.Domains {
		known = known || d.UUID == req.DomainUUID
	}
	f.mu.Unlock()
	if !known {
		return agentapi.GuestExecResult{}, fmt.Errorf("domain %s: %w", req.DomainUUID, agentapi.ErrUnknownDomain)
	}
	if f.Exec != nil {
		return f.Exec(req)
	}
	return agentapi.GuestExecResult{Stdout: []byte(strings.Join(req.Args, " ") + "\n")}, nil
}

// StartTask records the task when Task is set; else the kind is unknown.
func (f *Fake) StartTask(ctx context.Context, req agentapi.Task) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Task == nil {
		return fmt.Errorf("task kind %q: %w", req.Command, agentapi.ErrUnknownKind)
	}
	if f.tasks == nil {
		f.tasks = map[string]agentapi.Task{}
	}
	f.tasks[req.ID] = req
	f.Started = append(f.Started, req.Command)
	return nil
}

// TaskStatus asks Task for the status of a started task.
func (f *Fake) TaskStatus(ctx context.Context, id string) (agentapi.TaskStatus, error) {
	f.mu.Lock()
	req, ok := f.tasks[id]
	f.mu.Unlock()
	if !ok {
		return agentapi.TaskStatus{}, fmt.Errorf("task %s: %w", id, agentapi.ErrUnknownTask)
	}
	st := f.Task(req)
	st.ID, st.Kind = id, req.Command
	return st, nil
}

// CancelTask knows no tasks.
func (f *Fake) CancelTask(ctx context.Context, id string) error {
	return fmt.Errorf("task %s: %w", id, agentapi.ErrUnknownTask)
}
