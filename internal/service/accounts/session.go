package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/knib/knib/internal/auth"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// Console session rules.
const (
	// SessionIdle ends a session nobody used for this long.
	SessionIdle = 30 * time.Minute
	// SessionMaxAge ends every session this long after its log-in.
	SessionMaxAge = 12 * time.Hour
	// MinPassword and MaxPassword bound a password's length in bytes
	// (bcrypt reads at most 72).
	MinPassword = 8
	MaxPassword = 72
	// loginFailures failed log-ins within loginWindow, for one account
	// name or one source address, make the next ones wait loginWindow.
	loginFailures = 5
	loginWindow   = 5 * time.Minute
	// touchEvery bounds how often a session's last use is written.
	touchEvery = time.Minute
)

// wrongLogin is the one answer to a wrong name or password, so that a
// caller learns nothing about which accounts exist.
var wrongLogin = fmt.Errorf("wrong account name or password: %w", domain.ErrUnauthorized)

// ThrottledError refuses a log-in after too many failures.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed log-ins: try again in %d s", int(e.RetryAfter.Round(time.Second)/time.Second))
}

// Unwrap makes it a domain.ErrThrottled (HTTP 429).
func (e *ThrottledError) Unwrap() error { return domain.ErrThrottled }

// Login is a new console session: Secret goes into the cookie, CSRF into
// the page (it is derived from the secret).
type Login struct {
	Secret    string
	CSRF      string
	Principal domain.Principal
	Expires   time.Time
}

// throttle counts recent failed log-ins by key ("account:NAME",
// "addr:IP"), in memory: a restart forgets them.
type throttle struct {
	mu   sync.Mutex
	fail map[string][]time.Time
}

// wait says how long keys must wait before the next attempt (0: go on).
func (t *throttle) wait(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		recent := t.fail[k][:0]
		for _, at := range t.fail[k] {
			if now.Sub(at) < loginWindow {
				recent = append(recent, at)
			}
		}
		t.fail[k] = recent
		if len(recent) == 0 {
			delete(t.fail, k)
		}
		if len(recent) >= loginFailures {
			if w := recent[len(recent)-loginFailures].Add(loginWindow).Sub(now); w > longest {
				longest = w
			}
		}
	}
	return longest
}

func (t *throttle) failed(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		t.fail[k] = append(t.fail[k], now)
	}
}

// CSRFOf derives a session's CSRF token from its secret: a page of the
// console reads it from the log-in answer and sends it with every write; a
// cross-site page can neither read the cookie nor this answer.
func CSRFOf(secret string) string {
	sum := sha256.Sum256([]byte("knib-csrf:" + secret))
	return hex.EncodeToString(sum[:])
}

// LoginPassword starts a console session for an account's name and
// password. addr is the caller's address, for throttling.
func (s *Service) LoginPassword(ctx context.Context, name, password, addr string) (Login, error) {
	now := s.k.Clock().Now()
	keys := []string{"account:" + name, "addr:" + addr}
	th := s.logins
	if w := th.wait(now, keys...); w > 0 {
		return Login{}, &ThrottledError{RetryAfter: w}
	}
	fail := func() (Login, error) {
		th.failed(now, keys...)
		return Login{}, wrongLogin
	}
	if name == "" || len(password) == 0 || len(password) > MaxPassword || len(name) > 256 {
		return fail()
	}
	hash, err := s.store.AccountPassword(ctx, name)
	if errors.Is(err, domain.ErrNotFound) || err == nil && hash == "" {
		// The same work as a real check, so that timing tells nothing.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return fail()
	}
	if err != nil {
		return Login{}, err
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return fail()
	}
	acc, err := s.store.Account(ctx, name)
	if err != nil {
		return Login{}, err
	}
	role := domain.RoleUser
	if acc.Name == kernel.AdminAccount {
		role = domain.RoleAdmin
	}
	return s.startSession(ctx, domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: role})
}

var dummy struct {
	once sync.Once
	hash []byte
}

func dummyHash() []byte {
	dummy.once.Do(func() {
		dummy.hash, _ = bcrypt.GenerateFromPassword([]byte("knib-no-such-account"), bcrypt.DefaultCost)
	})
	return dummy.hash
}

// LoginToken starts a console session with an API token; the session has
// the token's role.
func (s *Service) LoginToken(ctx context.Context, token, addr string) (Login, error) {
	now := s.k.Clock().Now()
	keys := []string{"addr:" + addr}
	th := s.logins
	if w := th.wait(now, keys...); w > 0 {
		return Login{}, &ThrottledError{RetryAfter: w}
	}
	p, err := s.Authenticate(ctx, token)
	if errors.Is(err, domain.ErrUnauthorized) {
		th.failed(now, keys...)
		return Login{}, err
	}
	if err != nil {
		return Login{}, err
	}
	return s.startSession(ctx, p)
}

