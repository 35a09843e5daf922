package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/knib/knib/internal/service"
)

// notifyLoop evaluates the notification conditions and sends the due
// deliveries every notify.interval. It only reads what backups recorded
// and talks to receivers on its own goroutine, so no backup waits on it;
// every server runs it (firing, resolving and claiming are conditional
// writes, so a condition notifies once whatever the number of servers).
// The sender has its own loop: a slow or dead receiver does not delay the
// evaluation.
func notifyLoop(ctx context.Context, svc *service.Service, log *slog.Logger) {
	owner := svc.Kernel.Owner()
	go every(ctx, svc, func() {
		if _, err := svc.Notify.Send(ctx, owner); err != nil && ctx.Err() == nil {
			log.Warn("notification deliveries", "err", err)
		}
	})
	every(ctx, svc, func() {
		if _, err := svc.Notify.Evaluate(ctx); err != nil && ctx.Err() == nil {
			log.Warn("notification conditions", "err", err)
		}
	})
}

// every runs fn, then again every notify.interval, until ctx ends.
func every(ctx context.Context, svc *service.Service, fn func()) {
	for {
		fn()
		wait := 30 * time.Second
		if cfg, err := svc.Notify.Settings(ctx); err == nil && cfg.Interval > 0 {
			wait = cfg.Interval
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
