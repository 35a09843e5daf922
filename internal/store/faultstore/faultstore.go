package faultstore

import (
	"errors"
	"fmt"
	"sync"

	"github.com/knib/knib/internal/store"
)

// ErrInjected is the error a failed write returns.
var ErrInjected = errors.New("injected store failure")

// Store wraps a store.Store. Reads pass through; writes are counted, and
// the N-th write (FailWrite) fails with ErrInjected without reaching the
// wrapped store. Heal makes every write work again.
type Store struct {
	inner store.Store

	mu     sync.Mutex
	writes int
	failAt int // 0: never
	failed []string
}

var _ store.Store = (*Store)(nil)

// New wraps inner.
func New(inner store.Store) *Store { return &Store{inner: inner} }

// FailWrite makes the n-th write from now on fail (n ≥ 1); n = 0 fails none.
func (s *Store) FailWrite(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes, s.failAt = 0, n
}

// Heal makes every write work again.
func (s *Store) Heal() { s.FailWrite(0) }

// Writes counts the writes since the last FailWrite or Heal.
func (s *Store) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Failed lists the writes that were made to fail.
func (s *Store) Failed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failed...)
}

func (s *Store) write(method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failAt > 0 && s.writes == s.failAt {
		s.failed = append(s.failed, method)
		return fmt.Errorf("%s: %w", method, ErrInjected)
	}
	return nil
}
