package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// Agent tasks of service jobs have ids derived from the job and its
// attempt. When a job's runner dies (its server was killed) the agent's
// task goes on; the next attempt, on any server, finds it by id and waits
// for it (or takes its result) instead of running the same work a second
// time beside it. An earlier attempt whose task failed is not re-attached.

// jobTaskID returns the id of the task of this command for a job attempt:
// a live or finished task of an earlier attempt when the agent has one,
// else this attempt's own.
func jobTaskID(ctx context.Context, a agentapi.Agent, name string, ja agentapi.JobAttempt) string {
	for n := 1; n < ja.Attempt; n++ {
		prev := fmt.Sprintf("%s-%s-%d", name, ja.JobID, n)
		if st, err := a.TaskStatus(ctx, prev); err == nil && st.State != agentapi.TaskFailed {
			return prev
		}
	}
	return fmt.Sprintf("%s-%s-%d", name, ja.JobID, max(ja.Attempt, 1))
}

// JobAttemptOf is the job attempt j runs now, for the requests of its tasks.
func JobAttemptOf(j jobs.Job) agentapi.JobAttempt {
	return agentapi.JobAttempt{JobID: j.ID, Attempt: j.Attempts}
}

// TaskError is a failed agent task; Clean means nothing changed on disk.
type TaskError struct {
	Msg   string
	Clean bool
	// Damaged: the task failed because these backup files no longer hash
	// to their recorded hashes.
	Damaged []agentapi.Damage
	// LeftPaused: the task left the VM paused (agentapi.TaskStatus).
	LeftPaused bool
}

func (e *TaskError) Error() string { return e.Msg }

// DamageOf returns the damaged backup files a failed task found.
func DamageOf(err error) []agentapi.Damage {
	var te *TaskError
	if errors.As(err, &te) {
		return te.Damaged
	}
	return nil
}

// isClean reports whether err says the failed task changed nothing.
func IsClean(err error) bool {
	var te *TaskError
	return errors.As(err, &te) && te.Clean
}

// LeftPaused reports whether err says the failed task left the VM paused.
func LeftPaused(err error) bool {
	var te *TaskError
	return errors.As(err, &te) && te.LeftPaused
}

// Run starts cmd with req on an agent and waits for it, mapping its
// progress into [from, to] of the operation's progress (progress may be
// nil). The timeout bounds the task (setting knib.timeout); when it passes,
// the task is cancelled. A request that embeds agentapi.JobAttempt gets an
// id derived from its job and attempt (jobtasks.go).
func Run[Req, Res any](ctx context.Context, a agentapi.Agent, cmd agentapi.Command[Req, Res], req Req, timeout time.Duration, progress Progress, from, to float64) (Res, error) {
	var zero Res
	id := cmd.Name + "-" + newTaskSuffix()
	if jr, ok := any(req).(agentapi.JobRequest); ok && jr.Attempted().JobID != "" {
		id = jobTaskID(ctx, a, cmd.Name, jr.Attempted()) // several servers: a retried job finds its task
	}
	// Waiting is real time, whatever clock the use cases read.
	deadline := clock.Real{}.Now().Add(timeout)
	t := cmd.Task(id, req)
	t.Deadline = deadline
	if err := a.StartTask(ctx, t); err != nil {
		return zero, &TaskError{Msg: fmt.Sprintf("start %s: %v", cmd.Name, err), Clean: true}
	}
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	cancelTask := func() {
		if err := a.CancelTask(context.WithoutCancel(ctx), id); err != nil && !errors.Is(err, agentapi.ErrUnknownTask) {
			slog.Default().Warn("cancel task", "task", id, "err", err)
		}
	}
	delay := 25 * time.Millisecond
	last := ""
	// An agent that pushes changes is waited on, never polled.
	waiter, push := a.(agentapi.TaskWaiter)
	var seen agentapi.TaskStatus
	for {
		var st agentapi.TaskStatus
		var err error
		if push {
			st, err = waiter.WaitTask(tctx, id, seen)
		} else {
			st, err = a.TaskStatus(tctx, id)
		}
		if err != nil {
			if tctx.Err() != nil {
				cancelTask()
				return zero, &TaskError{Msg: fmt.Sprintf("%s timed out after %s (knib.timeout)", cmd.Name, timeout)}
			}
			return zero, &TaskError{Msg: fmt.Sprintf("%s: %v", cmd.Name, err)}
		}
		seen = st
		if progress != nil && st.Message != last {
			last = st.Message
			progress(from+(to-from)*st.Progress/100, st.Message)
		}
		switch st.State {
		case agentapi.TaskSucceeded:
			res, err := cmd.ResultOf(st)
			if err != nil {
				return zero, &TaskError{Msg: err.Error()}
			}
			return res, nil
		case agentapi.TaskFailed:
			return zero, &TaskError{Msg: st.Error, Clean: st.Clean, Damaged: st.Damaged, LeftPaused: st.LeftPaused}
		}
		if push {
			if tctx.Err() != nil {
				cancelTask()
				return zero, &TaskError{Msg: fmt.Sprintf("%s timed out after %s (knib.timeout)", cmd.Name, timeout)}
			}
			continue
		}
		select {
		case <-tctx.Done():
			cancelTask()
			return zero, &TaskError{Msg: fmt.Sprintf("%s timed out after %s (knib.timeout)", cmd.Name, timeout)}
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

// retryWrite runs a store write that must not be lost (an operation's final
// state, a lock's release) up to five times with a growing pause; the
// error of the last attempt is returned.
func retryWrite(write func() error) error {
	var err error
	pause := 20 * time.Millisecond
	for i := 0; i < 5; i++ {
		if err = write(); err == nil {
			return nil
		}
		time.Sleep(pause)
		pause *= 2
	}
	return err
}
