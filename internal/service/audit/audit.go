package audit

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// Bounds of a line's free-text fields: a path id or a message longer than
// these is cut (a request cannot grow the log by more than this per call).
const (
	maxField   = 256
	maxMessage = 1024
)

// Service holds the audit log's use cases.
type Service struct {
	k     *kernel.Kernel
	store Store
}

// New returns the use cases over the kernel and the catalogue.
func New(k *kernel.Kernel, st Store) *Service { return &Service{k: k, store: st} }

// Record appends a line, stamped with the kernel's clock and a new id; its
// text fields are cut to their bounds and made valid UTF-8.
func (s *Service) Record(ctx context.Context, e store.AuditEntry) error {
	e.ID, e.Time = domain.NewID(), s.k.Clock().Now()
	for _, f := range []*string{&e.AccountID, &e.Account, &e.TokenID, &e.Source, &e.Action, &e.Object, &e.OperationID} {
		*f = clip(*f, maxField)
	}
	e.Error = clip(e.Error, maxMessage)
	if err := s.store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("record the audit line of %s: %w", e.Action, err)
	}
	return nil
}

// clip cuts s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Filter selects the lines of List.
type Filter struct {
	Account string // id or name; "" = every account the caller may read
	Since   time.Time
	Action  string
}

// List returns one page of the lines the principal may read, newest first,
// and the cursor of the next page (nil on the last). A user reads the lines
// of their own account only: asking for another account is ErrForbidden.
func (s *Service) List(ctx context.Context, p domain.Principal, f Filter, page store.Page) ([]store.AuditEntry, *store.Cursor, error) {
	if len(f.Account) > maxField {
		return nil, nil, domain.Invalid("account", "longer than %d bytes", maxField)
	}
	if len(f.Action) > maxField {
		return nil, nil, domain.Invalid("action", "longer than %d bytes", maxField)
	}
	if !p.IsAdmin() {
		if f.Account != "" && f.Account != p.AccountID && f.Account != p.AccountName {
			return nil, nil, fmt.Errorf("the audit lines of account %q are for admins: %w", f.Account, domain.ErrForbidden)
		}
		f.Account = p.AccountID
		if f.Account == "" {
			return nil, nil, fmt.Errorf("no account: %w", domain.ErrForbidden)
		}
	}
	list, err := s.store.ListAudit(ctx, store.AuditFilter{Account: f.Account, Since: f.Since, Action: f.Action, Page: page.OneMore()})
	if err != nil {
		return nil, nil, fmt.Errorf("list the audit log: %w", err)
	}
	list, next := store.Cut(page, list, store.AuditCursor)
	return list, next, nil
}

// Prune removes the lines older than the setting audit.retention.days and
// returns how many.
func (s *Service) Prune(ctx context.Context) (int, error) {
	view, err := s.k.Settings(ctx, settings.Target{})
	if err != nil {
		return 0, fmt.Errorf("read the audit retention: %w", err)
	}
	days := view.Int(settings.KeyAuditRetentionDays)
	before := s.k.Clock().Now().AddDate(0, 0, -int(days))
	n, err := s.store.PruneAudit(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("prune the audit log: %w", err)
	}
	return n, nil
}
