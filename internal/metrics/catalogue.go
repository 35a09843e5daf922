package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/schedule"
	"github.com/knib/knib/internal/store"
)

// Catalogue is the part of the catalogue (store.Store) the collector reads
// at each scrape; its methods keep store.Store's contracts.
type Catalogue interface {
	VMSummaries(ctx context.Context, accountID string) ([]store.VMSummary, error)
	ListStorages(ctx context.Context, zoneID string) ([]domain.Storage, error)
	Schedules(ctx context.Context, vmID string) ([]domain.Schedule, error)
	Jobs(ctx context.Context, f store.JobFilter) ([]jobs.Job, error)
	ListHosts(ctx context.Context) ([]domain.Host, error)
	ListHostAgents(ctx context.Context) ([]store.HostAgent, error)
}

// ScrapeTimeout bounds the catalogue reads of one scrape.
const ScrapeTimeout = 20 * time.Second

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	vmLabels = []string{"vm", "vm_id", "account"}

	descUp            = desc("catalogue_up", "1 when this scrape read the catalogue, 0 when a read failed (the catalogue metrics are then missing).")
	descVMInfo        = desc("vm_info", "1 for every VM, with its effective state (BackingUp, BackupError, RestoreError, Missing, ...) and offering.", "vm", "vm_id", "account", "state", "offering")
	descLastBackup    = desc("vm_last_backup_timestamp_seconds", "Unix time of the VM's newest successful (BackedUp) backup; absent without one.", vmLabels...)
	descLastProof     = desc("vm_last_proof_timestamp_seconds", "Unix time of the newest proof that a backup of the VM restores: a Valid validation or a succeeded restore; absent without one.", append(vmLabels, "by")...)
	descChain         = desc("vm_chain_length", "Position of the VM's chain head in its chain; 0 without an open chain.", vmLabels...)
	descStored        = desc("vm_stored_bytes", "Bytes of the VM's kept backups (BackedUp and Removed) on backup storage.", vmLabels...)
	descInterval      = desc("vm_backup_interval_seconds", "Shortest interval of the VM's backup schedules; absent for a VM without schedules.", vmLabels...)
	descNotValid      = desc("vm_backups_not_valid", "The VM's BackedUp backups a validation found NotValid.", vmLabels...)
	descUnable        = desc("vm_backups_unable_to_validate", "The VM's BackedUp backups a validation could not check.", vmLabels...)
	descFailedBackups = desc("vm_backups_failed", "The VM's backups in Error or Failed.", vmLabels...)
	descFailedJobs    = desc("vm_jobs_failed", "Compression and validation jobs of the VM's BackedUp backups that failed for good.", vmLabels...)
	descCapacity      = desc("storage_capacity_bytes", "Capacity of a backup storage, last measured; absent when never measured.", "storage", "zone")
	descFree          = desc("storage_free_bytes", "Free space of a backup storage, last measured; absent when never measured.", "storage", "zone")
	descUsed          = desc("storage_used_bytes", "Bytes of knib's backups on a backup storage (catalogue sizes).", "storage", "zone")
	descAgent         = desc("agent_connected", "1 when a remote host's agent is Connected, 0 otherwise (Disconnected, Recovering, never seen).", "host", "state")
	descAgents        = desc("agents_connected", "Remote agents Connected.")
	descJobs          = desc("jobs", "Unfinished background jobs by type and state (Queued, Running).", "type", "state")
)

type catalogueCollector struct {
	cat Catalogue
	log *slog.Logger
}

func newCatalogueCollector(cat Catalogue, log *slog.Logger) *catalogueCollector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &catalogueCollector{cat: cat, log: log}
}

