package remotes

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/seal"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/store"
)

// Object key prefixes in a bucket.
const (
	objectPrefix   = "knib/o/"
	manifestPrefix = "knib/m/"
)

// CopyBackup records a copy of a backup on a remote and queues the job that
// uploads it (`knib backup copy ID --to R`). keepDays > 0 deletes the copy
// that many days after it was made (once its lock and its chain allow). A
// backup with a copy on that remote already gets that copy back.
func (s *Service) CopyBackup(ctx context.Context, p domain.Principal, backupID, remoteRef string, keepDays int) (domain.BackupCopy, error) {
	b, err := s.k.Backup(ctx, p, backupID)
	if err != nil {
		return domain.BackupCopy{}, err
	}
	if err := domain.ValidateRef("remote", remoteRef); err != nil {
		return domain.BackupCopy{}, err
	}
	if keepDays < 0 || keepDays > domain.MaxLockDays {
		return domain.BackupCopy{}, domain.Invalid("keep_days", "must be 0 (kept until deleted) to %d, got %d", domain.MaxLockDays, keepDays)
	}
	r, err := s.store.Remote(ctx, remoteRef)
	if err != nil {
		return domain.BackupCopy{}, err
	}
	if b.Status != domain.BackupBackedUp {
		return domain.BackupCopy{}, fmt.Errorf("backup %s is %s; only BackedUp backups can be copied: %w", b.ID, b.Status, domain.ErrConflict)
	}
	return s.queueCopy(ctx, b, r, keepDays)
}

// queueCopy records the copy (or finds the one there is) and queues its job.
func (s *Service) queueCopy(ctx context.Context, b domain.Backup, r domain.Remote, keepDays int) (domain.BackupCopy, error) {
	if c, ok, err := s.liveCopy(ctx, b.ID, r.ID); err != nil || ok {
		if err == nil && c.State != domain.CopyCopied {
			err = s.enqueue(ctx, b)
		}
		return c, err
	}
	c, err := s.newCopy(ctx, b.ID, r.ID, keepDays)
	if err != nil {
		return c, err
	}
	return c, s.enqueue(ctx, b)
}

// newCopy records a Queued copy with a fresh salt.
func (s *Service) newCopy(ctx context.Context, backupID, remoteID string, keepDays int) (domain.BackupCopy, error) {
	salt, err := seal.NewSalt()
	if err != nil {
		return domain.BackupCopy{}, err
	}
	now := s.k.Clock().Now()
	c := domain.BackupCopy{ID: domain.NewID(), BackupID: backupID, RemoteID: remoteID, State: domain.CopyQueued, Salt: hex.EncodeToString(salt), Created: now}
	if keepDays > 0 {
		c.KeepUntil = now.AddDate(0, 0, keepDays)
	}
	if err := s.store.CreateCopy(ctx, c); err != nil {
		return c, err
	}
	return c, nil
}

// liveCopy returns the backup's copy on the remote that is not Failed.
func (s *Service) liveCopy(ctx context.Context, backupID, remoteID string) (domain.BackupCopy, bool, error) {
	list, err := s.store.Copies(ctx, store.CopyFilter{BackupID: backupID, RemoteID: remoteID})
	if err != nil {
		return domain.BackupCopy{}, false, err
	}
	for _, c := range slices.Backward(list) {
		if c.State != domain.CopyFailed {
			return c, true, nil
		}
	}
	return domain.BackupCopy{}, false, nil
}

// enqueue queues the backup's copy job unless one is queued or running.
func (s *Service) enqueue(ctx context.Context, b domain.Backup) error {
	if busy, err := s.copyJobActive(ctx, b.ID); err != nil || busy {
		return err
	}
	return s.k.Enqueue(ctx, jobs.BackupCopy, b)
}

// copyJobActive reports whether a backup has a copy job queued or running.
func (s *Service) copyJobActive(ctx context.Context, backupID string) (bool, error) {
	return s.jobActive(ctx, backupID, jobs.BackupCopy)
}

