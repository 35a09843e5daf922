package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// TargetSpec is a target as an admin adds it.
type TargetSpec struct {
	Name     string   `json:"name"`
	Webhook  string   `json:"webhook,omitempty"` // URL
	Secret   string   `json:"secret,omitempty"`  // webhook HMAC key or SMTP password
	SMTP     string   `json:"smtp,omitempty"`    // host:port
	From     string   `json:"from,omitempty"`
	To       []string `json:"to,omitempty"`
	User     string   `json:"user,omitempty"`
	StartTLS string   `json:"starttls,omitempty"` // required (default) or none
}

// TargetView is a target as lists show it: never its secret.
type TargetView struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Kind      string   `json:"kind"`
	URL       string   `json:"url,omitempty"`
	Addr      string   `json:"smtp,omitempty"`
	From      string   `json:"from,omitempty"`
	To        []string `json:"to,omitempty"`
	User      string   `json:"user,omitempty"`
	StartTLS  string   `json:"starttls,omitempty"`
	HasSecret bool     `json:"has_secret"`
}

// View hides a target's secret.
func View(t store.NotifyTarget) TargetView {
	v := TargetView{ID: t.ID, Name: t.Name, Kind: t.Kind, URL: t.URL, Addr: t.Addr, From: t.From, To: t.To, User: t.User, HasSecret: t.Secret != ""}
	if t.Kind == store.NotifySMTP {
		v.StartTLS = t.StartTLS
	}
	return v
}

// AdminStore is what the admin commands need besides Store.
type AdminStore interface {
	Zone(ctx context.Context, idOrName string) (domain.Zone, error)
	Account(ctx context.Context, idOrName string) (domain.Account, error)
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// AddTarget validates and stores a target.
func (s *Service) AddTarget(ctx context.Context, p domain.Principal, spec TargetSpec) (TargetView, error) {
	if err := p.RequireAdmin("add a notification target"); err != nil {
		return TargetView{}, err
	}
	if !validName(spec.Name) {
		return TargetView{}, domain.Invalid("name", "want 1-64 letters, digits, '-', '_' or '.'")
	}
	t := store.NotifyTarget{ID: domain.NewID(), Name: spec.Name, Secret: spec.Secret, Created: s.clock.Now()}
	switch {
	case spec.Webhook != "" && spec.SMTP != "":
		return TargetView{}, domain.Invalid("webhook", "a target is a webhook or an smtp server, not both")
	case spec.Webhook != "":
		u, err := url.Parse(spec.Webhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
			return TargetView{}, domain.Invalid("webhook", "want an http or https URL without credentials")
		}
		if spec.Secret == "" {
			return TargetView{}, domain.Invalid("secret", "a webhook needs a secret to sign its messages")
		}
		if spec.From != "" || len(spec.To) > 0 || spec.User != "" || spec.StartTLS != "" {
			return TargetView{}, domain.Invalid("webhook", "from, to, user and starttls are for smtp targets")
		}
		t.Kind, t.URL = store.NotifyWebhook, u.String()
	case spec.SMTP != "":
		host, port, err := net.SplitHostPort(spec.SMTP)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			return TargetView{}, domain.Invalid("smtp", "want host:port")
		}
		if _, err := mail.ParseAddress(spec.From); err != nil || strings.ContainsAny(spec.From, "<>\r\n ") {
			return TargetView{}, domain.Invalid("from", "want a plain e-mail address")
		}
		if len(spec.To) == 0 {
			return TargetView{}, domain.Invalid("to", "want at least one recipient")
		}
		for _, to := range spec.To {
			if _, err := mail.ParseAddress(to); err != nil || strings.ContainsAny(to, "<>\r\n ,") {
				return TargetView{}, domain.Invalid("to", "%q is not a plain e-mail address", to)
			}
		}
		switch spec.StartTLS {
		case "":
			spec.StartTLS = "required"
		case "required", "none":
		default:
			return TargetView{}, domain.Invalid("starttls", "want required or none")
		}
		if (spec.User == "") != (spec.Secret == "") {
			return TargetView{}, domain.Invalid("user", "give both a user and a password, or neither")
		}
		if strings.ContainsAny(spec.User, "\r\n\x00") {
			return TargetView{}, domain.Invalid("user", "must not contain control characters")
		}
		t.Kind, t.Addr, t.From, t.To, t.User, t.StartTLS = store.NotifySMTP, spec.SMTP, spec.From, spec.To, spec.User, spec.StartTLS
	default:
		return TargetView{}, domain.Invalid("webhook", "give a webhook URL or an smtp server")
	}
	if err := s.store.CreateNotifyTarget(ctx, t); err != nil {
		return TargetView{}, err
	}
	return View(t), nil
}

