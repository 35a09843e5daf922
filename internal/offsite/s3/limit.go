package s3

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/knib/knib/internal/clock"
)

// limiter paces the bytes of one handle to bps bytes per second, shared
// by every transfer of the handle.
type limiter struct {
	bps  int64
	mu   sync.Mutex
	next time.Time // when the bytes granted so far have been "sent"
}

// wait blocks until n more bytes fit in the rate.
func (l *limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := clock.Real{}.Now()
	if l.next.Before(now) {
		l.next = now
	}
	d := l.next.Sub(now)
	l.next = l.next.Add(time.Duration(int64(n) * int64(time.Second) / l.bps))
	l.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// limitedReader reads through a limiter in slices of at most 64 KiB.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	l   *limiter
}

func (r *limitedReader) Read(p []byte) (int, error) {
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := r.r.Read(p)
	if n > 0 {
		if werr := r.l.wait(r.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}
