package remotes

import (
	"context"
	"fmt"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// Fetch is a plan to bring a backup's chain back from a remote.
type Fetch struct {
	remote  domain.Remote
	objects []agentapi.GetObject
}

// PlanFetch checks that a backup and every backup below it in its chain
// have a copy on the remote, and returns what to download: every object of
// the backup's copy and the disk files of its parents'. It changes
// nothing, so a restore refuses at once (409) when a copy is missing.
func (s *Service) PlanFetch(ctx context.Context, b domain.Backup, remoteRef string) (Fetch, error) {
	if err := domain.ValidateRef("from", remoteRef); err != nil {
		return Fetch{}, err
	}
	r, err := s.store.Remote(ctx, remoteRef)
	if err != nil {
		return Fetch{}, err
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return Fetch{}, err
	}
	chain := kernel.ChainAncestors(all, b.ID)
	if len(chain) == 0 {
		chain = []string{b.ID}
	}
	f := Fetch{remote: r}
	for i, id := range chain {
		c, ok, err := s.liveCopy(ctx, id, r.ID)
		if err != nil {
			return Fetch{}, err
		}
		if !ok || c.State != domain.CopyCopied {
			return Fetch{}, fmt.Errorf("backup %s has no finished copy on remote %s: %w", id, r.Name, domain.ErrConflict)
		}
		for _, o := range c.Objects {
			if i == 0 || o.Disk != "" {
				f.objects = append(f.objects, agentapi.GetObject{Key: o.Key, VersionID: o.VersionID, Path: o.Path, Hash: o.Hash})
			}
		}
	}
	return f, nil
}

// Run downloads the plan's objects into the storage at root through the
// agent: files already there with their recorded hash stay, the others are
// opened (a tampered object fails, naming it) and written.
func (f Fetch) Run(ctx context.Context, a agentapi.Agent, root string, timeout time.Duration, progress kernel.Progress, from, to float64) error {
	req := agentapi.OffsiteGetRequest{InStorage: agentapi.InStorage{Storage: root}, Remote: agentRemote(f.remote), Objects: f.objects}
	if _, err := kernel.Run(ctx, a, agentapi.OffsiteGet, req, timeout, progress, from, to); err != nil {
		return fmt.Errorf("fetch from remote %s: %w", f.remote.Name, err)
	}
	return nil
}
