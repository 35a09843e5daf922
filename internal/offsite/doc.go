// Package offsite is the port to object storage that holds knib's offsite
// copies: encrypted, optionally immutable copies of backups in an
// S3-compatible bucket.
//
// Vocabulary:
//   - remote: a bucket knib copies backups to (endpoint, bucket, region,
//     credentials), with a key of its own (package seal) and, optionally,
//     a lock period (days) and a lock mode;
//   - copy: one backup's presence on one remote: its objects and its
//     manifest;
//   - object: one key in the bucket. Every object knib writes is sealed
//     (package seal): its bytes reveal nothing and any change to them fails
//     the read; its key is an HMAC of what it holds, so keys reveal no VM
//     or backup names;
//   - manifest: a sealed JSON object per copy naming the backup, its VM,
//     its parent and its objects, so the bucket can be read without the
//     catalogue (knib remote import);
//   - lock: S3 Object Lock retention (mode and retain-until date) on one
//     version of an object; a locked version can be neither deleted nor
//     overwritten in place until the date, not even with knib's own
//     credentials (compliance mode; governance mode yields to a bypass
//     permission knib never asks for);
//   - canary: a short-lived locked object knib writes and then tries to
//     delete, to learn whether a server enforces its locks.
//
// Bucket is the contract; package s3 implements it with minio-go, package
// offsitetest holds its conformance suite and an in-memory fake.
package offsite
