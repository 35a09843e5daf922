package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// testSessions: passwords and console sessions.
func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	acc, _ := seedHost(t, s)
	if h, err := s.AccountPassword(ctx, "admin"); err != nil || h != "" {
		t.Fatalf("a new account has no password: %q %v", h, err)
	}
	must(t, s.SetAccountPassword(ctx, acc.ID, "$2a$10$x"))
	for _, ref := range []string{"admin", acc.ID} {
		if h, err := s.AccountPassword(ctx, ref); err != nil || h != "$2a$10$x" {
			t.Fatalf("password of %s: %q %v", ref, h, err)
		}
	}
	wantErr(t, s.SetAccountPassword(ctx, "nope", "x"), domain.ErrNotFound)
	_, err := s.AccountPassword(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)

	a := store.Session{Hash: "s1", AccountID: acc.ID, Role: domain.RoleAdmin, Created: t0, LastSeen: t0, Expires: t0.Add(12 * time.Hour)}
	b := store.Session{Hash: "s2", AccountID: acc.ID, Role: domain.RoleUser, TokenID: "tok", Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}
	must(t, s.CreateSession(ctx, a))
	must(t, s.CreateSession(ctx, b))
	got, err := s.SessionByHash(ctx, "s2")
	must(t, err)
	if got.AccountID != acc.ID || got.Role != domain.RoleUser || got.TokenID != "tok" || !got.Expires.Equal(b.Expires) || !got.LastSeen.Equal(t0) {
		t.Fatalf("session: %+v", got)
	}
	_, err = s.SessionByHash(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	must(t, s.TouchSession(ctx, "s1", t0.Add(time.Hour)))
	wantErr(t, s.TouchSession(ctx, "nope", t0), domain.ErrNotFound)
	if got, _ := s.SessionByHash(ctx, "s1"); !got.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("touched session: %+v", got)
	}
	// At t0+2h: s2 is past its end; s1 was seen at t0+1h, idle since.
	n, err := s.DeleteExpiredSessions(ctx, t0.Add(2*time.Hour), t0.Add(30*time.Minute))
	must(t, err)
	if n != 1 {
		t.Fatalf("expired sessions removed: %d, want 1", n)
	}
	if _, err := s.SessionByHash(ctx, "s2"); err == nil {
		t.Fatal("the expired session is still there")
	}
	n, err = s.DeleteExpiredSessions(ctx, t0, t0.Add(2*time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("idle sessions removed: %d, want 1", n)
	}
	must(t, s.CreateSession(ctx, a))
	must(t, s.DeleteSession(ctx, "s1"))
	must(t, s.DeleteSession(ctx, "s1"))
	must(t, s.CreateSession(ctx, a))
	must(t, s.DeleteSessions(ctx, acc.ID))
	_, err = s.SessionByHash(ctx, "s1")
	wantErr(t, err, domain.ErrNotFound)
}
