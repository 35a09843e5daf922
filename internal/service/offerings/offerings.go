package offerings

import (
	"context"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/store"
)

// CreateOffering validates and stores a new offering (admin).
func (s *Service) CreateOffering(ctx context.Context, p domain.Principal, spec domain.OfferingSpec) (domain.Offering, error) {
	if err := p.RequireAdmin("creating offerings"); err != nil {
		return domain.Offering{}, err
	}
	o, err := domain.NewOffering(domain.NewID(), spec, s.k.Clock().Now())
	if err != nil {
		return o, err
	}
	if err := s.store.CreateOffering(ctx, o); err != nil {
		return o, err
	}
	s.k.Log().Info("offering created", "id", o.ID, "name", o.Name)
	return o, nil
}

// ListOfferings lists offerings (admin).
func (s *Service) ListOfferings(ctx context.Context, p domain.Principal, f store.OfferingFilter) ([]domain.Offering, error) {
	if err := p.RequireAdmin("listing offerings"); err != nil {
		return nil, err
	}
	if f.ID != "" {
		if err := domain.ValidateRef("id", f.ID); err != nil {
			return nil, err
		}
	}
	return s.store.ListOfferings(ctx, f)
}

// Offering returns one offering, removed or not (admin).
func (s *Service) Offering(ctx context.Context, p domain.Principal, id string) (domain.Offering, error) {
	if err := p.RequireAdmin("reading offerings"); err != nil {
		return domain.Offering{}, err
	}
	if err := domain.ValidateRef("id", id); err != nil {
		return domain.Offering{}, err
	}
	return s.store.Offering(ctx, id)
}

// DeleteOffering marks an offering removed; refused while VMs use it (admin).
func (s *Service) DeleteOffering(ctx context.Context, p domain.Principal, id string) error {
	if err := p.RequireAdmin("deleting offerings"); err != nil {
		return err
	}
	if err := domain.ValidateRef("id", id); err != nil {
		return err
	}
	if err := s.store.RemoveOffering(ctx, id, s.k.Clock().Now()); err != nil {
		return err
	}
	s.k.Log().Info("offering removed", "id", id)
	return nil
}
