// Package restores holds restores: of a VM, of a volume, into a new VM; quick restore and its consolidation; restores onto another host (moves).
//
// Vocabulary:
//   - quick restore: the VM starts on thin overlays over the backup files,
//     then its disks are consolidated (block pull) while it runs.
//   - move: a restore onto another host of the zone, recorded so that
//     recovery rolls it forward or back.
package restores
