// Package notify is the notifications use case: being told, not polling.
//
// Vocabulary:
//   - A condition is something that needs a human, derived from the
//     catalogue alone (never from an in-process event, so that several
//     servers on one catalogue agree): a VM in BackupError or RestoreError
//     (vm.error), a VM whose newest backup is Error or Failed
//     (backup.failed), a backup a validation found NotValid or
//     UnableToValidate (validation.notvalid), a compression that failed for
//     good (compression.failed), a job that exhausted its retries
//     (job.exhausted), a remote agent disconnected longer than a threshold
//     (agent.down), a storage below its free-space threshold (storage.low),
//     a scheduled VM whose last good backup is older than twice its
//     schedule's interval (vm.stale), and a backup whose re-hash found a
//     changed file (backup.changed). Each has a stable key "kind/id", a
//     zone and an account.
//   - The evaluator (Evaluate) derives the active set, fires the keys not
//     active yet and resolves the active ones no longer found. Firing and
//     resolving are conditional writes in the catalogue that enqueue the
//     deliveries in the same transaction, so a condition notifies once and
//     resolves once per episode, across restarts and servers.
//   - A target is a webhook or an SMTP server; a rule sends the events of
//     some kinds, zone and account to a target, at once or in a daily
//     digest.
//   - A delivery is one message to one target in the outbox; the sender
//     (Send) claims due ones, delivers them and retries failures with
//     exponential backoff up to a maximum of attempts; Log lists them.
//
// Nothing on the backup path waits on this package: it only reads what the
// backups recorded.
package notify
