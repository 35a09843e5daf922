package remotes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/store"
)

// SetPolicy sets an offering's copy policy (admin): copy every backup, or
// the last backup of each day or week (UTC), to a remote and keep the
// copies keepDays there (0: until deleted by hand).
func (s *Service) SetPolicy(ctx context.Context, p domain.Principal, offeringID, remoteRef, every string, keepDays int) (domain.CopyPolicy, error) {
	if err := p.RequireAdmin("setting a copy policy"); err != nil {
		return domain.CopyPolicy{}, err
	}
	if err := domain.ValidateRef("offering", offeringID); err != nil {
		return domain.CopyPolicy{}, err
	}
	if err := domain.ValidateRef("remote", remoteRef); err != nil {
		return domain.CopyPolicy{}, err
	}
	e, err := domain.ParseCopyEvery(every)
	if err != nil {
		return domain.CopyPolicy{}, err
	}
	if keepDays < 0 || keepDays > domain.MaxLockDays {
		return domain.CopyPolicy{}, domain.Invalid("keep_days", "must be 0 (kept until deleted) to %d, got %d", domain.MaxLockDays, keepDays)
	}
	off, err := s.store.Offering(ctx, offeringID)
	if err != nil {
		return domain.CopyPolicy{}, err
	}
	r, err := s.store.Remote(ctx, remoteRef)
	if err != nil {
		return domain.CopyPolicy{}, err
	}
	pol := domain.CopyPolicy{OfferingID: off.ID, RemoteID: r.ID, Every: e, KeepDays: keepDays}
	if e != domain.CopyEach {
		// Backups from now on: the current period is the first one swept.
		pol.SweptUntil = e.Period(s.k.Clock().Now())
	}
	if err := s.store.SetCopyPolicy(ctx, pol); err != nil {
		return domain.CopyPolicy{}, err
	}
	return pol, nil
}

// RemovePolicy removes an offering's copy policy (admin); copies made stay.
func (s *Service) RemovePolicy(ctx context.Context, p domain.Principal, offeringID string) error {
	if err := p.RequireAdmin("removing a copy policy"); err != nil {
		return err
	}
	if err := domain.ValidateRef("offering", offeringID); err != nil {
		return err
	}
	off, err := s.store.Offering(ctx, offeringID)
	if err != nil {
		return err
	}
	return s.store.SetCopyPolicy(ctx, domain.CopyPolicy{OfferingID: off.ID})
}

// BackupTaken queues the copy of a backup that was just taken when its
// offering copies every backup. A failure is logged: the backup stands.
func (s *Service) BackupTaken(ctx context.Context, b domain.Backup) {
	pol, err := s.store.CopyPolicy(ctx, b.OfferingID)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && pol.Every != domain.CopyEach) {
		return
	}
	if err == nil {
		var r domain.Remote
		if r, err = s.store.Remote(ctx, pol.RemoteID); err == nil {
			_, err = s.queueCopy(ctx, b, r, pol.KeepDays)
		}
	}
	if err != nil {
		s.k.Log().Warn("queue the offsite copy of a new backup", "backup", b.ID, "err", err)
	}
}

// RunPolicies is one round of the copy policies: each daily or weekly
// policy whose period ended picks, for every VM of its offering, the last
// backup of that period and queues its copy (exactly once, also with
// several servers: the period is claimed with a conditional update); then
// copies past their keep period are deleted where their locks and chains
// allow.
func (s *Service) RunPolicies(ctx context.Context) error {
	pols, err := s.store.CopyPolicies(ctx)
	if err != nil {
		return err
	}
	now := s.k.Clock().Now()
	for _, pol := range pols {
		if pol.Every == domain.CopyEach {
			continue
		}
		for start := pol.SweptUntil; !start.IsZero() && !pol.Every.Next(start).After(now); start = pol.Every.Next(start) {
			end := pol.Every.Next(start)
			won, err := s.store.AdvanceCopyPolicy(ctx, pol.OfferingID, start, end)
			if err != nil {
				return err
			}
			if !won {
				break // another server swept it
			}
			if err := s.sweep(ctx, pol, start, end); err != nil {
				s.k.Log().Warn("copy policy: queue a period's copies", "offering", pol.OfferingID, "period", start, "err", err)
			}
		}
	}
	return s.expire(ctx, now)
}

