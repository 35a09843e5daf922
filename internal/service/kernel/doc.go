// Package kernel holds what every use case shares, in one place: the registry of the hosts' agents (registry.go), long operations and their progress (operations.go), VM locks (locks.go), leases and this process's identity (leases.go), typed agent tasks (tasks.go: Run), settings views (settings.go), the inventory of a VM or host (inventory.go), the registry's changes, one sync at a time per host and the bounded re-read of the hosts (follow.go), what a caller may see (access.go), the end of a VM's chain and its recovery (chain.go), backup storage roots (storage.go) and the job queue (queue.go).
//
// Vocabulary:
//   - operation: a long request answered at once with an id; Start records
//     it (Pending) before any work, and its final state is written with
//     retries so that it never stays Running.
//   - VM lock: one operation per VM, taken at the request (LockVM).
//   - chain end: merging a VM's knib deltas back into its disks so that the
//     next backup is full (EndChain); recovery does the same after an
//     interruption (RecoverVM).
//   - storage root: where a backup storage is mounted on the hosts; every
//     agent task on backup files names it (StorageRoot), with no fallback.
package kernel