// Describe implements prometheus.Collector.
func (c *catalogueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descVMInfo, descLastBackup, descLastProof, descChain, descStored, descInterval,
		descNotValid, descUnable, descFailedBackups, descFailedJobs, descCapacity, descFree, descUsed, descAgent, descAgents, descJobs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one read of each part of the
// catalogue. A part that cannot be read is left out and catalogue_up is 0.
func (c *catalogueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	up := 1.0
	fail := func(what string, err error) {
		c.log.Warn("metrics: read the catalogue", "what", what, "err", err)
		up = 0
	}
	if err := c.vms(ctx, ch); err != nil {
		fail("vms", err)
	}
	if err := c.storages(ctx, ch); err != nil {
		fail("storages", err)
	}
	if err := c.agents(ctx, ch); err != nil {
		fail("agents", err)
	}
	if err := c.jobs(ctx, ch); err != nil {
		fail("jobs", err)
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Intervals returns each VM's shortest schedule interval.
func Intervals(list []domain.Schedule) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, sc := range list {
		p := schedule.Interval(sc.Interval).Period()
		if p <= 0 {
			continue
		}
		if cur, ok := out[sc.VMID]; !ok || p < cur {
			out[sc.VMID] = p
		}
	}
	return out
}

func (c *catalogueCollector) vms(ctx context.Context, ch chan<- prometheus.Metric) error {
	sums, err := c.cat.VMSummaries(ctx, "")
	if err != nil {
		return err
	}
	scheds, err := c.cat.Schedules(ctx, "")
	if err != nil {
		return err
	}
	intervals := Intervals(scheds)
	for _, v := range sums {
		l := []string{v.Name, v.VMID, v.Account}
		ch <- gauge(descVMInfo, 1, v.Name, v.VMID, v.Account, string(v.EffectiveState()), v.Offering)
		if !v.LastGoodAt.IsZero() {
			ch <- gauge(descLastBackup, unix(v.LastGoodAt), l...)
		}
		if !v.ProvenAt.IsZero() {
			ch <- gauge(descLastProof, unix(v.ProvenAt), v.Name, v.VMID, v.Account, v.ProvenBy)
		}
		if iv, ok := intervals[v.VMID]; ok {
			ch <- gauge(descInterval, iv.Seconds(), l...)
		}
		ch <- gauge(descChain, float64(v.ChainLength), l...)
		ch <- gauge(descStored, float64(v.StoredBytes), l...)
		ch <- gauge(descNotValid, float64(v.NotValid), l...)
		ch <- gauge(descUnable, float64(v.UnableToValidate), l...)
		ch <- gauge(descFailedBackups, float64(v.FailedBackups), l...)
		ch <- gauge(descFailedJobs, float64(v.FailedJobs), l...)
	}
	return nil
}

func (c *catalogueCollector) storages(ctx context.Context, ch chan<- prometheus.Metric) error {
	list, err := c.cat.ListStorages(ctx, "")
	if err != nil {
		return err
	}
	for _, s := range list {
		if !s.Measured.IsZero() || s.Capacity > 0 {
			ch <- gauge(descCapacity, float64(s.Capacity), s.Name, s.ZoneID)
			ch <- gauge(descFree, float64(s.Free), s.Name, s.ZoneID)
		}
		ch <- gauge(descUsed, float64(s.Used), s.Name, s.ZoneID)
	}
	return nil
}

func (c *catalogueCollector) agents(ctx context.Context, ch chan<- prometheus.Metric) error {
	hosts, err := c.cat.ListHosts(ctx)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, h := range hosts {
		names[h.ID] = h.Name
	}
	list, err := c.cat.ListHostAgents(ctx)
	if err != nil {
		return err
	}
	n := 0
	for _, a := range list {
		if a.Revoked {
			continue
		}
		name := names[a.HostID]
		if name == "" {
			name = a.HostID
		}
		state := a.Connection
		if state == "" {
			state = "Unknown"
		}
		v := 0.0
		if a.Connection == store.AgentConnected {
			v = 1
			n++
		}
		ch <- gauge(descAgent, v, name, state)
	}
	ch <- gauge(descAgents, float64(n))
	return nil
}

func (c *catalogueCollector) jobs(ctx context.Context, ch chan<- prometheus.Metric) error {
	list, err := c.cat.Jobs(ctx, store.JobFilter{})
	if err != nil {
		return err
	}
	type key struct{ t, s string }
	counts := map[key]int{}
	for _, t := range []jobs.Type{jobs.StartCompression, jobs.FinalizeCompression, jobs.BackupValidation} {
		for _, s := range []jobs.State{jobs.Queued, jobs.Running} {
			counts[key{string(t), string(s)}] = 0
		}
	}
	for _, j := range list {
		counts[key{string(j.Type), string(j.State)}]++
	}
	for k, n := range counts {
		ch <- gauge(descJobs, float64(n), k.t, k.s)
	}
	return nil
}
