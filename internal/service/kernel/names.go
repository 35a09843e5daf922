package kernel

import (
	"context"
	"sync"
)

// names remembers the names of accounts, offerings, zones and hosts by id.
// A name never changes once its row exists (none of them can be renamed),
// so the memo is true for every server on the catalogue; a lookup that
// fails is not remembered. Lists of thousands of VMs name a few hundred
// hosts and accounts: each is read once per process, not once per item.
type names struct {
	m sync.Map // [2]string{kind, id} -> name
}

func (n *names) get(ctx context.Context, kind, id string, read func(context.Context, string) (string, error)) string {
	k := [2]string{kind, id}
	if v, ok := n.m.Load(k); ok {
		return v.(string)
	}
	name, err := read(ctx, id)
	if err != nil {
		return id
	}
	n.m.Store(k, name)
	return name
}

// AccountName returns an account's name for display.
func (s *Kernel) AccountName(ctx context.Context, id string) string {
	return s.names.get(ctx, "account", id, func(ctx context.Context, id string) (string, error) {
		a, err := s.store.Account(ctx, id)
		return a.Name, err
	})
}

// OfferingName returns an offering's name for display ("" for none).
func (s *Kernel) OfferingName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	return s.names.get(ctx, "offering", id, func(ctx context.Context, id string) (string, error) {
		o, err := s.store.Offering(ctx, id)
		return o.Name, err
	})
}

// ZoneName returns a zone's name for display.
func (s *Kernel) ZoneName(ctx context.Context, id string) string {
	return s.names.get(ctx, "zone", id, func(ctx context.Context, id string) (string, error) {
		z, err := s.store.Zone(ctx, id)
		return z.Name, err
	})
}

// HostName returns a host's name for display.
func (s *Kernel) HostName(ctx context.Context, id string) string {
	return s.names.get(ctx, "host", id, func(ctx context.Context, id string) (string, error) {
		h, err := s.store.Host(ctx, id)
		return h.Name, err
	})
}
