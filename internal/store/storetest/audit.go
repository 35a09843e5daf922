package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/knib/knib/internal/store"
)

// testAudit: the audit log's lines, filters, pages and retention.
func testAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	lines := []store.AuditEntry{
		{ID: "a1", Time: t0, AccountID: "acc-alice", Account: "alice", TokenID: "tok1", Source: "192.0.2.1",
			Action: "POST /backups/{id}/restore", Object: "id=b1", Status: 202, OperationID: "op1"},
		{ID: "a2", Time: t0.Add(time.Hour), AccountID: "acc-admin", Account: "admin", TokenID: "tok0", Source: "2001:db8::1",
			Action: "PUT /settings/{key}", Object: "key=backup.chain.size", Status: 200},
		{ID: "a3", Time: t0.Add(2 * time.Hour), Account: "mallory", Source: "192.0.2.9",
			Action: "POST /session", Status: 401, Error: "wrong account or password"},
		{ID: "a4", Time: t0.Add(2 * time.Hour), AccountID: "acc-alice", Account: "alice", TokenID: "tok1", Source: "192.0.2.1",
			Action: "POST /backups/{id}/restore", Object: "id=b2", Status: 403, Error: "refused"},
	}
	for _, e := range lines {
		must(t, s.AppendAudit(ctx, e))
	}
	ids := func(list []store.AuditEntry) []string {
		out := []string{}
		for _, e := range list {
			out = append(out, e.ID)
		}
		return out
	}
	check := func(what string, f store.AuditFilter, want ...string) {
		t.Helper()
		got, err := s.ListAudit(ctx, f)
		must(t, err)
		if g := ids(got); len(g) != len(want) || (len(want) > 0 && !slices.Equal(g, want)) {
			t.Fatalf("%s: lines %v, want %v", what, g, want)
		}
	}
	// Newest first; the same instant by id, descending.
	check("all", store.AuditFilter{}, "a4", "a3", "a2", "a1")
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	must(t, err)
	if got := all[3]; got != lines[0] || !got.Time.Equal(t0) {
		t.Fatalf("round trip: %+v, want %+v", got, lines[0])
	}
	if got := all[1]; got != lines[2] {
		t.Fatalf("round trip of a refused log-in: %+v, want %+v", got, lines[2])
	}
	check("by account id", store.AuditFilter{Account: "acc-alice"}, "a4", "a1")
	check("by account name", store.AuditFilter{Account: "alice"}, "a4", "a1")
	check("by the name a refused log-in tried", store.AuditFilter{Account: "mallory"}, "a3")
	check("unknown account", store.AuditFilter{Account: "nobody"})
	check("since", store.AuditFilter{Since: t0.Add(time.Hour)}, "a4", "a3", "a2")
	check("action", store.AuditFilter{Action: "POST /backups/{id}/restore"}, "a4", "a1")
	check("account, since and action", store.AuditFilter{Account: "alice", Since: t0.Add(time.Minute), Action: "POST /backups/{id}/restore"}, "a4")
	// Pages.
	check("first page", store.AuditFilter{Page: store.Page{Limit: 2}}, "a4", "a3")
	check("next page", store.AuditFilter{Page: store.Page{Limit: 2, After: store.AuditCursor(lines[2])}}, "a2", "a1")
	check("next page of an account", store.AuditFilter{Account: "alice", Page: store.Page{Limit: 1, After: store.AuditCursor(lines[3])}}, "a1")

	// Retention: lines before the bound go, the others stay.
	n, err := s.PruneAudit(ctx, t0.Add(time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("pruned %d lines, want 1", n)
	}
	check("after pruning", store.AuditFilter{}, "a4", "a3", "a2")
	n, err = s.PruneAudit(ctx, t0.Add(time.Hour))
	must(t, err)
	if n != 0 {
		t.Fatalf("pruned %d lines again, want 0", n)
	}
}
