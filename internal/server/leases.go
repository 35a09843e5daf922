package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/knib/knib/internal/service"
)

// nodeIdentity names this installation on this machine: the host name and
// the data directory. A restarted server has the same node identity and so
// recovers the work of its previous life at once; another server on the
// same database (another data directory or machine) waits for leases.
func nodeIdentity(cfg Config) string {
	host, _ := os.Hostname()
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		dir = cfg.DataDir
	}
	return service.NodeID(host, dir)
}

// leaseLoop renews the leases of this process's operations and VM locks
// every third of the lease, and takes over the work of dead servers: their
// operations fail, their VM locks are released and the reconciliation
// repairs those VMs.
func leaseLoop(ctx context.Context, svc *service.Service, lease time.Duration, log *slog.Logger) {
	if lease <= 0 {
		lease = service.DefaultJobLease
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(lease / 3):
		}
		if err := svc.RenewLeases(ctx); err != nil && ctx.Err() == nil {
			log.Warn("renew leases", "err", err)
		}
		n, err := svc.RecoverOrphans(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("recover the work of stopped servers", "err", err)
		}
		if n > 0 {
			svc.Reconcile(ctx)
		}
	}
}
