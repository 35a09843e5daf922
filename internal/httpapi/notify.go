package httpapi

import (
	"context"
	"net/http"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/notify"
)

// NotifyLogQuery selects notification deliveries.
type NotifyLogQuery struct {
	State string `query:"state"` // pending, delivered, failed; empty for all
	Limit int    `query:"limit"`
}

func (h *Handler) registerNotify() {
	svc := h.svc
	ok, created := http.StatusOK, http.StatusCreated
	add(h, "POST", "/notify/targets", "notify", "Add a notification target: a webhook (URL, HMAC secret) or an SMTP server (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b notify.TargetSpec) (notify.TargetView, error) {
			return svc.Notify.AddTarget(ctx, p, b)
		})
	add(h, "GET", "/notify/targets", "notify", "List notification targets, without their secrets (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]notify.TargetView, error) {
			return svc.Notify.Targets(ctx, p)
		})
	add(h, "DELETE", "/notify/targets/{target}", "notify", "Remove a notification target and its rules (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "removed"}, svc.Notify.RemoveTarget(ctx, p, r.PathValue("target"))
		})
	add(h, "POST", "/notify/targets/{target}/test", "notify", "Send a test message to a target now; 503 with the error when it fails (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "sent"}, svc.Notify.TestTarget(ctx, p, r.PathValue("target"))
		})
	add(h, "POST", "/notify/rules", "notify", "Add a notification rule: which events of which zone and account go to a target, at once or in a daily digest (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b notify.RuleSpec) (notify.RuleView, error) {
			return svc.Notify.AddRule(ctx, p, b)
		})
	add(h, "GET", "/notify/rules", "notify", "List notification rules (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]notify.RuleView, error) {
			return svc.Notify.Rules(ctx, p)
		})
	add(h, "DELETE", "/notify/rules/{id}", "notify", "Remove a notification rule (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "removed"}, svc.Notify.RemoveRule(ctx, p, r.PathValue("id"))
		})
	add(h, "GET", "/notify/log", "notify", "List notification deliveries, newest first: pending (with the last error), delivered, failed (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q NotifyLogQuery, _ api.Empty) ([]notify.DeliveryView, error) {
			if q.Limit < 0 || q.Limit > 1000 {
				return nil, domain.Invalid("limit", "want 0 to 1000")
			}
			if q.Limit == 0 {
				q.Limit = 100
			}
			return svc.Notify.Log(ctx, p, q.State, q.Limit)
		})
}
