package service_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service"
	"github.com/knib/knib/internal/service/audit"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
)

// The audit log keeps a line for audit.retention.days days of the clock:
// Prune removes the older ones, and a shorter setting removes more.
func TestAuditRetention(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "knib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	svc := service.New(st, clk, slog.New(slog.NewTextHandler(io.Discard, nil)))
	admin := domain.Principal{AccountID: "acc-admin", AccountName: "admin", Role: domain.RoleAdmin}
	record := func(action string) {
		t.Helper()
		if err := svc.Audit.Record(ctx, store.AuditEntry{AccountID: admin.AccountID, Action: action, Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	actions := func() []string {
		t.Helper()
		list, _, err := svc.Audit.List(ctx, admin, audit.Filter{}, store.Page{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Action)
		}
		return out
	}
	record("old")                     // day 0
	clk.Advance(300 * 24 * time.Hour) // day 300
	record("middle")
	clk.Advance(100 * 24 * time.Hour) // day 400: "old" is past the default 365 days
	record("new")
	n, err := svc.Audit.Prune(ctx)
	if err != nil || n != 1 {
		t.Fatalf("prune at day 400: %d lines, %v; want 1", n, err)
	}
	if got := actions(); len(got) != 2 || got[0] != "new" || got[1] != "middle" {
		t.Fatalf("lines after pruning: %v", got)
	}
	if err := st.SetSetting(ctx, store.Setting{Scope: string(settings.ScopeGlobal), Key: settings.KeyAuditRetentionDays, Value: "30"}); err != nil {
		t.Fatal(err)
	}
	if n, err := svc.Audit.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune with 30 days: %d lines, %v; want 1", n, err)
	}
	if got := actions(); len(got) != 1 || got[0] != "new" {
		t.Fatalf("lines after pruning to 30 days: %v", got)
	}
}
