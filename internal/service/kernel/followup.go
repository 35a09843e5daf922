package kernel

import (
	"context"
	"sync"

	"github.com/knib/knib/internal/domain"
)

// A follow-up is work an operation leaves to do after it reported its
// outcome, still holding the VM: a backup is complete once its files are
// copied, synced, hashed and committed, and the merge of the previous delta
// on primary storage runs right after, as a step of its own (recorded in
// the catalogue, so that recovery finishes it after a crash). Requests of
// this process that need the VM wait for its follow-up instead of finding
// the VM busy (AwaitFollowUp; LockVM does). Recovery the server starts by
// itself is waited for the same way (LockVMForRecovery).

// FollowUp runs after its operation's outcome was recorded, with the VM
// still locked; nil is none.
type FollowUp func(ctx context.Context)

// followUps are the VMs with a follow-up running in this process.
type followUps struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

// begin marks the VM's follow-up running; end marks it over.
func (f *followUps) begin(vmID string) (end func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	f.m[vmID] = ch
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.m[vmID] == ch {
			delete(f.m, vmID)
		}
		close(ch)
	}
}

func (f *followUps) running(vmID string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[vmID]
}

// AwaitFollowUp waits until no follow-up of the VM runs in this process (or
// ctx ends).
func (s *Kernel) AwaitFollowUp(ctx context.Context, vmID string) {
	for {
		ch := s.follow.running(vmID)
		if ch == nil {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// VMOperationThen is VMOperation whose fn may return a follow-up: the
// operation's outcome is recorded first (the caller sees it), then the
// follow-up runs, and the VM's lock is released after it.
func (s *Kernel) VMOperationThen(ctx context.Context, p domain.Principal, vm domain.VM, what, kind string, fn func(ctx context.Context, progress Progress) (domain.OpResult, FollowUp, error)) (domain.Operation, error) {
	id := domain.NewID()
	release, err := s.LockVM(ctx, vm, what+", operation "+id)
	if err != nil {
		return domain.Operation{}, err
	}
	var follow FollowUp
	end := func() {}
	op, err := s.startID(ctx, p, id, kind, vm.ID, func(ctx context.Context, progress Progress) (domain.OpResult, error) {
		res, f, err := fn(ctx, progress)
		if f != nil {
			// Marked before the outcome is recorded: whoever sees the
			// outcome also sees the follow-up and waits for it.
			follow, end = f, s.follow.begin(vm.ID)
		}
		return res, err
	}, func(ctx context.Context) {
		defer end()
		defer release()
		if follow != nil {
			follow(ctx)
		}
	})
	if err != nil {
		release()
	}
	return op, err
}
