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