// Targets lists the targets, without secrets.
func (s *Service) Targets(ctx context.Context, p domain.Principal) ([]TargetView, error) {
	if err := p.RequireAdmin("list notification targets"); err != nil {
		return nil, err
	}
	ts, err := s.store.ListNotifyTargets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TargetView, 0, len(ts))
	for _, t := range ts {
		out = append(out, View(t))
	}
	return out, nil
}

// RemoveTarget removes a target (by id or name) and its rules.
func (s *Service) RemoveTarget(ctx context.Context, p domain.Principal, ref string) error {
	if err := p.RequireAdmin("remove a notification target"); err != nil {
		return err
	}
	t, err := s.store.NotifyTarget(ctx, ref)
	if err != nil {
		return err
	}
	return s.store.RemoveNotifyTarget(ctx, t.ID)
}

// TestTarget sends a test message to a target now and returns the error.
func (s *Service) TestTarget(ctx context.Context, p domain.Principal, ref string) error {
	if err := p.RequireAdmin("test a notification target"); err != nil {
		return err
	}
	t, err := s.store.NotifyTarget(ctx, ref)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	body, err := json.Marshal(Message{Event: "test", Summary: "test notification", Sent: &now})
	if err != nil {
		return err
	}
	if err := s.senderOf(t).Send(ctx, t, Outgoing{ID: "test-" + domain.NewID(), Body: body, Now: now}); err != nil {
		return fmt.Errorf("test message to %s failed: %v: %w", t.Name, err, domain.ErrUnavailable)
	}
	return nil
}

// RuleSpec is a rule as an admin adds it.
type RuleSpec struct {
	Target  string   `json:"target"` // id or name
	Events  []string `json:"events,omitempty"`
	Zone    string   `json:"zone,omitempty"`    // id or name
	Account string   `json:"account,omitempty"` // id or name
	Digest  string   `json:"digest,omitempty"`  // "" or "daily"
}

// RuleView is a rule as lists show it.
type RuleView struct {
	ID        string   `json:"id"`
	TargetID  string   `json:"target_id"`
	Events    []string `json:"events,omitempty"`
	ZoneID    string   `json:"zone_id,omitempty"`
	AccountID string   `json:"account_id,omitempty"`
	Digest    string   `json:"digest,omitempty"`
}

func ruleView(r store.NotifyRule) RuleView {
	v := RuleView{ID: r.ID, TargetID: r.TargetID, Events: r.Events, ZoneID: r.ZoneID, AccountID: r.AccountID}
	if r.Digest {
		v.Digest = "daily"
	}
	return v
}

