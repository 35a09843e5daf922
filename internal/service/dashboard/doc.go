// Package dashboard answers what an operator looks at every morning: one
// row per VM the viewer may see, how well it is protected, and what needs a
// human, worst first.
//
// Vocabulary:
//   - summary: a VM with the aggregates of its backups, schedules and jobs
//     (store.VMSummary), read in one query.
//   - proven: the newest backup of a VM that a validation found Valid (the
//     VM booted from it and answered).
//   - attention: something that needs a human, with a severity: 3 data at
//     risk (VM in BackupError or RestoreError, last backup failed, a backup
//     NotValid), 2 protection in doubt (a backup could not be validated, a
//     job failed for good, assigned but never backed up), 1 worth a look
//     (VM missing on its host).
//   - low storage: a backup storage with less than LowFreeFraction of its
//     capacity free.
package dashboard
