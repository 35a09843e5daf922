package kernel

import (
	"context"
	"fmt"
	"time"

	"github.com/knib/knib/internal/domain"
)

// lockVM marks the VM busy for the operation or refuses with a clear message.
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
