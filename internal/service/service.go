package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/auth"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// AdminAccount is the account that owns VMs nobody was given yet.
const AdminAccount = "admin"

// Service implements the use cases.
type Service struct {
	store store.Store
	clock clock.Clock
	log   *slog.Logger

	mu       sync.Mutex
	agents   map[string]agentapi.Agent // by host id
	ops      sync.WaitGroup
	jobs     runningJobs
	jobLease time.Duration
	remote   remoteAgents // remote agents (agents.go)
	node     string       // this installation on this machine (leases.go)
	owner    string       // this process in leases (leases.go)
}

// New returns a service over st.
func New(st store.Store, clk clock.Clock, log *slog.Logger) *Service {
	return &Service{store: st, clock: clk, log: log, agents: map[string]agentapi.Agent{}}
}

// Wait blocks until background operations have finished.
func (s *Service) Wait() { s.ops.Wait() }

// EnsureAdmin creates the admin account when missing and returns it.
func (s *Service) EnsureAdmin(ctx context.Context) (domain.Account, error) {
	a, err := s.store.Account(ctx, AdminAccount)
	if err == nil || !errors.Is(err, domain.ErrNotFound) {
		return a, err
	}
	a = domain.Account{ID: domain.NewID(), Name: AdminAccount, Created: s.clock.Now()}
	if err := s.store.CreateAccount(ctx, a); err != nil {
		return a, err
	}
	return a, nil
}

// IssueToken creates a token for an account without checking the caller; the
// server uses it at first start. API callers use CreateToken.
func (s *Service) IssueToken(ctx context.Context, accountID string, role domain.Role, name string) (string, store.Token, error) {
	secret, hash := auth.NewToken()
	t := store.Token{ID: domain.NewID(), AccountID: accountID, Role: role, Name: name, Hash: hash, Created: s.clock.Now()}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return "", t, err
	}
	return secret, t, nil
}

// Authenticate turns a bearer token into a principal.
func (s *Service) Authenticate(ctx context.Context, token string) (domain.Principal, error) {
	if err := auth.CheckForm(token); err != nil {
		return domain.Principal{}, fmt.Errorf("malformed API token: %w", domain.ErrUnauthorized)
	}
	t, err := s.store.TokenByHash(ctx, auth.Hash(token))
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Principal{}, fmt.Errorf("unknown API token: %w", domain.ErrUnauthorized)
	}
	if err != nil {
		return domain.Principal{}, err
	}
	acc, err := s.store.Account(ctx, t.AccountID)
	if err != nil {
		return domain.Principal{}, err
	}
	return domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: t.Role, TokenID: t.ID}, nil
}

// CreateAccount creates an account (admin).
func (s *Service) CreateAccount(ctx context.Context, p domain.Principal, name string) (domain.Account, error) {
	if err := p.RequireAdmin("creating accounts"); err != nil {
		return domain.Account{}, err
	}
	if err := domain.ValidateRef("name", name); err != nil {
		return domain.Account{}, err
	}
	a := domain.Account{ID: domain.NewID(), Name: name, Created: s.clock.Now()}
	return a, s.store.CreateAccount(ctx, a)
}

// ListAccounts lists accounts (admin).
func (s *Service) ListAccounts(ctx context.Context, p domain.Principal) ([]domain.Account, error) {
	if err := p.RequireAdmin("listing accounts"); err != nil {
		return nil, err
	}
	return s.store.ListAccounts(ctx)
}

// CreateToken creates an API token for an account (admin).
func (s *Service) CreateToken(ctx context.Context, p domain.Principal, account, role, name string) (string, store.Token, error) {
	if err := p.RequireAdmin("creating tokens"); err != nil {
		return "", store.Token{}, err
	}
	r, err := domain.ParseRole(role)
	if err != nil {
		return "", store.Token{}, err
	}
	if err := domain.ValidateRef("account", account); err != nil {
		return "", store.Token{}, err
	}
	acc, err := s.store.Account(ctx, account)
	if err != nil {
		return "", store.Token{}, err
	}
	if name == "" {
		name = acc.Name + "-" + string(r)
	}
	if err := domain.ValidateName("name", name); err != nil {
		return "", store.Token{}, err
	}
	return s.IssueToken(ctx, acc.ID, r, name)
}

// Progress reports an operation's progress (0..100) and current step.
type Progress func(pct float64, msg string)

// start records an operation and runs fn in the background. The operation is
// stored as Pending before fn runs, so it is visible at once.
func (s *Service) start(ctx context.Context, p domain.Principal, kind, vmID string, fn func(ctx context.Context, progress Progress) (any, error)) (domain.Operation, error) {
	return s.startID(ctx, p, domain.NewID(), kind, vmID, fn)
}

func (s *Service) startID(ctx context.Context, p domain.Principal, id, kind, vmID string, fn func(ctx context.Context, progress Progress) (any, error)) (domain.Operation, error) {
	now := s.clock.Now()
	op := domain.Operation{ID: id, Kind: kind, VMID: vmID, AccountID: p.AccountID, State: domain.OpPending, Created: now, Updated: now,
		Owner: s.Owner(), LeaseUntil: now.Add(s.lease())}
	if err := s.store.CreateOperation(ctx, op); err != nil {
		return op, fmt.Errorf("record operation: %w", err)
	}
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		bg := context.WithoutCancel(ctx)
		var mu sync.Mutex
		cur := op
		lost := false
		save := func() {
			cur.Updated = s.clock.Now()
			ok, err := s.store.UpdateOwnedOperation(bg, cur, op.Owner)
			if err != nil {
				s.log.Error("update operation", "id", cur.ID, "err", err)
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
			raw, jerr := json.Marshal(res)
			if jerr != nil {
				cur.State, cur.Error = domain.OpFailed, jerr.Error()
			} else {
				cur.State, cur.Progress, cur.Result, cur.Message = domain.OpSucceeded, 100, string(raw), "done"
			}
		}
		save()
	}()
	return op, nil
}

// vmOperation runs fn as an operation that holds the VM's lock from the
// request on: a second request for a busy VM is refused at once.
func (s *Service) vmOperation(ctx context.Context, p domain.Principal, vm domain.VM, what, kind string, fn func(ctx context.Context, progress Progress) (any, error)) (domain.Operation, error) {
	id := domain.NewID()
	release, err := s.lockVM(ctx, vm, what+", operation "+id)
	if err != nil {
		return domain.Operation{}, err
	}
	op, err := s.startID(ctx, p, id, kind, vm.ID, func(ctx context.Context, progress Progress) (any, error) {
		defer release()
		return fn(ctx, progress)
	})
	if err != nil {
		release()
	}
	return op, err
}

// Operation returns an operation the principal may see.
func (s *Service) Operation(ctx context.Context, p domain.Principal, id string) (domain.Operation, error) {
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

// ListOperations lists operations the principal may see.
func (s *Service) ListOperations(ctx context.Context, p domain.Principal, all bool) ([]domain.Operation, error) {
	ops, err := s.store.ListOperations(ctx, all)
	if err != nil {
		return nil, err
	}
	out := ops[:0]
	for _, op := range ops {
		if p.IsAdmin() || op.AccountID == p.AccountID {
			out = append(out, op)
		}
	}
	return out, nil
}
