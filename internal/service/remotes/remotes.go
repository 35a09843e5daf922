package remotes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/seal"
	"github.com/knib/knib/internal/store"
)

// AddOptions are the choices of adding a remote besides its spec.
type AddOptions struct {
	// Key, when set, is an exported remote key (seal.Key's text form): the
	// remote reads copies another installation wrote (disaster recovery).
	// Otherwise a new key is drawn.
	Key string
}

// headerKey is the remote header's object key.
const headerKey = "knib/remote.json"

// headerFormat names the bucket layout and seal format.
const headerFormat = "knib-remote-v1"

// header is the remote header: not sealed, it holds no names.
type header struct {
	Format string `json:"format"`
	Check  string `json:"key_check"`
}

// Add adds a remote (admin). It reaches the bucket, refuses one whose
// header names another key, checks the locks for real when lock days are
// set (a server that does not enforce them is refused), writes the header
// and only then records the remote: bad input or an unreachable or unsafe
// bucket change nothing in the catalogue.
func (s *Service) Add(ctx context.Context, p domain.Principal, spec domain.RemoteSpec, o AddOptions) (domain.Remote, error) {
	if err := p.RequireAdmin("adding a remote"); err != nil {
		return domain.Remote{}, err
	}
	r, err := domain.NewRemote(domain.NewID(), spec, s.k.Clock().Now())
	if err != nil {
		return r, err
	}
	if _, err := s.store.Remote(ctx, r.Name); err == nil {
		return domain.Remote{}, fmt.Errorf("remote name %q is taken: %w", r.Name, domain.ErrConflict)
	} else if !errors.Is(err, domain.ErrNotFound) {
		return domain.Remote{}, err
	}
	var key seal.Key
	if o.Key != "" {
		if key, err = seal.ParseKey(o.Key); err != nil {
			return domain.Remote{}, domain.Invalid("key", "%v", err)
		}
	} else if key, err = seal.NewKey(); err != nil {
		return domain.Remote{}, err
	}
	r.Key = key.String()
	b, err := s.bucket(r)
	if err != nil {
		return domain.Remote{}, err
	}
	found, err := s.checkHeader(ctx, b, key)
	if err != nil {
		return domain.Remote{}, err
	}
	if r.LockDays > 0 {
		verdict, err := s.checkLocks(ctx, b, r)
		if err != nil {
			return domain.Remote{}, err
		}
		if verdict != domain.LockEnforced {
			return domain.Remote{}, fmt.Errorf("remote %s is unsafe for locked copies: %s: %w", r.Name, verdict, domain.ErrConflict)
		}
		r.LockCheck, r.CheckedAt = verdict, s.k.Clock().Now()
	}
	if !found {
		if err := writeHeader(ctx, b, key); err != nil {
			return domain.Remote{}, err
		}
	}
	if err := s.store.CreateRemote(ctx, r); err != nil {
		return domain.Remote{}, err
	}
	s.k.Log().Info("remote added", "remote", r.Name, "endpoint", r.Endpoint, "bucket", r.Bucket, "lock_days", r.LockDays)
	return redact(r), nil
}

// checkHeader reads the remote header: a header with another key's check
// value is refused; found says whether there is one.
func (s *Service) checkHeader(ctx context.Context, b offsite.Bucket, key seal.Key) (found bool, err error) {
	rc, err := b.Get(ctx, headerKey, "")
	switch {
	case errors.Is(err, offsite.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read the remote header: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 64<<10))
	if err != nil {
		return false, fmt.Errorf("read the remote header: %w", err)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil || h.Format != headerFormat {
		return true, fmt.Errorf("the bucket's %s is not a knib remote header of format %s: %w", headerKey, headerFormat, domain.ErrConflict)
	}
	if h.Check != key.Check() {
		return true, fmt.Errorf("the bucket holds copies sealed with another key; add the remote with that key (--key-file): %w", domain.ErrConflict)
	}
	return true, nil
}

// writeHeader writes the remote header of a key.
func writeHeader(ctx context.Context, b offsite.Bucket, key seal.Key) error {
	raw, err := json.Marshal(header{Format: headerFormat, Check: key.Check()})
	if err != nil {
		return err
	}
	if _, err := b.Put(ctx, headerKey, bytes.NewReader(raw), int64(len(raw)), offsite.Lock{}, nil); err != nil {
		return fmt.Errorf("write the remote header: %w", err)
	}
	return nil
}

// checkLocks writes a locked canary and tries to delete it; the verdict is
// domain.LockEnforced or why the remote is unsafe.
func (s *Service) checkLocks(ctx context.Context, b offsite.Bucket, r domain.Remote) (string, error) {
	res, err := offsite.CheckLocks(ctx, b, lockMode(r.LockMode), s.k.Clock().Now(), canaryHold)
	if err != nil {
		return "", fmt.Errorf("check the locks of remote %s: %w", r.Name, err)
	}
	if res.Enforced {
		return domain.LockEnforced, nil
	}
	return res.Verdict, nil
}

func lockMode(m domain.LockMode) offsite.LockMode {
	if m == domain.LockGovernance {
		return offsite.Governance
	}
	return offsite.Compliance
}

// bucket opens a remote's bucket.
func (s *Service) bucket(r domain.Remote) (offsite.Bucket, error) {
	b, err := s.open(Config(r))
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", r.Name, err)
	}
	return b, nil
}

