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
	// Tokens: listed per account or all, oldest first; deleting one ends the
	// sessions started with it and nothing else.
	other := domain.Account{ID: domain.NewID(), Name: "other", Created: t0}
	must(t, s.CreateAccount(ctx, other))
	t1 := store.Token{ID: domain.NewID(), AccountID: acc.ID, Role: domain.RoleAdmin, Name: "one", Hash: "h1", Created: t0}
	t2 := store.Token{ID: domain.NewID(), AccountID: other.ID, Role: domain.RoleUser, Name: "two", Hash: "h2", Created: t0.Add(time.Minute)}
	must(t, s.CreateToken(ctx, t1))
	must(t, s.CreateToken(ctx, t2))
	all, err := s.ListTokens(ctx, "")
	must(t, err)
	if len(all) != 2 || all[0].ID != t1.ID || all[1].ID != t2.ID || all[1].Role != domain.RoleUser || all[1].Name != "two" || !all[1].Created.Equal(t2.Created) {
		t.Fatalf("tokens: %+v", all)
	}
	mine, err := s.ListTokens(ctx, other.ID)
	must(t, err)
	if len(mine) != 1 || mine[0].ID != t2.ID {
		t.Fatalf("other's tokens: %+v", mine)
	}
	must(t, s.CreateSession(ctx, store.Session{Hash: "st2", AccountID: other.ID, Role: domain.RoleUser, TokenID: t2.ID, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}))
	must(t, s.CreateSession(ctx, store.Session{Hash: "spw", AccountID: other.ID, Role: domain.RoleUser, Created: t0, LastSeen: t0, Expires: t0.Add(time.Hour)}))
	must(t, s.DeleteToken(ctx, t2.ID))
	wantErr(t, s.DeleteToken(ctx, t2.ID), domain.ErrNotFound)
	if _, err := s.TokenByHash(ctx, "h2"); err == nil {
		t.Fatal("a deleted token still authenticates")
	}
	if _, err := s.SessionByHash(ctx, "st2"); err == nil {
		t.Fatal("the deleted token's session is still there")
	}
	if _, err := s.SessionByHash(ctx, "spw"); err != nil {
		t.Fatalf("a password session went with another's token: %v", err)
	}
	if left, _ := s.ListTokens(ctx, ""); len(left) != 1 || left[0].ID != t1.ID {
		t.Fatalf("tokens after the deletion: %+v", left)
	}
}