// sweep queues the copy of each VM's last backup in [start, end).
func (s *Service) sweep(ctx context.Context, pol domain.CopyPolicy, start, end time.Time) error {
	r, err := s.store.Remote(ctx, pol.RemoteID)
	if err != nil {
		return err
	}
	backups, err := s.store.ListBackups(ctx, store.BackupFilter{Status: domain.BackupBackedUp})
	if err != nil {
		return err
	}
	last := map[string]domain.Backup{}
	for _, b := range backups {
		if b.OfferingID != pol.OfferingID || b.Created.Before(start) || !b.Created.Before(end) {
			continue
		}
		if cur, ok := last[b.VMID]; !ok || b.Created.After(cur.Created) {
			last[b.VMID] = b
		}
	}
	for _, b := range last {
		if _, err := s.queueCopy(ctx, b, r, pol.KeepDays); err != nil {
			return fmt.Errorf("backup %s: %w", b.ID, err)
		}
	}
	return nil
}

// expire deletes copies past their keep period whose lock has ended and
// that no younger copy of their chain on the same remote still needs, and
// forgets failed copies after removing what they left.
func (s *Service) expire(ctx context.Context, now time.Time) error {
	all, err := s.store.Copies(ctx, store.CopyFilter{})
	if err != nil {
		return err
	}
	due := func(c domain.BackupCopy) bool {
		past := c.State == domain.CopyFailed || (c.State == domain.CopyCopied && !c.KeepUntil.IsZero() && now.After(c.KeepUntil))
		return past && (c.LockUntil.IsZero() || !now.Before(c.LockUntil))
	}
	if !slices.ContainsFunc(all, due) {
		return nil // nothing to delete: the chains need not be read
	}
	needed := map[string]bool{} // remote/backup ids a live copy's chain needs
	for _, c := range all {
		if c.State == domain.CopyFailed || (!c.KeepUntil.IsZero() && now.After(c.KeepUntil)) {
			continue
		}
		if b, err := s.store.Backup(ctx, c.BackupID); err == nil && b.ParentID != "" && !b.Isolated {
			for id := b.ParentID; id != ""; {
				needed[c.RemoteID+"/"+id] = true
				p, err := s.store.Backup(ctx, id)
				if err != nil {
					break
				}
				id = p.ParentID
			}
		}
	}
	for _, c := range all {
		if !due(c) || needed[c.RemoteID+"/"+c.BackupID] {
			continue
		}
		if err := s.deleteCopy(ctx, c); err != nil {
			s.k.Log().Warn("delete an expired copy", "copy", c.ID, "backup", c.BackupID, "err", err)
		}
	}
	return nil
}

// deleteCopy removes a copy's objects (every version) and forgets it.
func (s *Service) deleteCopy(ctx context.Context, c domain.BackupCopy) error {
	r, err := s.store.Remote(ctx, c.RemoteID)
	if err != nil {
		return err
	}
	b, err := s.bucket(r)
	if err != nil {
		return err
	}
	keys := []string{c.ManifestKey}
	for _, o := range c.Objects {
		keys = append(keys, o.Key)
	}
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := b.Delete(ctx, k, ""); err != nil && !errors.Is(err, offsite.ErrNotFound) {
			return err
		}
	}
	s.k.Log().Info("offsite copy deleted", "copy", c.ID, "backup", c.BackupID, "remote", r.Name, "state", c.State)
	return s.store.DeleteCopy(ctx, c.ID)
}

// ShowPolicy returns an offering's copy policy (admin; ErrNotFound when it
// has none).
func (s *Service) ShowPolicy(ctx context.Context, p domain.Principal, offeringID string) (domain.CopyPolicy, error) {
	if err := p.RequireAdmin("showing a copy policy"); err != nil {
		return domain.CopyPolicy{}, err
	}
	if err := domain.ValidateRef("offering", offeringID); err != nil {
		return domain.CopyPolicy{}, err
	}
	off, err := s.store.Offering(ctx, offeringID)
	if err != nil {
		return domain.CopyPolicy{}, err
	}
	return s.store.CopyPolicy(ctx, off.ID)
}
