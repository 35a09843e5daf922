package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/kernel"
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
	return kernel.NodeID(host, dir)
}

// leaseLoop renews the leases of this process's operations and VM locks
// every third of the lease, and takes over the work of dead servers: their
// operations fail, their VM locks are released and the reconciliation
// repairs those VMs.
func leaseLoop(ctx context.Context, svc *service.Service, lease time.Duration, log *slog.Logger) {
	if lease <= 0 {
		lease = kernel.DefaultJobLease
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(lease / 3):
		}
		if err := svc.Recovery.RenewLeases(ctx); err != nil && ctx.Err() == nil {
			log.Warn("renew leases", "err", err)
		}
		n, err := svc.Recovery.RecoverOrphans(ctx)
		if err != nil && ctx.Err() == nil {
			log.Warn("recover the work of stopped servers", "err", err)
		}
		if n > 0 {
			svc.Recovery.Reconcile(ctx)
		}
	}
}

// lockDataDir makes this process the only server on its data directory
// for as long as it lives (the kernel drops the lock when it dies). The
// node identity relies on it: work owned by another process of this node
// is then certainly work of a dead one.
func lockDataDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "server.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another knib server runs on data directory %s (give each server its own --data-dir): %w", dir, err)
	}
	return f, nil
}
