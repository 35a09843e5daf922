package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/knib/knib/internal/agentapi"
)

// The task table forgets a finished task once its result was collected
// (beyond a few recent ones): memory stays flat over 10,000 tasks.
func TestTaskTableForgetsCollectedTasks(t *testing.T) {
	a := &Local{tasks: newTaskTable(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	handle(a, agentapi.Hash, func(ctx context.Context, req agentapi.HashRequest, progress func(float64, string)) (any, error) {
		return agentapi.HashResult{Hashes: map[string]string{"vda": req.Files[0].Path}}, nil
	})
	ctx := context.Background()
	run := func(i int) {
		id := "t" + string(rune('a'+i%26)) + itoa(i)
		req := agentapi.HashRequest{Files: []agentapi.RestoreFile{{Disk: "vda", Path: id}}}
		if err := a.StartTask(ctx, agentapi.Hash.Task(id, req)); err != nil {
			t.Fatal(err)
		}
		a.tasks.wait(id)
		st, err := a.TaskStatus(ctx, id)
		if err != nil || st.State != agentapi.TaskSucceeded {
			t.Fatalf("task %s: %+v %v", id, st, err)
		}
		res, err := agentapi.Hash.ResultOf(st)
		if err != nil || res.Hashes["vda"] != id {
			t.Fatalf("result of %s: %+v %v", id, res, err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	for i := 0; i < 1000; i++ {
		run(i)
	}
	before := heap()
	for i := 1000; i < 11000; i++ {
		run(i)
	}
	after := heap()
	if n := a.tasks.size(); n > recentlyCollected {
		t.Fatalf("the table holds %d tasks after 11,000 collected ones (want at most %d)", n, recentlyCollected)
	}
	if after > before+4<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 10,000 tasks", before, after)
	}
	// A recently collected task can still be read (a lost answer); an old one is gone.
	if _, err := a.TaskStatus(ctx, "t"+string(rune('a'+10999%26))+itoa(10999)); err != nil {
		t.Fatalf("the last task is forgotten at once: %v", err)
	}
	if _, err := a.TaskStatus(ctx, "ta0"); !errors.Is(err, agentapi.ErrUnknownTask) {
		t.Fatalf("the first task is still known: %v", err)
	}
}

// A request of the wrong type for its command is refused and starts nothing.
func TestTaskOfTheWrongRequestTypeIsRefused(t *testing.T) {
	a := &Local{tasks: newTaskTable(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	handle(a, agentapi.Hash, func(ctx context.Context, req agentapi.HashRequest, progress func(float64, string)) (any, error) {
		return nil, nil
	})
	ctx := context.Background()
	if err := a.StartTask(ctx, agentapi.Task{ID: "x", Command: agentapi.Hash.Name, Request: agentapi.UndefineRequest{}}); err != nil {
		t.Fatal(err) // accepted: the handler refuses it
	}
	a.tasks.wait("x")
	st, _ := a.TaskStatus(ctx, "x")
	if st.State != agentapi.TaskFailed || !st.Clean {
		t.Fatalf("wrong request type: %+v", st)
	}
	if err := a.StartTask(ctx, agentapi.Task{ID: "y", Command: "no.such"}); !errors.Is(err, agentapi.ErrUnknownKind) {
		t.Fatalf("unknown command: %v", err)
	}
	// A storage root that is given must be valid.
	bad := agentapi.HashRequest{InStorage: agentapi.InStorage{Storage: "relative/path"}}
	if err := a.StartTask(ctx, agentapi.Hash.Task("z", bad)); err == nil {
		t.Fatal("a relative storage root was accepted")
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// WaitTask answers on each change of a task's message and on its end, so
// that the server waits on pushed changes instead of polling.
func TestWaitTaskAnswersOnChanges(t *testing.T) {
	a := &Local{tasks: newTaskTable(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	step, finish := make(chan struct{}), make(chan struct{})
	handle(a, agentapi.Hash, func(ctx context.Context, req agentapi.HashRequest, progress func(float64, string)) (any, error) {
		progress(10, "first")
		<-step
		progress(50, "second")
		<-finish
		return agentapi.HashResult{Hashes: map[string]string{"vda": "done"}}, nil
	})
	ctx := context.Background()
	if err := a.StartTask(ctx, agentapi.Hash.Task("w1", agentapi.HashRequest{})); err != nil {
		t.Fatal(err)
	}
	st, err := a.WaitTask(ctx, "w1", agentapi.TaskStatus{})
	if err != nil || st.State != agentapi.TaskRunning {
		t.Fatalf("first answer: %+v %v", st, err)
	}
	if st.Message != "first" {
		// The task had not reported yet: the next change is its first message.
		if st, err = a.WaitTask(ctx, "w1", st); err != nil || st.Message != "first" {
			t.Fatalf("first message: %+v %v", st, err)
		}
	}
	close(step)
	if st, err = a.WaitTask(ctx, "w1", st); err != nil || st.Message != "second" {
		t.Fatalf("second message: %+v %v", st, err)
	}
	close(finish)
	if st, err = a.WaitTask(ctx, "w1", st); err != nil || st.State != agentapi.TaskSucceeded {
		t.Fatalf("end: %+v %v", st, err)
	}
	if _, err := a.WaitTask(ctx, "nope", agentapi.TaskStatus{}); !errors.Is(err, agentapi.ErrUnknownTask) {
		t.Fatalf("unknown task: %v", err)
	}
}
