package s3

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/clock"
)

// The limiter grants bytes at its rate: after n bytes are granted, the
// next grant waits until n/bps seconds past the first one.
func TestLimiterPacesTheBytes(t *testing.T) {
	l := &limiter{bps: 1 << 30} // fast enough not to sleep long
	start := clock.Real{}.Now()
	for range 4 {
		if err := l.wait(context.Background(), 1<<28); err != nil {
			t.Fatal(err)
		}
	}
	// Four quarters of a second's worth: the schedule reaches one second.
	if due := l.next.Sub(start); due < time.Second {
		t.Fatalf("granted 1 GiB at 1 GiB/s over %s of schedule, want at least 1s", due)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l.next = clock.Real{}.Now().Add(time.Hour)
	if err := l.wait(ctx, 1); err == nil {
		t.Fatal("a wait on a cancelled context returned nil")
	}
}
