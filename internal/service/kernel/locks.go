package kernel

import (
	"context"
	"fmt"
	"time"

	"github.com/knib/knib/internal/domain"
)

// LockVMForRecovery is LockVM for work the server starts by itself to
// bring a VM back (recovery, resuming a consolidation, finishing a move):
// while it runs, requests of this process that need the VM wait for it to
// end, as for a follow-up, instead of being refused because the VM is busy
// (an operator's command right after a restart would otherwise fail for as
// long as the startup reconciliation holds the VM).
func (s *Kernel) LockVMForRecovery(ctx context.Context, vm domain.VM, what string) (func(), error) {
	unlock, err := s.LockVM(ctx, vm, what)
	if err != nil {
		return nil, err
	}
	end := s.follow.begin(vm.ID)
	return func() {
		unlock() // before end: a waiter that wakes finds the VM free
		end()
	}, nil
}

// LockVM marks the VM busy for the operation or refuses with a clear message.
func (s *Kernel) LockVM(ctx context.Context, vm domain.VM, what string) (release func(), err error) {
	s.AwaitFollowUp(ctx, vm.ID)
	holder := what + " (started " + s.clock.Now().Format(time.RFC3339) + ")"
	if err := s.store.AcquireVMFor(ctx, vm.ID, holder, s.Owner(), s.LeaseEnd()); err != nil {
		return nil, fmt.Errorf("vm %s: %w", vm.Name, err)
	}
	return func() {
		// A lock that can't be released now runs out with its lease.
		if err := retryWrite(func() error { return s.store.ReleaseVM(context.WithoutCancel(ctx), vm.ID, holder) }); err != nil {
			s.log.Warn("release the VM lock; its lease runs out", "vm", vm.Name, "err", err)
		}
	}, nil
}