// Config is how to reach a remote's bucket.
func Config(r domain.Remote) offsite.Config {
	return offsite.Config{Endpoint: r.Endpoint, Bucket: r.Bucket, Region: r.Region, AccessKey: r.AccessKey, SecretKey: r.SecretKey, BandwidthBps: r.BandwidthBps}
}

// redact drops the secrets from a remote shown to a caller.
func redact(r domain.Remote) domain.Remote {
	r.SecretKey, r.Key = "", ""
	return r
}

// List lists the remotes (admin), without secrets.
func (s *Service) List(ctx context.Context, p domain.Principal) ([]domain.Remote, error) {
	if err := p.RequireAdmin("listing remotes"); err != nil {
		return nil, err
	}
	list, err := s.store.ListRemotes(ctx)
	for i := range list {
		list[i] = redact(list[i])
	}
	return list, err
}

// remote finds a remote by id or name (admin).
func (s *Service) remote(ctx context.Context, p domain.Principal, ref, what string) (domain.Remote, error) {
	if err := p.RequireAdmin(what); err != nil {
		return domain.Remote{}, err
	}
	if err := domain.ValidateRef("remote", ref); err != nil {
		return domain.Remote{}, err
	}
	return s.store.Remote(ctx, ref)
}

// Show returns one remote without secrets, with its copies' count and
// sealed bytes.
func (s *Service) Show(ctx context.Context, p domain.Principal, ref string) (domain.Remote, int, int64, error) {
	r, err := s.remote(ctx, p, ref, "showing a remote")
	if err != nil {
		return r, 0, 0, err
	}
	copies, err := s.store.Copies(ctx, store.CopyFilter{RemoteID: r.ID})
	if err != nil {
		return r, 0, 0, err
	}
	var n int
	var size int64
	for _, c := range copies {
		if c.State == domain.CopyCopied {
			n++
			size += c.Size
		}
	}
	return redact(r), n, size, nil
}

// TestResult is what `knib remote test` found.
type TestResult struct {
	Reachable   bool
	LockEnabled bool
	// LockCheck is domain.LockEnforced, or why locked copies are unsafe
	// there ("" when the remote has no lock days and the check was skipped
	// because the bucket has no Object Lock).
	LockCheck string
	Safe      bool
}

// Test reaches a remote, checks its header and its locks for real, and
// records the verdict.
func (s *Service) Test(ctx context.Context, p domain.Principal, ref string) (TestResult, error) {
	r, err := s.remote(ctx, p, ref, "testing a remote")
	if err != nil {
		return TestResult{}, err
	}
	key, err := seal.ParseKey(r.Key)
	if err != nil {
		return TestResult{}, fmt.Errorf("remote %s: stored key: %w", r.Name, err)
	}
	b, err := s.bucket(r)
	if err != nil {
		return TestResult{}, err
	}
	var res TestResult
	found, err := s.checkHeader(ctx, b, key)
	if err != nil {
		return res, err
	}
	if !found {
		if err := writeHeader(ctx, b, key); err != nil {
			return res, err
		}
	}
	res.Reachable = true
	if res.LockEnabled, err = b.LockEnabled(ctx); err != nil {
		return res, fmt.Errorf("remote %s: %w", r.Name, err)
	}
	if res.LockCheck, err = s.checkLocks(ctx, b, r); err != nil {
		return res, err
	}
	res.Safe = res.LockCheck == domain.LockEnforced || r.LockDays == 0
	if err := s.store.SetRemoteCheck(ctx, r.ID, res.LockCheck, s.k.Clock().Now()); err != nil {
		return res, err
	}
	return res, nil
}

// Remove removes a remote that holds no copies and no policy names
// (admin). The bucket is not touched.
func (s *Service) Remove(ctx context.Context, p domain.Principal, ref string) error {
	r, err := s.remote(ctx, p, ref, "removing a remote")
	if err != nil {
		return err
	}
	return s.store.DeleteRemote(ctx, r.ID)
}

// ExportKey returns a remote's key (admin): without it its copies are
// unreadable.
func (s *Service) ExportKey(ctx context.Context, p domain.Principal, ref string) (string, error) {
	r, err := s.remote(ctx, p, ref, "exporting a remote's key")
	if err != nil {
		return "", err
	}
	s.k.Log().Warn("remote key exported", "remote", r.Name)
	return r.Key, nil
}

// RemoteNames maps remote ids to names (for lists of copies; a remote
// that can't be read is left out).
func (s *Service) RemoteNames(ctx context.Context) map[string]string {
	out := map[string]string{}
	list, err := s.store.ListRemotes(ctx)
	if err != nil {
		s.k.Log().Warn("remote names", "err", err)
	}
	for _, r := range list {
		out[r.ID] = r.Name
	}
	return out
}
