// Package metrics exposes knib in Prometheus' text format
// (github.com/prometheus/client_golang, on a private registry).
//
// Vocabulary:
//   - catalogue metrics: what the catalogue says, read at scrape time by a
//     collector through the narrow Catalogue interface (the dashboard's
//     one-query VM summaries, storages, schedules, unfinished jobs, remote
//     agents). Several servers may share one catalogue, so these are the
//     same on every server and never per-process counters.
//   - process metrics: what this process did: backup phase durations, job
//     attempts, operations, API request latency by route pattern. They
//     arrive through Metrics' methods (it is the kernel's Observer and the
//     API's request observer) and start from zero with the process.
//   - proof: the newest proof that a VM can be restored, as the dashboard
//     defines it (a Valid validation of a kept backup, or a succeeded
//     restore).
//   - interval: the shortest interval of a VM's schedules (hourly 1 h,
//     daily 1 d, weekly 7 d, monthly 31 d); a VM without schedules has no
//     interval series. A VM is stale when its last successful backup is
//     older than twice its interval (docs/monitoring/alerts.yml).
package metrics
