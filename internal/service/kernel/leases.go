package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/knib/knib/internal/domain"
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
func (s *Kernel) SetIdentity(node, owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.node, s.owner = node, owner
}

// Owner is the name of this process in leases.
func (s *Kernel) Owner() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == "" {
		s.owner = OwnerName("")
	}
	return s.owner
}

// previousLife reports whether owner is an earlier process of this node.
func (s *Kernel) PreviousLife(owner string) bool {
	me := s.Owner()
	s.mu.Lock()
	node := s.node
	s.mu.Unlock()
	parts := strings.Split(owner, "/")
	return node != "" && owner != me && len(parts) == 4 && parts[1] == node
}

// orphaned reports whether work owned by owner with a lease until until
// has no live owner any more.
func (s *Kernel) Orphaned(owner string, until, now time.Time) bool {
	switch {
	case owner == s.Owner():
		return false
	case owner == "":
		return true // recorded before owners existed, or by a lock without one
	case s.PreviousLife(owner):
		return true
	}
	return !until.IsZero() && now.After(until)
}

// leaseEnd is the end of a lease taken or renewed now.
func (s *Kernel) LeaseEnd() time.Time { return s.clock.Now().Add(s.Lease()) }

// DefaultJobLease is how long a claim on a running job lasts without
// renewal; a runner renews it every third of that while the job runs.
const DefaultJobLease = 60 * time.Second

// SetJobLease changes the job lease (tests use short ones).
func (s *Kernel) SetJobLease(d time.Duration) { s.jobLease = d }

func (s *Kernel) Lease() time.Duration {
	if s.jobLease > 0 {
		return s.jobLease
	}
	return DefaultJobLease
}
