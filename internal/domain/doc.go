// Package domain holds knib's vocabulary as plain Go types and the rules that
// need no infrastructure. It imports only the standard library.
//
// Vocabulary:
//   - Offering: a named set of backup features (compression, validation, quick
//     restore, file extraction, chain size) that VMs are assigned to. Offerings
//     are never deleted, only marked removed, so old backups keep their history.
//   - VM: a libvirt domain on a managed host, known by its libvirt UUID. It has
//     an owner account, at most one offering, and a state that combines the
//     hypervisor's view (Running, Stopped, ...) with knib's own work on it
//     (BackingUp, BackupError, Restoring, ...).
//   - Disk: one disk of a VM as the hypervisor reports it: target device,
//     active file, format, virtual size and backing chain (top to bottom).
//   - Host: a machine with libvirt and a knib agent (in-process or remote),
//     member of exactly one zone.
//   - Zone: a group of hosts and backup storages; limits apply per zone.
//   - Storage: a backup storage, a directory at the same absolute path on
//     every host of its zone. Backups record the storage holding their files;
//     a new chain goes to an enabled storage of the zone with the offering's
//     storage tag and the most free space (PlaceChain); incrementals follow
//     their chain.
//   - Account and Principal: who owns VMs, and who is calling (role admin or
//     user).
//   - Operation: a long-running request (backup, restore, delete, ...) that the
//     API answers at once with an id; it records state, progress and result.
//   - OpResult: the result of a succeeded operation, one named type per
//     operation kind (BackupCreateResult, BackupRestoreResult, ...; OpKind
//     names the kind). OpResults lists them all: the API document describes an
//     operation's result as one of these, chosen by the operation's kind.
//
// Errors: ErrNotFound, ErrConflict, ErrForbidden and ErrUnauthorized are
// sentinels wrapped with context; *InvalidError names the bad field. The HTTP
// layer maps them to status codes in one place.
package domain
