package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// AdminAccount is the account that owns VMs nobody was given yet.
const AdminAccount = "admin"

// Wait blocks until background operations have finished.
func (s *Kernel) Wait() { s.ops.Wait() }

// Progress reports an operation's progress (0..100) and current step.
type Progress func(pct float64, msg string)

// start records an operation and runs fn in the background. The operation is
// stored as Pending before fn runs, so it is visible at once.
func (s *Kernel) Start(ctx context.Context, p domain.Principal, kind, vmID string, fn func(ctx context.Context, progress Progress) (domain.OpResult, error)) (domain.Operation, error) {
	return s.StartID(ctx, p, domain.NewID(), kind, vmID, fn)
}

func (s *Kernel) StartID(ctx context.Context, p domain.Principal, id, kind, vmID string, fn func(ctx context.Context, progress Progress) (domain.OpResult, error)) (domain.Operation, error) {
	return s.startID(ctx, p, id, kind, vmID, fn, nil)
}

// startID is StartID with then, run once the outcome is recorded (nil:
// nothing).
func (s *Kernel) startID(ctx context.Context, p domain.Principal, id, kind, vmID string, fn func(ctx context.Context, progress Progress) (domain.OpResult, error), then func(ctx context.Context)) (domain.Operation, error) {
	now := s.clock.Now()
	op := domain.Operation{ID: id, Kind: kind, VMID: vmID, AccountID: p.AccountID, State: domain.OpPending, Created: now, Updated: now,
		Owner: s.Owner(), LeaseUntil: now.Add(s.Lease())}
	if err := s.store.CreateOperation(ctx, op); err != nil {
		return op, fmt.Errorf("record operation: %w", err)
	}
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		bg := context.WithoutCancel(ctx)
		if then != nil {
			defer then(bg) // after the outcome's save below (LIFO)
		}
		var mu sync.Mutex
		cur := op
		lost := false
		// Progress may be lost; the final state is retried, so that an
		// operation never stays Running in the catalogue after it ended.
		save := func() {
			cur.Updated = s.clock.Now()
			var ok bool
			write := func() (err error) {
				ok, err = s.store.UpdateOwnedOperation(bg, cur, op.Owner)
				return err
			}
			var err error
			if cur.State == domain.OpSucceeded || cur.State == domain.OpFailed {
				err = retryWrite(write)
			} else {
				err = write()
			}
			s.opw.written()
			if err != nil {
				s.log.Error("update operation", "id", cur.ID, "state", cur.State, "err", err)
			} else if !ok && !lost {
				// Our lease ran out and another server failed it: its
				// verdict stands (leases.go).
				lost = true
				s.log.Warn("operation taken over by another server; its outcome is not recorded", "id", cur.ID, "kind", kind)
			}
		}
		mu.Lock()
		cur.State, cur.Message = domain.OpRunning, "started"
		save()
		mu.Unlock()
		res, err := fn(bg, func(pct float64, msg string) {
			mu.Lock()
			defer mu.Unlock()
			cur.Progress, cur.Message = pct, msg
			save()
		})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			cur.State, cur.Error, cur.Message = domain.OpFailed, err.Error(), "failed"
			s.log.Warn("operation failed", "id", cur.ID, "kind", kind, "err", err)
		} else {
			if res != nil && res.OpKind() != kind {
				s.log.Warn("operation result is not the kind's result type", "id", cur.ID, "kind", kind, "result", res.OpKind())
			}
			raw, jerr := json.Marshal(res)
			if jerr != nil {
				cur.State, cur.Error = domain.OpFailed, jerr.Error()
			} else {
				cur.State, cur.Progress, cur.Result, cur.Message = domain.OpSucceeded, 100, string(raw), "done"
			}
		}
		save()
		s.Observe().OperationDone(kind, map[bool]string{true: "succeeded", false: "failed"}[cur.State == domain.OpSucceeded])
	}()
	return op, nil
}

// vmOperation runs fn as an operation that holds the VM's lock from the
// request on: a second request for a busy VM is refused at once.
func (s *Kernel) VMOperation(ctx context.Context, p domain.Principal, vm domain.VM, what, kind string, fn func(ctx context.Context, progress Progress) (domain.OpResult, error)) (domain.Operation, error) {
	id := domain.NewID()
	release, err := s.LockVM(ctx, vm, what+", operation "+id)
	if err != nil {
		return domain.Operation{}, err
	}
	op, err := s.StartID(ctx, p, id, kind, vm.ID, func(ctx context.Context, progress Progress) (domain.OpResult, error) {
		defer release()
		return fn(ctx, progress)
	})
	if err != nil {
		release()
	}
	return op, err
}

// Operation returns an operation the principal may see.
func (s *Kernel) Operation(ctx context.Context, p domain.Principal, id string) (domain.Operation, error) {
	if err := domain.ValidateRef("id", id); err != nil {
		return domain.Operation{}, err
	}
	op, err := s.store.Operation(ctx, id)
	if err != nil {
		return op, err
	}
	if !p.IsAdmin() && op.AccountID != p.AccountID {
		return domain.Operation{}, fmt.Errorf("operation %q: %w", id, domain.ErrNotFound)
	}
	return op, nil
}

// ListOperations lists one page of operations, newest first, keeping
// those the principal may see (a page may hold fewer than its limit). The
// cursor is nil on the last page.
func (s *Kernel) ListOperations(ctx context.Context, p domain.Principal, all bool, page store.Page) ([]domain.Operation, *store.Cursor, error) {
	ops, err := s.store.ListOperations(ctx, store.OperationFilter{All: all, Page: page.OneMore()})
	if err != nil {
		return nil, nil, err
	}
	ops, next := store.Cut(page, ops, store.OperationCursor)
	out := ops[:0]
	for _, op := range ops {
		if p.IsAdmin() || op.AccountID == p.AccountID {
			out = append(out, op)
		}
	}
	return out, next, nil
}
