package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// registerAgents adds the routes of remote agents: join tokens and host
// maintenance.
func (h *Handler) registerAgents() {
	svc := h.svc
	ok, created := http.StatusOK, http.StatusCreated
	add(h, "POST", "/join-tokens", "hosts", "Create a one-time join token for a new agent (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.JoinTokenCreate) (api.JoinTokenCreated, error) {
			ttl := time.Hour
			if b.TTL != "" {
				d, err := time.ParseDuration(b.TTL)
				if err != nil {
					return api.JoinTokenCreated{}, domain.Invalid("ttl", "not a duration: %q", b.TTL)
				}
				ttl = d
			}
			text, jt, err := svc.Hosts.CreateJoinToken(ctx, p, b.Zone, ttl)
			if err != nil {
				return api.JoinTokenCreated{}, err
			}
			return api.JoinTokenCreated{ID: jt.ID, Token: text, Zone: svc.Kernel.ZoneName(ctx, jt.ZoneID), ExpiresAt: jt.Expires}, nil
		})
	add(h, "GET", "/join-tokens", "hosts", "List join tokens (admin); secrets are never shown again", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.JoinToken, error) {
			list, err := svc.Hosts.ListJoinTokens(ctx, p)
			now := svc.Kernel.Clock().Now()
			return mapList(list, func(t store.JoinToken) api.JoinToken { return h.joinTokenToAPI(ctx, t, now) }), err
		})
	add(h, "DELETE", "/join-tokens/{id}", "hosts", "Revoke a join token (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.JoinToken, error) {
			t, err := svc.Hosts.RevokeJoinToken(ctx, p, r.PathValue("id"))
			return h.joinTokenToAPI(ctx, t, svc.Kernel.Clock().Now()), err
		})
	hostAction := func(fn func(ctx context.Context, p domain.Principal, ref string) (domain.Host, error)) func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Host, error) {
		return func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Host, error) {
			x, err := fn(ctx, p, r.PathValue("host"))
			if err != nil {
				return api.Host{}, err
			}
			return h.hostToAPI(ctx, x), nil
		}
	}
	add(h, "GET", "/hosts/{host}", "hosts", "Show one host (admin)", ok,
		hostAction(func(ctx context.Context, p domain.Principal, ref string) (domain.Host, error) {
			return svc.Hosts.Host(ctx, p, ref)
		}))
	add(h, "POST", "/hosts/{host}/disable", "hosts", "Disable a host for maintenance: no new work goes to it (admin)", ok,
		hostAction(func(ctx context.Context, p domain.Principal, ref string) (domain.Host, error) {
			return svc.Hosts.SetHostEnabled(ctx, p, ref, false)
		}))
	add(h, "POST", "/hosts/{host}/enable", "hosts", "Enable a host again (admin)", ok,
		hostAction(func(ctx context.Context, p domain.Principal, ref string) (domain.Host, error) {
			return svc.Hosts.SetHostEnabled(ctx, p, ref, true)
		}))
	add(h, "POST", "/hosts/{host}/revoke", "hosts", "Revoke a remote host's agent identity; it must join again with a new token (admin)", ok,
		hostAction(svc.Hosts.RevokeHost))
}

func (h *Handler) joinTokenToAPI(ctx context.Context, t store.JoinToken, now time.Time) api.JoinToken {
	if t.ID == "" {
		return api.JoinToken{}
	}
	state := "Valid"
	switch {
	case t.Revoked:
		state = "Revoked"
	case !t.Used.IsZero():
		state = "Used"
	case !now.Before(t.Expires):
		state = "Expired"
	}
	return api.JoinToken{ID: t.ID, Zone: h.svc.Kernel.ZoneName(ctx, t.ZoneID), Created: t.Created, ExpiresAt: t.Expires, State: state,
		UsedAt: t.Used, UsedBy: t.UsedBy}
}
