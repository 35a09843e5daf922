package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/hypervisor"
)

// TaskHandler carries out one command. It must honour ctx, report progress
// through the callback (percent 0..100 and a short message), and be
// idempotent: run again with the same request after a crash, it finishes
// the work instead of doing it twice. Handlers are registered with handle,
// which checks the request's and the result's types against the command.
type TaskHandler func(ctx context.Context, t agentapi.Task, progress func(pct float64, msg string)) (result any, err error)

// handle registers h for cmd: the task's request is handed over as the
// command's request type, and h's result must be the command's result type
// (nil is its zero value).
func handle[Req, Res any](a *Local, cmd agentapi.Command[Req, Res], h func(ctx context.Context, req Req, progress func(float64, string)) (any, error)) {
	a.tasks.handlers[cmd.Name] = func(ctx context.Context, t agentapi.Task, progress func(float64, string)) (any, error) {
		req, err := cmd.Request(t)
		if err != nil {
			return nil, cleanError{err}
		}
		// A storage this agent has not worked in yet is tightened first
		// (perms.go); a failure is logged, and `knib agent` reports it.
		if s, ok := any(req).(agentapi.StorageRequest); ok {
			if err := a.secureStorage(s.StorageRoot()); err != nil {
				a.log.Warn("backup storage not tightened", "err", err)
			}
		}
		res, err := h(ctx, req, progress)
		if err != nil {
			return nil, err
		}
		if res == nil {
			var zero Res
			return zero, nil
		}
		typed, ok := res.(Res)
		if !ok {
			return nil, fmt.Errorf("command %s: the handler returned a %T, not a %T", cmd.Name, res, *new(Res))
		}
		return typed, nil
	}
}

type task struct {
	status agentapi.TaskStatus
	cancel context.CancelFunc
	done   chan struct{}
	// changed is closed (and replaced) on every change of the message.
	changed chan struct{}
}

// recentlyCollected is how many finished tasks stay known after their
// result was collected, so that a caller whose answer was lost can ask
// again; older collected tasks are forgotten and memory stays flat.
const recentlyCollected = 64

type taskTable struct {
	mu        sync.Mutex
	handlers  map[string]TaskHandler
	tasks     map[string]*task
	collected []string // ids of finished tasks whose result was collected, oldest first
	wg        sync.WaitGroup
}

func newTaskTable() *taskTable {
	return &taskTable{handlers: map[string]TaskHandler{}, tasks: map[string]*task{}}
}

func (tt *taskTable) start(t agentapi.Task, log *slog.Logger) error {
	if t.ID == "" {
		return fmt.Errorf("task id is empty")
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if _, ok := tt.tasks[t.ID]; ok {
		return nil
	}
	h, ok := tt.handlers[t.Command]
	if !ok {
		return fmt.Errorf("command %q: %w", t.Command, agentapi.ErrUnknownKind)
	}
	// A request that works in a backup storage names it: there is no
	// default storage, and a root that is given must be valid.
	if sr, ok := t.Request.(agentapi.StorageRequest); ok {
		if root := sr.StorageRoot(); root != "" {
			if err := CheckStorageRoot(root); err != nil {
				return fmt.Errorf("task %s: %w", t.Command, err)
			}
		}
	}
	deadline := t.Deadline
	if deadline.IsZero() {
		deadline = clock.Real{}.Now().Add(defaultTaskDeadline)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	tk := &task{status: agentapi.TaskStatus{ID: t.ID, Kind: t.Command, State: agentapi.TaskRunning}, cancel: cancel, done: make(chan struct{}),
		changed: make(chan struct{})}
	tt.tasks[t.ID] = tk
	tt.wg.Add(1)
	go func() {
		defer tt.wg.Done()
		defer close(tk.done)
		defer cancel()
		progress := func(pct float64, msg string) {
			tt.mu.Lock()
			if msg != tk.status.Message {
				close(tk.changed)
				tk.changed = make(chan struct{})
			}
			tk.status.Progress, tk.status.Message = pct, msg
			tt.mu.Unlock()
		}
		res, err := h(ctx, t, progress)
		tt.mu.Lock()
		defer tt.mu.Unlock()
		if err != nil {
			log.Warn("task failed", "id", t.ID, "command", t.Command, "err", err)
			var clean cleanError
			tk.status.State, tk.status.Error, tk.status.Clean = agentapi.TaskFailed, err.Error(), errors.As(err, &clean)
			tk.status.Damaged = damageOf(err)
			tk.status.LeftPaused = errors.Is(err, hypervisor.ErrLeftPaused)
			return
		}
		tk.status.State, tk.status.Progress, tk.status.Result = agentapi.TaskSucceeded, 100, res
	}()
	return nil
}

// status reports a task. A finished task's status is its result: once it
// has been handed out, the task joins the recently collected ones, and the
// oldest of those beyond recentlyCollected is forgotten.
func (tt *taskTable) status(id string) (agentapi.TaskStatus, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.tasks[id]
	if !ok {
		return agentapi.TaskStatus{}, fmt.Errorf("task %s: %w", id, agentapi.ErrUnknownTask)
	}
	st := t.status
	if st.State != agentapi.TaskRunning && !tt.isCollected(id) {
		tt.collected = append(tt.collected, id)
		for len(tt.collected) > recentlyCollected {
			delete(tt.tasks, tt.collected[0])
			tt.collected = tt.collected[1:]
		}
	}
	return st, nil
}

func (tt *taskTable) isCollected(id string) bool {
	for _, c := range tt.collected {
		if c == id {
			return true
		}
	}
	return false
}

// size is the number of tasks the table holds.
func (tt *taskTable) size() int {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return len(tt.tasks)
}

func (tt *taskTable) cancel(id string) error {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.tasks[id]
	if !ok {
		return fmt.Errorf("task %s: %w", id, agentapi.ErrUnknownTask)
	}
	t.cancel()
	return nil
}

func (tt *taskTable) closeAll() {
	tt.mu.Lock()
	for _, t := range tt.tasks {
		t.cancel()
	}
	tt.mu.Unlock()
	tt.wg.Wait()
}

// waitChange returns the task's status as soon as its state or message
// differs from last, or when ctx ends (then the status as it is).
func (tt *taskTable) waitChange(ctx context.Context, id string, last agentapi.TaskStatus) (agentapi.TaskStatus, error) {
	for {
		tt.mu.Lock()
		t, ok := tt.tasks[id]
		if !ok {
			tt.mu.Unlock()
			return agentapi.TaskStatus{}, fmt.Errorf("task %s: %w", id, agentapi.ErrUnknownTask)
		}
		st, changed := t.status, t.changed
		tt.mu.Unlock()
		if st.State != agentapi.TaskRunning || st.State != last.State || st.Message != last.Message {
			return tt.status(id)
		}
		select {
		case <-changed:
		case <-t.done:
		case <-ctx.Done():
			return tt.status(id)
		}
	}
}

// wait blocks until a known task has finished.
func (tt *taskTable) wait(id string) {
	tt.mu.Lock()
	t, ok := tt.tasks[id]
	tt.mu.Unlock()
	if ok {
		<-t.done
	}
}
