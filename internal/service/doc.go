// Package service wires knib's use cases: what the server does for each API
// request, independent of HTTP. The use cases live in one package per
// feature below this one; this package only composes them (Service has a
// field per feature and no behaviour of its own).
//
// Vocabulary:
//   - feature: a package of use cases (backups, restores, snapshots,
//     jobrun, storages, hosts, vms, offerings, config, accounts, schedules,
//     recovery). Each depends on the kernel and on a narrow Store interface
//     of its own that lists only the catalogue methods it calls.
//   - kernel: what every feature shares (service/kernel).
//   - principal: the authenticated caller; users see only their account's
//     VMs; offerings, hosts, settings and jobs are admin-only.
package service
