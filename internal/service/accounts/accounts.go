package accounts

import (
	"time"

	"github.com/knib/knib/internal/service/kernel"
)

// Service holds the use cases of accounts, API tokens, authentication, resource limits and usage.
type Service struct {
	k      *kernel.Kernel
	store  Store
	logins *throttle // failed log-ins (session.go)
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store) *Service {
	return &Service{k: k, store: st, logins: &throttle{fail: map[string][]time.Time{}}}
}