// jobActive reports whether a backup has a job of one of the types queued
// or running.
func (s *Service) jobActive(ctx context.Context, backupID string, types ...jobs.Type) (bool, error) {
	for _, typ := range types {
		list, err := s.store.Jobs(ctx, store.JobFilter{BackupID: backupID, Type: typ, All: true})
		if err != nil {
			return false, err
		}
		for _, j := range list {
			if j.State == jobs.Queued || j.State == jobs.Running {
				return true, nil
			}
		}
	}
	return false, nil
}

// CopyTask is where a copy job's agent tasks run.
type CopyTask struct {
	Agent   agentapi.Agent
	Root    string // the backup's storage root on the host
	Attempt agentapi.JobAttempt
	Timeout time.Duration
}

// RunCopyJob is one attempt of a BackupCopy job: every queued copy of the
// backup is uploaded, its chain's missing copies first. ErrNotNow while the
// backup's compression has not ended (the copy takes the final files), or
// while a parent's own copy job is queued or running.
func (s *Service) RunCopyJob(ctx context.Context, t CopyTask, b domain.Backup) error {
	if b.CompressionStatus == domain.Compressing || b.CompressionStatus == domain.FinalizingCompression {
		return ErrNotNow
	}
	if pending, err := s.jobActive(ctx, b.ID, jobs.StartCompression, jobs.FinalizeCompression); err != nil || pending {
		if err == nil {
			err = ErrNotNow
		}
		return err
	}
	list, err := s.store.Copies(ctx, store.CopyFilter{BackupID: b.ID})
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.State != domain.CopyQueued && c.State != domain.CopyCopying {
			continue
		}
		r, err := s.store.Remote(ctx, c.RemoteID)
		if err != nil {
			return err
		}
		if err := s.copyWithChain(ctx, t, b, c, r); err != nil {
			return fmt.Errorf("copy to remote %s: %w", r.Name, err)
		}
	}
	return nil
}

// CopyJobFailed records that a backup's copy job gave up: its queued and
// running copies become Failed with the reason.
func (s *Service) CopyJobFailed(ctx context.Context, backupID, why string) {
	list, err := s.store.Copies(ctx, store.CopyFilter{BackupID: backupID})
	if err != nil {
		s.k.Log().Error("record a failed copy", "backup", backupID, "err", err)
		return
	}
	for _, c := range list {
		if c.State == domain.CopyQueued || c.State == domain.CopyCopying {
			c.State, c.Error = domain.CopyFailed, why
			if err := s.store.SaveCopy(ctx, c); err != nil {
				s.k.Log().Error("record a failed copy", "backup", backupID, "copy", c.ID, "err", err)
			}
		}
	}
}

