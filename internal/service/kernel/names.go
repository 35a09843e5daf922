package kernel

import "context"

// AccountName returns an account's name for display.
func (s *Kernel) AccountName(ctx context.Context, id string) string {
	a, err := s.store.Account(ctx, id)
	if err != nil {
		return id
	}
	return a.Name
}

// OfferingName returns an offering's name for display ("" for none).
func (s *Kernel) OfferingName(ctx context.Context, id string) string {
	if id == "" {
		return ""
	}
	o, err := s.store.Offering(ctx, id)
	if err != nil {
		return id
	}
	return o.Name
}

// ZoneName returns a zone's name for display.
func (s *Kernel) ZoneName(ctx context.Context, id string) string {
	z, err := s.store.Zone(ctx, id)
	if err != nil {
		return id
	}
	return z.Name
}

// HostName returns a host's name for display.
func (s *Kernel) HostName(ctx context.Context, id string) string {
	h, err := s.store.Host(ctx, id)
	if err != nil {
		return id
	}
	return h.Name
}
