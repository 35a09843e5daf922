// Package remotes holds the use cases of offsite copies: remotes (an
// S3-compatible bucket with its credentials, sealing key, lock period and
// lock mode; `knib remote ...`), copy policies on offerings, copies of
// backups (recorded before anything is uploaded, uploaded by BackupCopy
// jobs from the backup's host, ancestors first, locked so that a parent
// stays locked at least as long as its youngest child), restores that
// fetch a backup's chain back from a remote first (Fetch), the expiry of
// copies past their keep period, and `knib remote import`, which rebuilds
// a catalogue from a bucket's manifests alone.
//
// Words:
//   - remote, copy, object, manifest, lock, canary: as in package offsite;
//   - remote header: the object knib/remote.json, not sealed, holding the
//     format and the remote key's check value: a second server adding the
//     remote with another key is refused before it writes anything;
//   - object keys: knib/o/<hmac> for files, knib/m/<hmac> for manifests
//     (seal.Key.ObjectName of the copy id and the file's path), so a
//     bucket listing reveals no VM or backup names;
//   - keep: how long a copy stays on its remote (its policy's keep days);
//     an expired copy is deleted once no younger copy of its chain needs it
//     and its lock has ended.
package remotes
