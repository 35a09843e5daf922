package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
)

// TaskHandler carries out one kind of long task. It must honour ctx, report
// progress through the callback (percent 0..100 and a short message), and be
// idempotent: run again with the same payload after a crash, it finishes the
// work instead of doing it twice.
type TaskHandler func(ctx context.Context, payload json.RawMessage, progress func(pct float64, msg string)) (result any, err error)

type task struct {
	status agentapi.TaskStatus
	cancel context.CancelFunc
	done   chan struct{}
}

type taskTable struct {
	mu       sync.Mutex
	handlers map[string]TaskHandler
	tasks    map[string]*task
	wg       sync.WaitGroup
}

func newTaskTable() *taskTable {
	return &taskTable{handlers: map[string]TaskHandler{}, tasks: map[string]*task{}}
}

func (tt *taskTable) start(req agentapi.TaskRequest, log *slog.Logger) error {
	if req.ID == "" {
		return fmt.Errorf("task id is empty")
	}
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if _, ok := tt.tasks[req.ID]; ok {
		return nil
	}
	h, ok := tt.handlers[req.Kind]
	if !ok {
		return fmt.Errorf("task kind %q: %w", req.Kind, agentapi.ErrUnknownKind)
	}
	if req.Storage != "" {
		if err := CheckStorageRoot(req.Storage); err != nil {
			return fmt.Errorf("task %s: %w", req.Kind, err)
		}
	}
	deadline := req.Deadline
	if deadline.IsZero() {
		deadline = time.Now().Add(defaultTaskDeadline)
	}
	ctx, cancel := context.WithDeadline(withStorageRoot(context.Background(), req.Storage), deadline)
	t := &task{status: agentapi.TaskStatus{ID: req.ID, Kind: req.Kind, State: agentapi.TaskRunning}, cancel: cancel, done: make(chan struct{})}
	tt.tasks[req.ID] = t
	tt.wg.Add(1)
	go func() {
		defer tt.wg.Done()
		defer close(t.done)
		defer cancel()
		progress := func(pct float64, msg string) {
			tt.mu.Lock()
			t.status.Progress, t.status.Message = pct, msg
			tt.mu.Unlock()
		}
		res, err := h(ctx, req.Payload, progress)
		var raw []byte
		if err == nil && res != nil {
			raw, err = json.Marshal(res)
		}
		tt.mu.Lock()
		defer tt.mu.Unlock()
		if err != nil {
			log.Warn("task failed", "id", req.ID, "kind", req.Kind, "err", err)
			var clean cleanError
			t.status.State, t.status.Error, t.status.Clean = agentapi.TaskFailed, err.Error(), errors.As(err, &clean)
			return
		}
		t.status.State, t.status.Progress, t.status.Result = agentapi.TaskSucceeded, 100, raw
	}()
	return nil
}

func (tt *taskTable) status(id string) (agentapi.TaskStatus, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.tasks[id]
	if !ok {
		return agentapi.TaskStatus{}, fmt.Errorf("task %s: %w", id, agentapi.ErrUnknownTask)
	}
	return t.status, nil
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
