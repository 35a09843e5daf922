package metrics

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every knib metric.
const Namespace = "knib"

// Metrics is one process's registry: the catalogue collector and the
// process metrics.
type Metrics struct {
	reg        *prometheus.Registry
	phases     *prometheus.HistogramVec
	jobs       *prometheus.HistogramVec
	operations *prometheus.CounterVec
	requests   *prometheus.HistogramVec
}

// New returns the metrics of a process over the catalogue (nil: process
// metrics only).
func New(cat Catalogue, log *slog.Logger) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.phases = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "backup_phase_duration_seconds",
		Help:    "Duration of a backup's phases (snapshot, copy, fsync, merge; freeze: how long the snapshot held the guest's I/O).",
		Buckets: prometheus.ExponentialBuckets(0.005, 3, 14)}, []string{"phase"})
	m.jobs = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "job_duration_seconds",
		Help:    "Duration of background job attempts by type and outcome (succeeded, failed, retry, deferred).",
		Buckets: prometheus.ExponentialBuckets(0.1, 3, 11)}, []string{"type", "outcome"})
	m.operations = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "operations_total",
		Help: "Operations this process ran to their end, by kind and result (succeeded, failed)."}, []string{"kind", "result"})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "API request latency by method, route pattern and status code.",
		Buckets: prometheus.DefBuckets}, []string{"method", "route", "code"})
	m.reg.MustRegister(m.phases, m.jobs, m.operations, m.requests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cat != nil {
		m.reg.MustRegister(newCatalogueCollector(cat, log))
	}
	return m
}

// Registry is the private registry (for tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in Prometheus' exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// BackupPhase records one phase of a backup.
func (m *Metrics) BackupPhase(phase string, d time.Duration) {
	m.phases.WithLabelValues(phase).Observe(d.Seconds())
}

// JobAttempt records the end of a job attempt.
func (m *Metrics) JobAttempt(jobType, outcome string, d time.Duration) {
	m.jobs.WithLabelValues(jobType, outcome).Observe(d.Seconds())
}

// OperationDone counts an operation's end.
func (m *Metrics) OperationDone(kind, result string) {
	m.operations.WithLabelValues(kind, result).Inc()
}

// Request records an API request: route is the route's pattern (never
// the raw path, so the series stay few).
func (m *Metrics) Request(method, route string, code int, d time.Duration) {
	m.requests.WithLabelValues(method, route, codeLabel(code)).Observe(d.Seconds())
}

func codeLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	const digits = "0123456789"
	return string([]byte{digits[code/100], digits[code/10%10], digits[code%10]})
}
