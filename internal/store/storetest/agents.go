package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

func testAgents(t *testing.T, st store.Store) {
	ctx := context.Background()
	s, ok := st.(store.AgentStore)
	if !ok {
		t.Fatal("store does not implement store.AgentStore")
	}
	// The first CA stored wins; a second server gets the first one's.
	c, k, err := s.InitCA(ctx, "cert-1", "key-1", t0)
	must(t, err)
	c2, k2, err := s.InitCA(ctx, "cert-2", "key-2", t0)
	must(t, err)
	if c != "cert-1" || k != "key-1" || c2 != c || k2 != k {
		t.Fatalf("CA: %s %s then %s %s", c, k, c2, k2)
	}

	_, host := seedHost(t, st)
	tok := store.JoinToken{ID: "0123456789abcdef", Hash: "h1", ZoneID: host.ZoneID, Created: t0, Expires: t0.Add(time.Hour)}
	must(t, s.CreateJoinToken(ctx, tok))
	got, err := s.JoinToken(ctx, tok.ID)
	must(t, err)
	if got.Hash != "h1" || !got.Expires.Equal(tok.Expires) || !got.Used.IsZero() || got.Revoked {
		t.Fatalf("stored token %+v", got)
	}
	_, err = s.JoinToken(ctx, "nope")
	wantErr(t, err, domain.ErrNotFound)
	for _, c := range []struct {
		hash string
		at   time.Time
	}{{"wrong", t0}, {"h1", t0.Add(2 * time.Hour)}} {
		if ok, err := s.UseJoinToken(ctx, tok.ID, c.hash, "h", c.at); err != nil || ok {
			t.Fatalf("used with hash %s at %v: %v %v", c.hash, c.at, ok, err)
		}
	}
	if ok, err := s.UseJoinToken(ctx, tok.ID, "h1", "host-a", t0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := s.UseJoinToken(ctx, tok.ID, "h1", "host-b", t0.Add(2*time.Minute)); err != nil || ok {
		t.Fatalf("replay won: %v %v", ok, err)
	}
	got, _ = s.JoinToken(ctx, tok.ID)
	if got.UsedBy != "host-a" || !got.Used.Equal(t0.Add(time.Minute)) {
		t.Fatalf("used token %+v", got)
	}
	tok2 := store.JoinToken{ID: "fedcba9876543210", Hash: "h2", ZoneID: host.ZoneID, Created: t0.Add(time.Second), Expires: t0.Add(time.Hour)}
	must(t, s.CreateJoinToken(ctx, tok2))
	must(t, s.RevokeJoinToken(ctx, tok2.ID))
	if ok, _ := s.UseJoinToken(ctx, tok2.ID, "h2", "x", t0); ok {
		t.Fatal("revoked token used")
	}
	wantErr(t, s.RevokeJoinToken(ctx, "nope"), domain.ErrNotFound)
	list, err := s.ListJoinTokens(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != tok2.ID {
		t.Fatalf("list %+v", list)
	}

	// Host identities.
	_, err = s.HostAgent(ctx, host.ID)
	wantErr(t, err, domain.ErrNotFound)
	wantErr(t, s.SetHostConnection(ctx, host.ID, store.AgentConnected, t0), domain.ErrNotFound)
	must(t, s.SetHostIdentity(ctx, host.ID, "abc", "https://a:1", t0))
	must(t, s.SetHostConnection(ctx, host.ID, store.AgentDisconnected, t0.Add(time.Minute)))
	must(t, s.RevokeHostIdentity(ctx, host.ID))
	a, err := s.HostAgent(ctx, host.ID)
	must(t, err)
	if a.CertSerial != "abc" || a.URL != "https://a:1" || !a.Revoked || a.Connection != store.AgentDisconnected || !a.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("agent %+v", a)
	}
	// A new join replaces the serial and clears the revocation.
	must(t, s.SetHostIdentity(ctx, host.ID, "def", "https://a:2", t0))
	must(t, s.SetHostAgentURL(ctx, host.ID, "https://a:3"))
	all, err := s.ListHostAgents(ctx)
	must(t, err)
	if len(all) != 1 || all[0].CertSerial != "def" || all[0].Revoked || all[0].URL != "https://a:3" {
		t.Fatalf("agents %+v", all)
	}

	must(t, s.SetHostEnabled(ctx, host.ID, false))
	h, err := st.Host(ctx, host.ID)
	must(t, err)
	if h.Enabled {
		t.Fatal("host still enabled")
	}
	// Re-registering keeps the host disabled.
	h.LastSeen = t0.Add(time.Hour)
	h, err = st.UpsertHost(ctx, h)
	must(t, err)
	if h.Enabled {
		t.Fatal("upsert enabled the host")
	}
	wantErr(t, s.SetHostEnabled(ctx, "nope", true), domain.ErrNotFound)
}