// AddRule validates and stores a rule.
func (s *Service) AddRule(ctx context.Context, p domain.Principal, spec RuleSpec) (RuleView, error) {
	if err := p.RequireAdmin("add a notification rule"); err != nil {
		return RuleView{}, err
	}
	t, err := s.store.NotifyTarget(ctx, spec.Target)
	if errors.Is(err, domain.ErrNotFound) {
		return RuleView{}, domain.Invalid("target", "no notification target %q", spec.Target)
	} else if err != nil {
		return RuleView{}, err
	}
	r := store.NotifyRule{ID: domain.NewID(), TargetID: t.ID, Created: s.clock.Now()}
	for _, e := range spec.Events {
		if !ValidKind(e) {
			return RuleView{}, domain.Invalid("events", "unknown event %q (want one of %s)", e, strings.Join(Kinds, ", "))
		}
		if !containsStr(r.Events, e) {
			r.Events = append(r.Events, e)
		}
	}
	if spec.Zone != "" {
		z, err := s.store.Zone(ctx, spec.Zone)
		if errors.Is(err, domain.ErrNotFound) {
			return RuleView{}, domain.Invalid("zone", "no zone %q", spec.Zone)
		} else if err != nil {
			return RuleView{}, err
		}
		r.ZoneID = z.ID
	}
	if spec.Account != "" {
		a, err := s.store.Account(ctx, spec.Account)
		if errors.Is(err, domain.ErrNotFound) {
			return RuleView{}, domain.Invalid("account", "no account %q", spec.Account)
		} else if err != nil {
			return RuleView{}, err
		}
		r.AccountID = a.ID
	}
	switch spec.Digest {
	case "":
	case "daily":
		r.Digest = true
	default:
		return RuleView{}, domain.Invalid("digest", "want daily or nothing")
	}
	if err := s.store.CreateNotifyRule(ctx, r); err != nil {
		return RuleView{}, err
	}
	return ruleView(r), nil
}

// Rules lists the rules.
func (s *Service) Rules(ctx context.Context, p domain.Principal) ([]RuleView, error) {
	if err := p.RequireAdmin("list notification rules"); err != nil {
		return nil, err
	}
	rs, err := s.store.ListNotifyRules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RuleView, 0, len(rs))
	for _, r := range rs {
		out = append(out, ruleView(r))
	}
	return out, nil
}

// RemoveRule removes a rule.
func (s *Service) RemoveRule(ctx context.Context, p domain.Principal, id string) error {
	if err := p.RequireAdmin("remove a notification rule"); err != nil {
		return err
	}
	return s.store.RemoveNotifyRule(ctx, id)
}

// DeliveryView is one line of the notification log.
type DeliveryView struct {
	ID          string          `json:"id"`
	TargetID    string          `json:"target_id"`
	Condition   string          `json:"condition,omitempty"`
	Event       string          `json:"event"`
	State       string          `json:"state"` // pending, delivered, failed
	Attempts    int             `json:"attempts"`
	NextAttempt string          `json:"next_attempt,omitempty"`
	LastError   string          `json:"last_error,omitempty"`
	Delivered   string          `json:"delivered,omitempty"`
	Created     string          `json:"created"`
	Payload     json.RawMessage `json:"payload"`
}

// Log lists deliveries, newest first (state: "", pending, delivered, failed).
func (s *Service) Log(ctx context.Context, p domain.Principal, state string, limit int) ([]DeliveryView, error) {
	if err := p.RequireAdmin("read the notification log"); err != nil {
		return nil, err
	}
	ds, err := s.store.ListDeliveries(ctx, store.NotifyDeliveryFilter{State: state, Page: store.Page{Limit: limit}})
	if err != nil {
		return nil, err
	}
	out := make([]DeliveryView, 0, len(ds))
	for _, d := range ds {
		v := DeliveryView{ID: d.ID, TargetID: d.TargetID, Condition: d.ConditionKey, Event: d.Event, Attempts: d.Attempts,
			LastError: d.LastError, Created: d.Created.Format(timeFmt), Payload: json.RawMessage(d.Payload)}
		switch {
		case !d.Delivered.IsZero():
			v.State, v.Delivered = store.DeliveriesDelivered, d.Delivered.Format(timeFmt)
		case d.Failed:
			v.State = store.DeliveriesFailed
		default:
			v.State, v.NextAttempt = store.DeliveriesPending, d.NextAttempt.Format(timeFmt)
		}
		out = append(out, v)
	}
	return out, nil
}

const timeFmt = "2006-01-02T15:04:05Z07:00"
