package httpapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/accounts"
)

// SessionCookie carries a console session's secret.
const SessionCookie = "knib_session"

// CSRFHeader carries the session's CSRF token on writes made with the
// session cookie.
const CSRFHeader = "X-CSRF-Token"

// sessionPrincipal authenticates a request by its session cookie: writes
// need the session's CSRF token in CSRFHeader, and an Origin header, when
// present, must name this server.
func (h *Handler) sessionPrincipal(r *http.Request) (domain.Principal, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return domain.Principal{}, fmt.Errorf("missing credentials: send \"Authorization: Bearer <token>\" or log in (POST %s/session): %w", Prefix, domain.ErrUnauthorized)
	}
	p, _, err := h.svc.Accounts.Session(r.Context(), c.Value)
	if err != nil {
		return p, err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return p, nil
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return domain.Principal{}, fmt.Errorf("cross-site request refused: Origin %q is not this server: %w", o, domain.ErrForbidden)
		}
	}
	want := accounts.CSRFOf(c.Value)
	if got := r.Header.Get(CSRFHeader); subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return domain.Principal{}, fmt.Errorf("a write with the session cookie needs the session's %s header: %w", CSRFHeader, domain.ErrForbidden)
	}
	return p, nil
}

// clientAddr is the caller's IP address, for throttling log-ins.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func setSessionCookie(w http.ResponseWriter, r *http.Request, value string, expires time.Time) {
	c := &http.Cookie{Name: SessionCookie, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	http.SetCookie(w, c)
}

// registerSession adds the console's log-in routes and passwords.
func (h *Handler) registerSession() {
	svc := h.svc
	ok := http.StatusOK
	h.routes = append(h.routes, route{method: "POST", path: "/session", tag: "accounts", status: ok, public: true,
		summary: "Log in (account and password, or an API token): sets the HttpOnly session cookie and answers the CSRF token for writes; failed log-ins are throttled (429)",
		query:   typeOf[none](), body: typeOf[api.SessionLogin](), resp: typeOf[api.Session](),
		serve: func(w http.ResponseWriter, r *http.Request, _ domain.Principal) error {
			var b api.SessionLogin
			if err := decodeBody(r, &b); err != nil {
				return err
			}
			var login accounts.Login
			var err error
			auditOf(w).tried(b.Account)
			switch {
			case b.Token != "" && (b.Account != "" || b.Password != ""):
				return &badRequest{field: "token", msg: "token: give an API token, or an account and a password, not both"}
			case b.Token != "":
				login, err = svc.Accounts.LoginToken(r.Context(), b.Token, clientAddr(r))
			case b.Account == "" || b.Password == "":
				return &badRequest{field: "account", msg: "account and password (or token) are required"}
			default:
				login, err = svc.Accounts.LoginPassword(r.Context(), b.Account, b.Password, clientAddr(r))
			}
			var th *accounts.ThrottledError
			if errors.As(err, &th) {
				w.Header().Set("Retry-After", strconv.Itoa(int(th.RetryAfter.Round(time.Second)/time.Second)+1))
			}
			if err != nil {
				return err
			}
			auditOf(w).principal(login.Principal)
			setSessionCookie(w, r, login.Secret, login.Expires)
			return writeJSON(w, ok, api.Session{Account: login.Principal.AccountName, Role: string(login.Principal.Role), CSRFToken: login.CSRF, ExpiresAt: login.Expires})
		}})
	add(h, "GET", "/session", "accounts", "The caller's session: account, role, and (with the session cookie) the CSRF token and end", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Session, error) {
			out := api.Session{Account: p.AccountName, Role: string(p.Role)}
			if c, err := r.Cookie(SessionCookie); err == nil && r.Header.Get("Authorization") == "" {
				_, end, err := svc.Accounts.Session(ctx, c.Value)
				if err != nil {
					return out, err
				}
				out.CSRFToken, out.ExpiresAt = accounts.CSRFOf(c.Value), end
			}
			return out, nil
		})
	h.routes = append(h.routes, route{method: "DELETE", path: "/session", tag: "accounts", status: ok,
		summary: "Log out: ends the session and clears its cookie",
		query:   typeOf[none](), body: typeOf[api.Empty](), resp: typeOf[api.Empty](),
		serve: func(w http.ResponseWriter, r *http.Request, _ domain.Principal) error {
			if c, err := r.Cookie(SessionCookie); err == nil {
				if err := svc.Accounts.Logout(r.Context(), c.Value); err != nil {
					return err
				}
			}
			setSessionCookie(w, r, "", time.Time{})
			return writeJSON(w, ok, api.Empty{})
		}})
	add(h, "PUT", "/accounts/{account}/password", "accounts", "Set an account's console password (admin: any account; a user: their own, with current_password); its sessions end", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.PasswordUpdate) (api.Account, error) {
			a, err := svc.Accounts.SetPassword(ctx, p, r.PathValue("account"), b.Password, b.CurrentPassword)
			return accountToAPI(a, nil), err
		})
}
