package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/audit"
	"github.com/knib/knib/internal/store"
)

// The audit log: every request a route answers with a method other than
// GET, HEAD and OPTIONS leaves one line (service/audit), refused ones (401,
// 403, 4xx, 5xx) too. The line is written when the answer's status is known
// and before its body goes out (auditWriter.WriteHeader), so that a caller
// who saw the answer finds the line. A line that cannot be written is
// logged at error level and the answer goes out anyway: the change it
// records is made already, and a 500 would invite the caller to repeat it.
// Requests no route matches (404, 405) change nothing and leave no line.

// audited reports whether a request of this method is recorded.
func audited(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// auditWriter records the line of a state-changing request when its status
// is written. Routes add what only they know (auditOf).
type auditWriter struct {
	http.ResponseWriter
	h      *Handler
	r      *http.Request
	entry  store.AuditEntry
	detail string // the problem's message, from writeProblem
	done   bool
}

func (h *Handler) newAuditWriter(rt route, w http.ResponseWriter, r *http.Request) *auditWriter {
	return &auditWriter{ResponseWriter: w, h: h, r: r,
		entry: store.AuditEntry{Source: clientAddr(r), Action: rt.method + " " + rt.path, Object: pathObject(rt.path, r)}}
}

// pathObject names the ids of the path: "name=value" for each wildcard of
// the pattern, joined by a space.
func pathObject(pattern string, r *http.Request) string {
	var parts []string
	for _, seg := range strings.Split(pattern, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
			parts = append(parts, name+"="+r.PathValue(name))
		}
	}
	return strings.Join(parts, " ")
}

// auditOf is the request's audit line in the making; nil (whose methods do
// nothing) when the request is not recorded.
func auditOf(w http.ResponseWriter) *auditWriter {
	a, _ := w.(*auditWriter)
	return a
}

// principal records the authenticated caller.
func (a *auditWriter) principal(p domain.Principal) {
	if a != nil {
		a.entry.AccountID, a.entry.Account, a.entry.TokenID = p.AccountID, p.AccountName, p.TokenID
	}
}

// tried records the account name a log-in tried (never its password).
func (a *auditWriter) tried(account string) {
	if a != nil && a.entry.AccountID == "" {
		a.entry.Account = account
	}
}

// operation records the operation the call started.
func (a *auditWriter) operation(id string) {
	if a != nil {
		a.entry.OperationID = id
	}
}

// problem records a refusal's message.
func (a *auditWriter) problem(detail string) {
	if a != nil {
		a.detail = detail
	}
}

func (a *auditWriter) record(status int) {
	if a.done {
		return
	}
	a.done = true
	a.entry.Status = status
	if status >= 400 {
		a.entry.Error = a.detail
	}
	// The line is written even when the caller hung up.
	ctx := context.WithoutCancel(a.r.Context())
	if err := a.h.svc.Audit.Record(ctx, a.entry); err != nil {
		a.h.log.Error("audit line not recorded", "action", a.entry.Action, "object", a.entry.Object, "account", a.entry.Account,
			"status", status, "err", err)
	}
}

// WriteHeader records the line, then writes the status.
func (a *auditWriter) WriteHeader(status int) {
	a.record(status)
	a.ResponseWriter.WriteHeader(status)
}

// Write records the line (status 200 unless WriteHeader came first).
func (a *auditWriter) Write(b []byte) (int, error) {
	a.record(http.StatusOK)
	return a.ResponseWriter.Write(b)
}

// finish records the line of a route that wrote nothing (net/http answers 200).
func (a *auditWriter) finish() { a.record(http.StatusOK) }

// Unwrap gives http.ResponseController the underlying writer.
func (a *auditWriter) Unwrap() http.ResponseWriter { return a.ResponseWriter }

func (h *Handler) registerAudit() {
	add(h, "GET", "/audit", "audit", "The audit log, newest first: every state-changing call (refused ones too) with when, account, token id, source address, action, object and result; admins read every line, a user only their account's", http.StatusOK,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.AuditQuery, _ api.Empty) (paged[api.AuditLine], error) {
			page, err := storePage(q.Paging)
			if err != nil {
				return paged[api.AuditLine]{}, err
			}
			f := audit.Filter{Account: q.Account, Action: q.Action}
			if q.Since != "" {
				if f.Since, err = time.Parse(time.RFC3339Nano, q.Since); err != nil {
					return paged[api.AuditLine]{}, &badRequest{field: "since", msg: "since: must be a time in RFC 3339 form, e.g. 2026-12-04T10:00:00Z"}
				}
			}
			list, next, err := h.svc.Audit.List(ctx, p, f, page)
			return pageOf(list, next, auditToAPI), err
		})
}

func auditToAPI(e store.AuditEntry) api.AuditLine {
	return api.AuditLine{ID: e.ID, Time: e.Time, AccountID: e.AccountID, Account: e.Account, TokenID: e.TokenID, Source: e.Source,
		Action: e.Action, Object: e.Object, Status: e.Status, Error: e.Error, OperationID: e.OperationID}
}
