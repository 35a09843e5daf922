package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
)

// TaskError is a failed agent task; Clean means nothing changed on disk.
type TaskError struct {
	Msg   string
	Clean bool
}

func (e *TaskError) Error() string { return e.Msg }

// isClean reports whether err says the failed task changed nothing.
func IsClean(err error) bool {
	var te *TaskError
	return errors.As(err, &te) && te.Clean
}

// runTask starts a task on an agent and waits for it, mapping its progress
// into [from, to] of the operation's progress. The deadline bounds the task
// (setting knib.timeout); when it passes, the task is cancelled.
func (s *Kernel) RunTask(ctx context.Context, a agentapi.Agent, kind string, payload any, timeout time.Duration, progress Progress, from, to float64) (json.RawMessage, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	id := kind + "-" + newTaskSuffix()
	if jid, ok := jobTaskID(ctx, a, kind); ok {
		id = jid // several servers: a retried job finds its task (jobtasks.go)
	}
	// Waiting is real time, whatever clock the use cases read.
	deadline := time.Now().Add(timeout)
	if err := a.StartTask(ctx, agentapi.TaskRequest{ID: id, Kind: kind, Payload: raw, Deadline: deadline, Storage: StorageFrom(ctx)}); err != nil {
		return nil, &TaskError{Msg: fmt.Sprintf("start %s: %v", kind, err), Clean: true}
	}
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	delay := 25 * time.Millisecond
	last := ""
	for {
		st, err := a.TaskStatus(tctx, id)
		if err != nil {
			if tctx.Err() != nil {
				a.CancelTask(context.WithoutCancel(ctx), id)
				return nil, &TaskError{Msg: fmt.Sprintf("%s timed out after %s (knib.timeout)", kind, timeout)}
			}
			return nil, &TaskError{Msg: fmt.Sprintf("%s: %v", kind, err)}
		}
		if progress != nil && st.Message != last {
			last = st.Message
			progress(from+(to-from)*st.Progress/100, st.Message)
		}
		switch st.State {
		case agentapi.TaskSucceeded:
			return st.Result, nil
		case agentapi.TaskFailed:
			return nil, &TaskError{Msg: st.Error, Clean: st.Clean}
		}
		select {
		case <-tctx.Done():
			a.CancelTask(context.WithoutCancel(ctx), id)
			return nil, &TaskError{Msg: fmt.Sprintf("%s timed out after %s (knib.timeout)", kind, timeout)}
		case <-time.After(delay):
		}
		// Poll often: a coarse interval would add up to its own length to
		// every operation (the benchmark saw 0.8 s steps).
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}

func newTaskSuffix() string {
	id := []byte(nil)
	for _, c := range []byte(domain.NewID()) {
		if c != '-' {
			id = append(id, c)
		}
	}
	return string(id[:16])
}
