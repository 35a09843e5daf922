package kernel

import (
	"context"
	"strings"
	"testing"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
	"github.com/knib/knib/internal/jobs"
)

// A retried job re-attaches to an earlier attempt's task that still runs
// or finished (its runner died), but not to one that failed.
func TestJobTaskReattachesToALiveEarlierAttempt(t *testing.T) {
	ctx := context.Background()
	state := map[string]agentapi.TaskState{}
	fake := &agenttest.Fake{Task: func(req agentapi.TaskRequest) agentapi.TaskStatus {
		return agentapi.TaskStatus{State: state[req.ID]}
	}}
	j := jobs.Job{ID: "job1", Attempts: 1}
	id, ok := jobTaskID(WithJobTask(ctx, j), fake, "compress")
	if !ok || id != "compress-job1-1" {
		t.Fatalf("first attempt: %q %v", id, ok)
	}
	if _, ok := jobTaskID(ctx, fake, "compress"); ok {
		t.Fatal("outside a job the task id must be random")
	}
	// Attempt 1's task runs on the agent (its server died): attempt 2 waits for it.
	fake.StartTask(ctx, agentapi.TaskRequest{ID: "compress-job1-1", Kind: "compress"})
	state["compress-job1-1"] = agentapi.TaskRunning
	j.Attempts = 2
	if id, _ := jobTaskID(WithJobTask(ctx, j), fake, "compress"); id != "compress-job1-1" {
		t.Fatalf("a running earlier task was not re-attached: %q", id)
	}
	state["compress-job1-1"] = agentapi.TaskSucceeded
	if id, _ := jobTaskID(WithJobTask(ctx, j), fake, "compress"); id != "compress-job1-1" {
		t.Fatalf("a finished earlier task was not re-attached: %q", id)
	}
	// A failed earlier attempt is not: the retry runs anew.
	state["compress-job1-1"] = agentapi.TaskFailed
	if id, _ := jobTaskID(WithJobTask(ctx, j), fake, "compress"); id != "compress-job1-2" {
		t.Fatalf("a failed earlier task was re-attached: %q", id)
	}
	// Another kind of the same job is another task.
	if id, _ := jobTaskID(WithJobTask(ctx, j), fake, "finalize"); !strings.HasPrefix(id, "finalize-job1-") {
		t.Fatalf("kind not in the id: %q", id)
	}
}