// copyWithChain uploads c (of backup b) after the copies its chain needs
// on the same remote: a copy of an incremental backup needs its parent's.
func (s *Service) copyWithChain(ctx context.Context, t CopyTask, b domain.Backup, c domain.BackupCopy, r domain.Remote) error {
	key, err := seal.ParseKey(r.Key)
	if err != nil {
		return fmt.Errorf("stored key: %w", err)
	}
	bucket, err := s.bucket(r)
	if err != nil {
		return err
	}
	all, err := s.store.ListBackups(ctx, store.BackupFilter{VMID: b.VMID})
	if err != nil {
		return err
	}
	byID := map[string]domain.Backup{}
	for _, x := range all {
		byID[x.ID] = x
	}
	byID[b.ID] = b
	chain := kernel.ChainAncestors(all, b.ID) // b, its parent, ... the full
	if len(chain) == 0 {
		chain = []string{b.ID}
	}
	lockUntil := time.Time{}
	if r.LockDays > 0 {
		lockUntil = s.k.Clock().Now().AddDate(0, 0, r.LockDays)
	}
	var ancestors []domain.BackupCopy
	for i := len(chain) - 1; i >= 1; i-- {
		anc := byID[chain[i]]
		ac, ok, err := s.liveCopy(ctx, anc.ID, r.ID)
		if err != nil {
			return err
		}
		if !ok {
			if ac, err = s.newCopy(ctx, anc.ID, r.ID, keepDaysOf(c, s.k.Clock().Now())); err != nil {
				return err
			}
		}
		if ac.State != domain.CopyCopied {
			// The parent's own copy job, queued or running, makes it: this
			// one waits rather than upload the same objects beside it.
			if busy, err := s.copyJobActive(ctx, anc.ID); err != nil || busy {
				if err == nil {
					err = ErrNotNow
				}
				return err
			}
			if ac, err = s.copyOne(ctx, t, anc, ac, r, key, bucket, lockUntil); err != nil {
				return fmt.Errorf("the copy of parent backup %s: %w", anc.ID, err)
			}
		}
		ancestors = append(ancestors, ac)
	}
	if _, err := s.copyOne(ctx, t, b, c, r, key, bucket, lockUntil); err != nil {
		return err
	}
	// A parent stays locked at least as long as its youngest child.
	for _, ac := range ancestors {
		if err := s.extendLock(ctx, bucket, ac, r, lockUntil); err != nil {
			return err
		}
	}
	return nil
}

// keepDaysOf is the keep period of c in whole days from now (0: kept).
func keepDaysOf(c domain.BackupCopy, now time.Time) int {
	if c.KeepUntil.IsZero() {
		return 0
	}
	return max(1, int(c.KeepUntil.Sub(now).Hours()/24+0.5))
}

// copyOne uploads one backup's files and then its manifest. Idempotent:
// objects already in the bucket are not sent again, an interrupted upload
// resumes (the sealed bytes derive from the copy's recorded salt).
func (s *Service) copyOne(ctx context.Context, t CopyTask, b domain.Backup, c domain.BackupCopy, r domain.Remote, key seal.Key, bucket offsite.Bucket, lockUntil time.Time) (domain.BackupCopy, error) {
	if c.State != domain.CopyCopying {
		c.State, c.Error = domain.CopyCopying, ""
		if err := s.store.SaveCopy(ctx, c); err != nil {
			return c, err
		}
	}
	req := agentapi.OffsitePutRequest{InStorage: agentapi.InStorage{Storage: t.Root}, JobAttempt: t.Attempt, Remote: agentRemote(r)}
	if !lockUntil.IsZero() {
		req.LockMode, req.LockUntil = string(lockMode(r.LockMode)), lockUntil
	}
	disks := map[string]string{}
	for _, f := range b.Files {
		req.Objects = append(req.Objects, agentapi.PutObject{Path: f.Path, Key: objectKey(key, c.ID, f.Path), Salt: c.Salt, Hash: f.Hash})
		disks[f.Path] = f.Disk
	}
	req.Extras = agentapi.Extras{Dir: b.Dir, Copy: c.ID, Salt: c.Salt, ObjectPrefix: objectPrefix}
	res, err := kernel.Run(ctx, t.Agent, agentapi.OffsitePut, req, t.Timeout, nil, 0, 100)
	if err != nil {
		return c, err
	}
	hashOf := map[string]string{}
	for _, f := range b.Files {
		hashOf[f.Path] = f.Hash
	}
	c.Objects, c.Size = nil, 0
	for _, o := range res.Objects {
		path := o.Path
		if want := objectKey(key, c.ID, path); o.Key != want {
			return c, fmt.Errorf("the agent reported object %s for %s, want %s", o.Key, path, want)
		}
		c.Objects = append(c.Objects, domain.CopyObject{Path: path, Disk: disks[path], Key: o.Key, VersionID: o.VersionID, Size: o.Size, PlainSize: o.PlainSize, Hash: hashOf[path]})
		c.Size += o.Size
	}
	now := s.k.Clock().Now()
	c.LockUntil, c.Copied = lockUntil, now
	m, err := s.manifestOf(ctx, b, c)
	if err != nil {
		return c, err
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return c, err
	}
	// A manifest gets a fresh salt each time it is written: its bytes
	// change between attempts (times, versions), and a salt must never
	// seal two different texts under one name.
	salt, err := seal.NewSalt()
	if err != nil {
		return c, err
	}
	mkey := manifestPrefix + key.ObjectName("manifest", c.ID)
	sealed, err := seal.Seal(key, salt, mkey, raw)
	if err != nil {
		return c, err
	}
	info, err := bucket.Put(ctx, mkey, bytes.NewReader(sealed), int64(len(sealed)), offsite.Lock{Mode: lockMode(r.LockMode), Until: lockUntil}, nil)
	if err != nil {
		return c, fmt.Errorf("write the manifest: %w", err)
	}
	c.ManifestKey, c.ManifestVersion, c.Size = mkey, info.VersionID, c.Size+info.Size
	c.State = domain.CopyCopied
	if err := s.store.SaveCopy(ctx, c); err != nil {
		return c, err
	}
	s.k.Log().Info("backup copied", "backup", b.ID, "remote", r.Name, "objects", len(c.Objects), "bytes", c.Size, "lock_until", lockUntil)
	return c, nil
}

