// Package recovery holds recovery after interruptions: reconciliation of VMs left inconsistent, orphaned work of dead servers, and lease renewal.
//
// Vocabulary:
//   - orphan: an operation, lock or job whose owner's lease ran out.
package recovery
