// Package storages holds backup storages, zones, chain placement and storage migration.
//
// Vocabulary:
//   - placement: a new chain goes to a storage with the offering's tag, or
//     to the one with the most free space; incrementals stay with their chain.
//   - storage move: a backup's copy to another storage, recorded before it
//     starts, switched in one transaction, then the source removed.
package storages