// objectKey is the bucket key of one file of a copy (the agent names a
// backup directory's other files the same way: agentapi.Extras).
func objectKey(key seal.Key, copyID, path string) string {
	return objectPrefix + key.ObjectName("object", copyID, path)
}

// extendLock extends the lock of every object of a copy to until (never
// shortening it) and records it.
func (s *Service) extendLock(ctx context.Context, bucket offsite.Bucket, c domain.BackupCopy, r domain.Remote, until time.Time) error {
	if until.IsZero() || !c.LockUntil.Before(until) {
		return nil
	}
	lock := offsite.Lock{Mode: lockMode(r.LockMode), Until: until}
	for _, o := range c.Objects {
		if err := bucket.ExtendLock(ctx, o.Key, o.VersionID, lock); err != nil {
			return fmt.Errorf("extend the lock of parent copy %s: %w", c.ID, err)
		}
	}
	if c.ManifestKey != "" {
		if err := bucket.ExtendLock(ctx, c.ManifestKey, c.ManifestVersion, lock); err != nil {
			return fmt.Errorf("extend the lock of parent copy %s: %w", c.ID, err)
		}
	}
	c.LockUntil = until
	return s.store.SaveCopy(ctx, c)
}

// agentRemote is a remote as an agent task gets it (with its secrets).
func agentRemote(r domain.Remote) agentapi.Remote {
	return agentapi.Remote{Endpoint: r.Endpoint, Bucket: r.Bucket, Region: r.Region, AccessKey: r.AccessKey, SecretKey: r.SecretKey, Key: r.Key, BandwidthBps: r.BandwidthBps}
}

// Copies lists a backup's copies the principal may see.
func (s *Service) Copies(ctx context.Context, p domain.Principal, backupID string) ([]domain.BackupCopy, error) {
	if _, err := s.k.Backup(ctx, p, backupID); err != nil {
		return nil, err
	}
	return s.store.Copies(ctx, store.CopyFilter{BackupID: backupID})
}

// CopiesOf lists the copies of several backups (for backup lists), keyed
// by backup id; the caller has checked that the principal sees them.
func (s *Service) CopiesOf(ctx context.Context, backupIDs []string) (map[string][]domain.BackupCopy, error) {
	list, err := s.store.Copies(ctx, store.CopyFilter{BackupIDs: backupIDs})
	if err != nil {
		return nil, err
	}
	out := map[string][]domain.BackupCopy{}
	for _, c := range list {
		out[c.BackupID] = append(out[c.BackupID], c)
	}
	return out, nil
}
