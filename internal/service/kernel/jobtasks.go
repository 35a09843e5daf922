package kernel

import (
	"context"
	"fmt"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/jobs"
)

// Agent tasks of service jobs have ids derived from the job and its
// attempt. When a job's runner dies (its server was killed) the agent's
// task goes on; the next attempt, on any server, finds it by id and waits
// for it (or takes its result) instead of running the same work a second
// time beside it. An earlier attempt whose task failed is not re-attached.

type jobTaskKey struct{}

// withJobTask marks ctx as running job j (attempt j.Attempts).
func WithJobTask(ctx context.Context, j jobs.Job) context.Context {
	return context.WithValue(ctx, jobTaskKey{}, j)
}

// jobTaskID returns the id of the task of this kind for the job in ctx:
// a live or finished task of an earlier attempt when the agent has one,
// else this attempt's own; ok is false outside a job.
func jobTaskID(ctx context.Context, a agentapi.Agent, kind string) (id string, ok bool) {
	j, ok := ctx.Value(jobTaskKey{}).(jobs.Job)
	if !ok || j.ID == "" {
		return "", false
	}
	for n := 1; n < j.Attempts; n++ {
		prev := fmt.Sprintf("%s-%s-%d", kind, j.ID, n)
		if st, err := a.TaskStatus(ctx, prev); err == nil && st.State != agentapi.TaskFailed {
			return prev, true
		}
	}
	return fmt.Sprintf("%s-%s-%d", kind, j.ID, max(j.Attempts, 1)), true
}