func (s *Service) startSession(ctx context.Context, p domain.Principal) (Login, error) {
	secret, hash := auth.NewToken()
	now := s.k.Clock().Now()
	se := store.Session{Hash: hash, AccountID: p.AccountID, Role: p.Role, TokenID: p.TokenID, Created: now, LastSeen: now, Expires: now.Add(SessionMaxAge)}
	if err := s.store.CreateSession(ctx, se); err != nil {
		return Login{}, fmt.Errorf("record the session: %w", err)
	}
	// Ended sessions go at each log-in: the table holds live ones only.
	if _, err := s.store.DeleteExpiredSessions(ctx, now, now.Add(-SessionIdle)); err != nil {
		s.k.Log().Warn("remove ended console sessions", "err", err)
	}
	return Login{Secret: secret, CSRF: CSRFOf(secret), Principal: p, Expires: se.Expires}, nil
}

// Session turns a session secret (the cookie) into its principal, and
// records its use; an unknown, idle or ended session is ErrUnauthorized.
func (s *Service) Session(ctx context.Context, secret string) (domain.Principal, time.Time, error) {
	bad := fmt.Errorf("no session or the session ended: log in again: %w", domain.ErrUnauthorized)
	if auth.CheckForm(secret) != nil {
		return domain.Principal{}, time.Time{}, bad
	}
	hash := auth.Hash(secret)
	se, err := s.store.SessionByHash(ctx, hash)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Principal{}, time.Time{}, bad
	}
	if err != nil {
		return domain.Principal{}, time.Time{}, err
	}
	now := s.k.Clock().Now()
	if !now.Before(se.Expires) || now.Sub(se.LastSeen) >= SessionIdle {
		if err := s.store.DeleteSession(ctx, hash); err != nil {
			return domain.Principal{}, time.Time{}, err
		}
		return domain.Principal{}, time.Time{}, bad
	}
	acc, err := s.store.Account(ctx, se.AccountID)
	if err != nil {
		return domain.Principal{}, time.Time{}, err
	}
	if now.Sub(se.LastSeen) >= touchEvery {
		if err := s.store.TouchSession(ctx, hash, now); err != nil {
			return domain.Principal{}, time.Time{}, fmt.Errorf("record the session's use: %w", err)
		}
	}
	return domain.Principal{AccountID: acc.ID, AccountName: acc.Name, Role: se.Role, TokenID: se.TokenID}, se.Expires, nil
}

// Logout ends a session; ending one that is gone is fine.
func (s *Service) Logout(ctx context.Context, secret string) error {
	if auth.CheckForm(secret) != nil {
		return nil
	}
	return s.store.DeleteSession(ctx, auth.Hash(secret))
}

// SetPassword sets an account's password: an admin for any account, a user
// for their own account with their current password. The account's other
// console sessions end.
func (s *Service) SetPassword(ctx context.Context, p domain.Principal, ref, password, current string) (domain.Account, error) {
	acc, err := s.store.Account(ctx, ref)
	if err != nil {
		return domain.Account{}, err
	}
	if !p.IsAdmin() {
		if acc.ID != p.AccountID {
			return domain.Account{}, fmt.Errorf("account %s: %w", ref, domain.ErrNotFound)
		}
		hash, err := s.store.AccountPassword(ctx, acc.ID)
		if err != nil {
			return domain.Account{}, err
		}
		if hash != "" && bcrypt.CompareHashAndPassword([]byte(hash), []byte(current)) != nil {
			return domain.Account{}, domain.Invalid("current_password", "does not match the account's password")
		}
	}
	switch {
	case len(password) < MinPassword:
		return domain.Account{}, domain.Invalid("password", "must have at least %d bytes", MinPassword)
	case len(password) > MaxPassword:
		return domain.Account{}, domain.Invalid("password", "must have at most %d bytes", MaxPassword)
	case !utf8.ValidString(password):
		return domain.Account{}, domain.Invalid("password", "must be valid UTF-8")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return domain.Account{}, fmt.Errorf("hash the password: %w", err)
	}
	if err := s.store.DeleteSessions(ctx, acc.ID); err != nil {
		return domain.Account{}, fmt.Errorf("end the account's sessions: %w", err)
	}
	if err := s.store.SetAccountPassword(ctx, acc.ID, string(hash)); err != nil {
		return domain.Account{}, fmt.Errorf("store the password: %w", err)
	}
	return acc, nil
}
