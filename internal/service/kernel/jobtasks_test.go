package kernel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/agentapi/agenttest"
)

// A retried job re-attaches to an earlier attempt's task that still runs
// or finished (its runner died), but not to one that failed.
func TestJobTaskReattachesToALiveEarlierAttempt(t *testing.T) {
	ctx := context.Background()
	state := map[string]agentapi.TaskState{}
	fake := &agenttest.Fake{Task: func(t agentapi.Task) agentapi.TaskStatus {
		return agentapi.TaskStatus{State: state[t.ID]}
	}}
	ja := agentapi.JobAttempt{JobID: "job1", Attempt: 1}
	if id := jobTaskID(ctx, fake, "compress", ja); id != "compress-job1-1" {
		t.Fatalf("first attempt: %q", id)
	}
	// Attempt 1's task runs on the agent (its server died): attempt 2 waits for it.
	if err := fake.StartTask(ctx, agentapi.Task{ID: "compress-job1-1", Command: "compress"}); err != nil {
		t.Fatal(err)
	}
	state["compress-job1-1"] = agentapi.TaskRunning
	ja.Attempt = 2
	if id := jobTaskID(ctx, fake, "compress", ja); id != "compress-job1-1" {
		t.Fatalf("a running earlier task was not re-attached: %q", id)
	}
	state["compress-job1-1"] = agentapi.TaskSucceeded
	if id := jobTaskID(ctx, fake, "compress", ja); id != "compress-job1-1" {
		t.Fatalf("a finished earlier task was not re-attached: %q", id)
	}
	// A failed earlier attempt is not: the retry runs anew.
	state["compress-job1-1"] = agentapi.TaskFailed
	if id := jobTaskID(ctx, fake, "compress", ja); id != "compress-job1-2" {
		t.Fatalf("a failed earlier task was re-attached: %q", id)
	}
	// Another command of the same job is another task.
	if id := jobTaskID(ctx, fake, "finalize", ja); !strings.HasPrefix(id, "finalize-job1-") {
		t.Fatalf("command not in the id: %q", id)
	}
}

// Run derives the task id from the job attempt a request carries, and
// returns the command's typed result.
func TestRunUsesTheRequestsJobAttempt(t *testing.T) {
	ctx := context.Background()
	var started []agentapi.Task
	fake := &agenttest.Fake{Task: func(t agentapi.Task) agentapi.TaskStatus {
		started = append(started, t)
		return agentapi.TaskStatus{State: agentapi.TaskSucceeded, Result: agentapi.HashResult{Hashes: map[string]string{"vda": "h"}}}
	}}
	req := agentapi.HashRequest{InStorage: agentapi.InStorage{Storage: "/st"}, JobAttempt: agentapi.JobAttempt{JobID: "j9", Attempt: 3}}
	res, err := Run(ctx, fake, agentapi.Hash, req, time.Minute, nil, 0, 100)
	if err != nil || res.Hashes["vda"] != "h" {
		t.Fatalf("result %+v %v", res, err)
	}
	last := started[len(started)-1]
	if last.ID != "backup.hash-j9-3" || last.Request.(agentapi.HashRequest).Storage != "/st" {
		t.Fatalf("task %+v", last)
	}
}
