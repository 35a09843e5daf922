package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/settings"
	"github.com/knib/knib/internal/store"
)

// Store is what notifications read and write in the catalogue.
type Store interface {
	VMSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	ListBackups(ctx context.Context, f store.BackupFilter) ([]domain.Backup, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error)
	ListHostAgents(ctx context.Context) ([]store.HostAgent, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	Schedules(ctx context.Context, vmID string) ([]domain.Schedule, error)
	store.NotifyStore
	AdminStore
}

// Config is what an evaluation reads from the settings.
type Config struct {
	AgentDownAfter     time.Duration
	StorageFreePercent float64
	MaxAttempts        int
	LinkBaseURL        string
	Interval           time.Duration
}

// ConfigFrom reads the notification settings of a (global) view.
func ConfigFrom(v settings.View) Config {
	return Config{
		AgentDownAfter:     time.Duration(v.Int(settings.KeyNotifyAgentDownAfter)) * time.Second,
		StorageFreePercent: v.Float(settings.KeyNotifyStorageFreePercent),
		MaxAttempts:        int(v.Int(settings.KeyNotifyMaxAttempts)),
		LinkBaseURL:        v.Text(settings.KeyNotifyLinkBaseURL),
		Interval:           time.Duration(v.Int(settings.KeyNotifyInterval)) * time.Second,
	}
}

// Service is the notifications use case.
type Service struct {
	store    Store
	clock    clock.Clock
	log      *slog.Logger
	settings func(ctx context.Context) (Config, error)
	senders  map[string]Sender
	// screenshot reads a backup's validation screenshot (PNG) for e-mails.
	screenshot func(ctx context.Context, backupID string) ([]byte, error)
	// BackoffBase is the first retry delay (doubling up to BackoffMax).
	BackoffBase, BackoffMax time.Duration
}

// New returns the use case; cfg reads the current settings.
func New(st Store, clk clock.Clock, log *slog.Logger, cfg func(ctx context.Context) (Config, error)) *Service {
	return &Service{store: st, clock: clk, log: log, settings: cfg,
		senders:     map[string]Sender{store.NotifyWebhook: Webhook{}, store.NotifySMTP: Mailer{}},
		BackoffBase: 30 * time.Second, BackoffMax: time.Hour}
}

// SetScreenshots gives e-mails the validation screenshot of a backup.
func (s *Service) SetScreenshots(fn func(ctx context.Context, backupID string) ([]byte, error)) {
	s.screenshot = fn
}

// SetSender replaces the sender of a target kind (tests).
func (s *Service) SetSender(kind string, snd Sender) { s.senders[kind] = snd }

// Derive reads the catalogue and returns the active conditions.
func (s *Service) Derive(ctx context.Context, cfg Config) ([]Condition, error) {
	now := s.clock.Now()
	hosts, err := s.store.ListHosts(ctx)
	if err != nil {
		return nil, err
	}
	zoneOf := map[string]string{}
	for _, h := range hosts {
		zoneOf[h.ID] = h.ZoneID
	}
	vms, err := s.store.VMSummaries(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Condition
	vmZone := map[string]string{}
	for _, v := range vms {
		zone := zoneOf[v.HostID]
		vmZone[v.VMID] = zone
		d := Details{VMID: v.VMID, VM: v.Name}
		if v.WorkState == domain.VMBackupError || v.WorkState == domain.VMRestoreError {
			d := d
			d.Reason = v.LastError
			out = append(out, Condition{Key: KindVMError + "/" + v.VMID, Kind: KindVMError, ZoneID: zone, AccountID: v.AccountID,
				Summary: fmt.Sprintf("VM %s is in %s", v.Name, v.WorkState), Details: d})
		}
		if v.LastBackupStatus == domain.BackupError || v.LastBackupStatus == domain.BackupFailed {
			d := d
			d.BackupID = v.LastBackupID
			out = append(out, Condition{Key: KindBackupFailed + "/" + v.LastBackupID, Kind: KindBackupFailed, ZoneID: zone, AccountID: v.AccountID,
				Summary: fmt.Sprintf("backup %s of VM %s is %s", v.LastBackupID, v.Name, v.LastBackupStatus), Details: d})
		}
	}
	scheds, err := s.store.Schedules(ctx, "")
	if err != nil {
		return nil, err
	}
	summaries := map[string]store.VMSummary{}
	for _, v := range vms {
		summaries[v.VMID] = v
	}
	stale := map[string]bool{}
	for _, sc := range scheds {
		v, ok := summaries[sc.VMID]
		every := nominalInterval(sc.Interval)
		if !ok || every == 0 || stale[sc.VMID] {
			continue
		}
		since := v.LastGoodAt
		if since.IsZero() || since.Before(sc.Created) {
			since = sc.Created
		}
		if now.Sub(since) > 2*every {
			stale[sc.VMID] = true
			last := "never"
			if !v.LastGoodAt.IsZero() {
				last = v.LastGoodAt.Format(time.RFC3339)
			}
			out = append(out, Condition{Key: KindVMStale + "/" + v.VMID, Kind: KindVMStale, ZoneID: vmZone[v.VMID], AccountID: v.AccountID,
				Summary: fmt.Sprintf("VM %s has no good backup since %s (schedule %s)", v.Name, last, sc.Interval),
				Details: Details{VMID: v.VMID, VM: v.Name}})
		}
	}
	backups, err := s.store.ListBackups(ctx, store.BackupFilter{Status: domain.BackupBackedUp})
	if err != nil {
		return nil, err
	}
	kept := map[string]domain.Backup{}
	for _, b := range backups {
		kept[b.ID] = b
		d := Details{VMID: b.VMID, VM: b.VMName, BackupID: b.ID, Reason: b.ValidationReason}
		zone := vmZone[b.VMID]
		switch {
		case b.Damaged():
			out = append(out, Condition{Key: KindBackupChanged + "/" + b.ID, Kind: KindBackupChanged, ZoneID: zone, AccountID: b.AccountID,
				Summary: fmt.Sprintf("backup %s of VM %s changed since it was written", b.ID, b.VMName), Details: d})
		case b.ValidationStatus == domain.NotValid || b.ValidationStatus == domain.UnableToValidate:
			if b.HasScreenshot {
				d.ScreenshotURL = screenshotURL(cfg.LinkBaseURL, b.ID)
			}
			out = append(out, Condition{Key: KindValidationFailed + "/" + b.ID, Kind: KindValidationFailed, ZoneID: zone, AccountID: b.AccountID,
				Summary: fmt.Sprintf("backup %s of VM %s is %s", b.ID, b.VMName, b.ValidationStatus), Details: d})
		}
		if b.CompressionStatus == domain.CompressionError {
			out = append(out, Condition{Key: KindCompressionFailed + "/" + b.ID, Kind: KindCompressionFailed, ZoneID: zone, AccountID: b.AccountID,
				Summary: fmt.Sprintf("compression of backup %s of VM %s failed", b.ID, b.VMName), Details: Details{VMID: b.VMID, VM: b.VMName, BackupID: b.ID}})
		}
	}
	all, err := s.store.Jobs(ctx, store.JobFilter{All: true})
	if err != nil {
		return nil, err
	}
	// A job failed for good counts while its backup is kept and no later
	// job of its type for that backup succeeded.
	succeeded := map[string]time.Time{}
	for _, j := range all {
		if j.State == jobs.Succeeded {
			k := string(j.Type) + "/" + j.BackupID
			if j.Ended.After(succeeded[k]) {
				succeeded[k] = j.Ended
			}
		}
	}
	for _, j := range all {
		b, ok := kept[j.BackupID]
		if j.State != jobs.Failed || !ok || succeeded[string(j.Type)+"/"+j.BackupID].After(j.Ended) {
			continue
		}
		out = append(out, Condition{Key: KindJobExhausted + "/" + j.ID, Kind: KindJobExhausted, ZoneID: j.ZoneID, AccountID: b.AccountID,
			Summary: fmt.Sprintf("%s job %s of backup %s failed after %d attempts", j.Type, j.ID, j.BackupID, j.Attempts),
			Details: Details{VMID: j.VMID, VM: b.VMName, BackupID: j.BackupID, JobID: j.ID, Reason: j.LastError}})
	}
	agents, err := s.store.ListHostAgents(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range agents {
		if a.Revoked || a.Connection != store.AgentDisconnected || now.Sub(a.Since) < cfg.AgentDownAfter {
			continue
		}
		out = append(out, Condition{Key: KindAgentDown + "/" + a.HostID, Kind: KindAgentDown, ZoneID: zoneOf[a.HostID],
			Summary: fmt.Sprintf("the agent of host %s is disconnected since %s", a.HostID, a.Since.Format(time.RFC3339)),
			Details: Details{HostID: a.HostID}})
	}
	storages, err := s.store.ListStorages(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, st := range storages {
		if st.Capacity <= 0 || float64(st.Free)*100 >= float64(st.Capacity)*cfg.StorageFreePercent {
			continue
		}
		out = append(out, Condition{Key: KindStorageLow + "/" + st.ID, Kind: KindStorageLow, ZoneID: st.ZoneID,
			Summary: fmt.Sprintf("storage %s has %d of %d bytes free (below %g%%)", st.Name, st.Free, st.Capacity, cfg.StorageFreePercent),
			Details: Details{StorageID: st.ID}})
	}
	return out, nil
}

// nominalInterval is a schedule's period; 0 for an unknown interval.
func nominalInterval(interval string) time.Duration {
	switch strings.ToLower(interval) {
	case "hourly":
		return time.Hour
	case "daily":
		return 24 * time.Hour
	case "weekly":
		return 7 * 24 * time.Hour
	case "monthly":
		return 31 * 24 * time.Hour
	}
	return 0
}

func screenshotURL(base, backupID string) string {
	p := "/api/v1/backups/" + url.PathEscape(backupID) + "/screenshot"
	if base == "" {
		return p
	}
	return strings.TrimRight(base, "/") + p
}

// Result counts what an evaluation did.
type Result struct {
	Active, Fired, Resolved, Digests int
}

// Evaluate derives the active conditions, fires the new ones and resolves
// the ones gone, enqueueing their deliveries, and enqueues the digests of
// the last whole day. Safe to run on several servers at once: every write
// is conditional.
func (s *Service) Evaluate(ctx context.Context) (Result, error) {
	var r Result
	cfg, err := s.settings(ctx)
	if err != nil {
		return r, err
	}
	rules, err := s.store.ListNotifyRules(ctx)
	if err != nil {
		return r, err
	}
	if len(rules) == 0 {
		// Notifications are off: not even the catalogue is read. What is
		// active when the first rule comes is notified then.
		return r, nil
	}
	found, err := s.Derive(ctx, cfg)
	if err != nil {
		return r, fmt.Errorf("derive conditions: %w", err)
	}
	r.Active = len(found)
	active, err := s.store.ActiveConditions(ctx)
	if err != nil {
		return r, err
	}
	now := s.clock.Now()
	was := map[string]store.NotifyCondition{}
	for _, c := range active {
		was[c.Key] = c
	}
	is := map[string]bool{}
	for _, c := range found {
		is[c.Key] = true
		if _, ok := was[c.Key]; ok {
			continue
		}
		msg := Message{Event: store.DeliveryFiring, Key: c.Key, Kind: c.Kind, Summary: c.Summary, ZoneID: c.ZoneID, AccountID: c.AccountID,
			FirstSeen: now, Details: &c.Details}
		ds, err := deliveries(rules, c.Kind, c.ZoneID, c.AccountID, c.Key, msg, now)
		if err != nil {
			return r, err
		}
		ok, err := s.store.FireCondition(ctx, store.NotifyCondition{Key: c.Key, Kind: c.Kind, ZoneID: c.ZoneID, AccountID: c.AccountID,
			Summary: c.Summary, FirstSeen: now}, ds)
		if err != nil {
			return r, fmt.Errorf("fire %s: %w", c.Key, err)
		}
		if ok {
			r.Fired++
			s.log.Info("notification condition", "key", c.Key, "summary", c.Summary, "deliveries", len(ds))
		}
	}
	for _, c := range active {
		if is[c.Key] {
			continue
		}
		msg := Message{Event: store.DeliveryResolved, Key: c.Key, Kind: c.Kind, Summary: c.Summary, ZoneID: c.ZoneID, AccountID: c.AccountID,
			FirstSeen: c.FirstSeen, ResolvedAt: now}
		ds, err := deliveries(rules, c.Kind, c.ZoneID, c.AccountID, c.Key, msg, now)
		if err != nil {
			return r, err
		}
		ok, err := s.store.ResolveCondition(ctx, c.Key, now, ds)
		if err != nil {
			return r, fmt.Errorf("resolve %s: %w", c.Key, err)
		}
		if ok {
			r.Resolved++
			s.log.Info("notification condition resolved", "key", c.Key)
		}
	}
	n, err := s.digests(ctx, rules, now)
	r.Digests = n
	return r, err
}

// matches reports whether a rule takes events of kind in zone and account.
func matches(r store.NotifyRule, kind, zone, account string) bool {
	if len(r.Events) > 0 && !containsStr(r.Events, kind) {
		return false
	}
	return (r.ZoneID == "" || r.ZoneID == zone) && (r.AccountID == "" || r.AccountID == account)
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// deliveries builds one delivery per target of the immediate rules that
// match (a target named by two rules gets one).
func deliveries(rules []store.NotifyRule, kind, zone, account, key string, msg Message, now time.Time) ([]store.NotifyDelivery, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var out []store.NotifyDelivery
	seen := map[string]bool{}
	for _, r := range rules {
		if r.Digest || seen[r.TargetID] || !matches(r, kind, zone, account) {
			continue
		}
		seen[r.TargetID] = true
		out = append(out, store.NotifyDelivery{ID: domain.NewID(), TargetID: r.TargetID, ConditionKey: key, Event: msg.Event,
			Payload: string(body), NextAttempt: now, Created: now})
	}
	return out, nil
}

// digests enqueues, for each digest rule, one delivery for the last whole
// day (UTC) listing the conditions of that day it matches, once: the
// delivery's id names the rule and the day. A day without conditions
// sends nothing.
func (s *Service) digests(ctx context.Context, rules []store.NotifyRule, now time.Time) (int, error) {
	var digestRules []store.NotifyRule
	for _, r := range rules {
		if r.Digest {
			digestRules = append(digestRules, r)
		}
	}
	if len(digestRules) == 0 {
		return 0, nil
	}
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	day := today.AddDate(0, 0, -1)
	conds, err := s.store.NotifyConditionsSince(ctx, day)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range digestRules {
		if r.Created.After(today) {
			continue // a rule made today sends its first digest tomorrow
		}
		msg := Message{Event: store.DeliveryDigest, Day: day.Format(time.DateOnly)}
		for _, c := range conds {
			inDay := func(t time.Time) bool { return !t.IsZero() && !t.Before(day) && t.Before(today) }
			if !matches(r, c.Kind, c.ZoneID, c.AccountID) || !(inDay(c.FirstSeen) || inDay(c.Resolved)) {
				continue
			}
			msg.Conditions = append(msg.Conditions, Message{Key: c.Key, Kind: c.Kind, Summary: c.Summary, ZoneID: c.ZoneID,
				AccountID: c.AccountID, FirstSeen: c.FirstSeen, ResolvedAt: c.Resolved})
		}
		if len(msg.Conditions) == 0 {
			continue
		}
		body, err := json.Marshal(msg)
		if err != nil {
			return n, err
		}
		ok, err := s.store.EnqueueDelivery(ctx, store.NotifyDelivery{ID: "digest-" + r.ID + "-" + msg.Day, TargetID: r.TargetID,
			Event: store.DeliveryDigest, Payload: string(body), NextAttempt: now, Created: now})
		if err != nil {
			return n, fmt.Errorf("enqueue digest: %w", err)
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// Settings returns the current notification settings.
func (s *Service) Settings(ctx context.Context) (Config, error) { return s.settings(ctx) }
