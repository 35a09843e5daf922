package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/knib/knib/internal/service"
)

// auditPruneEvery is how often the server removes the audit lines older
// than the setting audit.retention.days.
const auditPruneEvery = time.Hour

// auditLoop prunes the audit log at start and then every auditPruneEvery,
// until ctx ends. Several servers sharing a database each prune: deleting
// the same old lines twice is harmless.
func auditLoop(ctx context.Context, svc *service.Service, log *slog.Logger) {
	for {
		n, err := svc.Audit.Prune(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("audit log retention", "err", err)
		case n > 0:
			log.Info("audit log pruned", "lines", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-svc.Kernel.Clock().After(auditPruneEvery):
		}
	}
}
