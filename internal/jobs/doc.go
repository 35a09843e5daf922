// Package jobs decides which background service jobs run, when and where.
// It is pure logic over plain values (the clock is a parameter) and imports
// only the standard library and domain.
//
// Vocabulary:
//   - job: a row of the service-job queue: StartCompression,
//     FinalizeCompression or BackupValidation of one backup.
//   - family: compression (both compression types) or validation; limits,
//     the enabled switch, retries and timeouts are per family.
//   - lease: a claim on a running job by one server process until a time; a
//     job whose lease ran out lost its runner and is reaped (retried).
//   - plan: the jobs to start now, each with the host it runs on.
//
// Rules (seed: listBackupServiceJobs and the backup.compression.* /
// backup.validation.* settings): a family that is not enabled starts no
// job; a backup has one service job running at a time, and a VM one
// validation (a validation boots a copy of the VM), while the backups of one
// VM are compressed in parallel (the seed's compression tests); per-host and
// per-zone limits
// (< 1 = unlimited) count running jobs of the family, except finalize jobs,
// which are not counted and not limited; a job goes to the least-loaded
// eligible host; a failed or timed-out job is retried after the retry
// interval until it has used its retries.
package jobs
