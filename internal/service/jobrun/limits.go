package jobrun

import (
	"context"
	"sync"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/settings"
)

// familyKeys are the setting keys of a job family.
type familyKeys struct {
	enabled, perHost, perZone, retries, retryInterval, timeout string
}

var keysOf = map[jobs.Family]familyKeys{
	jobs.Compression: {settings.KeyCompressionTaskEnabled, settings.KeyCompressionMaxConcurrentPerHost, settings.KeyCompressionMaxConcurrent,
		settings.KeyCompressionMaxJobRetries, settings.KeyCompressionRetryInterval, settings.KeyCompressionTimeout},
	jobs.Validation: {settings.KeyValidationTaskEnabled, settings.KeyValidationMaxConcurrentPerHost, settings.KeyValidationMaxConcurrent,
		settings.KeyValidationMaxJobRetries, settings.KeyValidationRetryInterval, settings.KeyValidationTimeout},
	jobs.Copy: {settings.KeyCopyTaskEnabled, settings.KeyCopyMaxConcurrentPerHost, settings.KeyCopyMaxConcurrent,
		settings.KeyCopyMaxJobRetries, settings.KeyCopyRetryInterval, settings.KeyCopyTimeout},
}

// passSettings resolves the job settings of one scheduler pass. Each
// setting is read at every scope the registry accepts for it: a job
// follows its account (task.enabled, the validation retries) and the host
// it runs or ran on (the compression retries, the timeouts), and each host
// and zone has its own concurrency limit. The stored settings are read
// once per pass and every view is resolved once per target; a pass that
// cannot read them keeps the defaults (a store that cannot be read starts
// no job anyway).
type passSettings struct {
	ctx context.Context
	s   *Service

	mu     sync.Mutex // the Limits travel with the jobs they started
	read   bool
	stored []settings.Stored
	hosts  map[string]domain.Host
	views  map[settings.Target]settings.View
	limits map[limitKey]jobs.Limits
}

type limitKey struct {
	fam           jobs.Family
	host, account string
}

func (s *Service) passSettings(ctx context.Context) *passSettings {
	return &passSettings{ctx: ctx, s: s, hosts: map[string]domain.Host{}, views: map[settings.Target]settings.View{}, limits: map[limitKey]jobs.Limits{}}
}

// host returns a host (memoized; a zero host when it can't be read).
// Callers hold p.mu.
func (p *passSettings) host(id string) domain.Host {
	if id == "" {
		return domain.Host{}
	}
	if h, ok := p.hosts[id]; ok {
		return h
	}
	h, err := p.s.store.Host(p.ctx, id)
	if err != nil {
		h = domain.Host{ID: id}
	}
	p.hosts[id] = h
	return h
}

// view resolves the settings for a target. Callers hold p.mu.
func (p *passSettings) view(t settings.Target) settings.View {
	if !p.read {
		p.read = true
		if list, err := p.s.store.ListSettings(p.ctx); err == nil {
			p.stored = kernel.StoredSettings(list)
		} else {
			p.s.k.Log().Warn("job settings: read the stored settings", "err", err)
		}
	}
	if v, ok := p.views[t]; ok {
		return v
	}
	var agent map[string]string
	if t.Host != "" {
		agent = p.host(t.Host).AgentSettings
	}
	v, err := settings.NewView(t, p.stored, agent)
	if err != nil {
		p.s.k.Log().Warn("job settings: resolve", "target", t, "err", err)
		v = settings.View{}
	}
	p.views[t] = v
	return v
}

// Limits returns the limits of a job: its family's settings as seen from
// its account and its host (where it runs or ran; none while queued).
func (p *passSettings) Limits(j jobs.Job) jobs.Limits {
	p.mu.Lock()
	defer p.mu.Unlock()
	fam := j.Type.Family()
	key := limitKey{fam, j.HostID, j.AccountID}
	if l, ok := p.limits[key]; ok {
		return l
	}
	k := keysOf[fam]
	t := settings.Target{Zone: j.ZoneID, Host: j.HostID, Account: j.AccountID}
	if j.HostID != "" {
		t.Zone = p.host(j.HostID).ZoneID
	}
	v := p.view(t)
	l := jobs.Limits{
		Enabled:       v.Bool(k.enabled),
		MaxRetries:    int(v.Int(k.retries)),
		RetryInterval: v.Duration(k.retryInterval),
		Timeout:       v.Duration(k.timeout),
		PerHost:       p.limitOf(k.perHost, func(id string) settings.Target { return settings.Target{Host: id, Zone: p.host(id).ZoneID} }),
		PerZone:       p.limitOf(k.perZone, func(id string) settings.Target { return settings.Target{Zone: id} }),
	}
	p.limits[key] = l
	return l
}

// limitOf reads a per-host or per-zone limit (key) for an id.
func (p *passSettings) limitOf(key string, target func(id string) settings.Target) func(string) int64 {
	return func(id string) int64 {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.view(target(id)).Int(key)
	}
}
