// Package snapshots holds disk-only VM snapshots: create, list, revert, delete.
//
// Vocabulary:
//   - frozen file: the file a snapshot froze on each disk.
package snapshots
