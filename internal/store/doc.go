// Package store is the persistence port of the server: the catalogue of
// accounts, tokens, zones, hosts, offerings, VMs, settings and operations.
//
// Contract for every implementation (checked by storetest.Run):
//   - Lookups of absent rows return an error wrapping domain.ErrNotFound.
//   - Uniqueness and state rules enforced here (offering names unique among
//     offerings not removed; an offering with assigned VMs cannot be removed)
//     return errors wrapping domain.ErrConflict and change nothing.
//   - Each method is atomic: it either fully applies or changes nothing.
//   - Times are stored and returned in UTC with nanosecond precision.
//
// Implementations: sqlstore (SQLite and PostgreSQL; one SQL text). The
// conformance suite runs on both engines and includes concurrent claims:
// many goroutines racing for one job, VM or schedule run get one winner.
package store
