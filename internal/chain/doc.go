// Package chain plans backup chains: whether the next backup is full or
// incremental, what happens to each disk, and what deleting backups does. It
// is pure logic over plain values and imports only the standard library.
//
// Vocabulary:
//   - chain: a full backup followed by incrementals, each the parent of the
//     next; the newest backup of the chain that still has deltas on primary
//     storage is the chain head.
//   - delta: the external qcow2 overlay a backup puts on top of a disk. While
//     the VM writes into it, it collects exactly the writes since that backup.
//     At most one delta per disk exists on primary storage (the head's).
//   - frozen layer: the file that was on top when a backup's snapshot was
//     taken; it is what the backup copies (flattened for a full, alone for an
//     incremental).
//   - end of chain: a backup after which the next one is full. The backup that
//     fills the chain (position = chain size) is its end and keeps no delta.
//   - isolated backup: a full backup outside any chain; it leaves the chain
//     as it was.
//   - live dependant: a backup whose parent is this one and that is not
//     expunged, failed or in error; a backup with live dependants is only
//     marked Removed when deleted, and its files go with the last dependant.
package chain
