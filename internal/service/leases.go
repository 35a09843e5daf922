package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
)

// Several servers on one database: every operation and VM lock names its
// owner, the server process that runs it, and holds a lease the owner
// renews while it lives (RenewLeases). Recovery (RecoverOrphans) takes over
// only what a dead owner left: a lease that ran out, or an owner that is a
// previous life of this same node (same host name and data directory: the
// all-in-one restart recovers at once). Every take-over is a conditional
// update, so of two recoverers only one acts.

// NodeID names a server installation on a machine: a digest of the host
// name and the server's data directory (or listen address).
func NodeID(hostname, dataDir string) string {
	sum := sha256.Sum256([]byte(hostname + "\x00" + dataDir))
	return hex.EncodeToString(sum[:6])
}

// OwnerName returns a name unique to this process: host/node/pid/random.
func OwnerName(node string) string {
	host, _ := os.Hostname()
	host = strings.ReplaceAll(host, "/", "_")
	return fmt.Sprintf("%s/%s/%d/%s", host, node, os.Getpid(), domain.NewID()[:8])
}

// SetIdentity names this server process (owner, from OwnerName) and its
// node (NodeID). Without it the service has an owner of its own and no
// node, so that no other owner passes for a previous life.
func (s *Service) SetIdentity(node, owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.node, s.owner = node, owner
}

// Owner is the name of this process in leases.
func (s *Service) Owner() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == "" {
		s.owner = OwnerName("")
	}
	return s.owner
}

// previousLife reports whether owner is an earlier process of this node.
func (s *Service) previousLife(owner string) bool {
	me := s.Owner()
	s.mu.Lock()
	node := s.node
	s.mu.Unlock()
	parts := strings.Split(owner, "/")
	return node != "" && owner != me && len(parts) == 4 && parts[1] == node
}

// orphaned reports whether work owned by owner with a lease until until
// has no live owner any more.
func (s *Service) orphaned(owner string, until, now time.Time) bool {
	switch {
	case owner == s.Owner():
		return false
	case owner == "":
		return true // recorded before owners existed, or by a lock without one
	case s.previousLife(owner):
		return true
	}
	return !until.IsZero() && now.After(until)
}

// leaseEnd is the end of a lease taken or renewed now.
func (s *Service) leaseEnd() time.Time { return s.clock.Now().Add(s.lease()) }

// RenewLeases extends the leases of this process's operations and VM
// locks. The server calls it every third of the lease.
func (s *Service) RenewLeases(ctx context.Context) error {
	return s.store.RenewOwner(ctx, s.Owner(), s.leaseEnd())
}

// RecoverOrphans fails the operations and releases the VM locks of dead
// owners, and puts backups left Restoring by dead work back to BackedUp;
// the per-VM reconciliation (Reconcile) then repairs the disks. It returns
// how many locks it released. Run at start and periodically.
func (s *Service) RecoverOrphans(ctx context.Context) (int, error) {
	now := s.clock.Now()
	// Read before the take-overs: a status set after this read has another
	// updated time, and the compare-and-swap below leaves it alone.
	restoring, err := s.store.ListBackups(ctx, store.BackupFilter{Status: domain.BackupRestoring})
	if err != nil {
		return 0, err
	}
	ops, err := s.store.ListOperations(ctx, false)
	if err != nil {
		return 0, err
	}
	for _, op := range ops {
		if !s.orphaned(op.Owner, op.LeaseUntil, now) {
			continue
		}
		const msg = "interrupted: the server stopped while this operation ran"
		ok, err := s.store.FailOperationIf(ctx, op.ID, op.Owner, op.LeaseUntil, msg, now)
		if err != nil {
			return 0, err
		}
		if ok {
			s.log.Warn("operation of a stopped server failed", "id", op.ID, "kind", op.Kind, "owner", op.Owner)
		}
	}
	locks, err := s.store.VMLocks(ctx)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, l := range locks {
		if !s.orphaned(l.Owner, l.Until, now) {
			continue
		}
		ok, err := s.store.TakeVMLock(ctx, l)
		if err != nil {
			return released, err
		}
		if !ok {
			continue // its owner renewed it, or another server took it
		}
		released++
		s.log.Info("releasing the lock of an interrupted operation", "vm", l.VMID, "holder", l.Holder, "owner", l.Owner)
	}
	return released, s.releaseRestoring(ctx, restoring, now)
}

// releaseRestoring puts back to BackedUp the backups read Restoring that
// no live work reads: their VM is not locked and no live operation that
// restores without that VM's lock (a new VM, a volume onto another VM)
// runs on any server.
func (s *Service) releaseRestoring(ctx context.Context, restoring []domain.Backup, now time.Time) error {
	if len(restoring) == 0 {
		return nil
	}
	ops, err := s.store.ListOperations(ctx, false)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if (op.Kind == "backup.create-vm" || op.Kind == "backup.restore-volume") && !s.orphaned(op.Owner, op.LeaseUntil, now) {
			return nil // it may read any of them; decide in a later round
		}
	}
	locks, err := s.store.VMLocks(ctx)
	if err != nil {
		return err
	}
	busy := map[string]bool{}
	for _, l := range locks {
		busy[l.VMID] = true
	}
	for _, b := range restoring {
		if busy[b.VMID] {
			continue
		}
		if ok, _ := s.store.SetBackupStatusIf(ctx, b.ID, domain.BackupRestoring, domain.BackupBackedUp, b.Updated, now); ok {
			s.log.Info("backup no longer restoring: its restore was interrupted", "backup", b.ID)
		}
	}
	return nil
}

// liveValidations returns the backups that validation jobs with a live
// lease are validating now: their validation VMs must survive a cleanup.
func (s *Service) liveValidations(ctx context.Context) ([]string, error) {
	running, err := s.store.Jobs(ctx, store.JobFilter{Executing: true})
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var keep []string
	for _, j := range running {
		if j.Type != jobs.BackupValidation || j.LeaseUntil.IsZero() || now.After(j.LeaseUntil) {
			continue
		}
		if s.previousLife(j.LeaseOwner) {
			continue
		}
		keep = append(keep, j.BackupID)
	}
	return keep, nil
}
