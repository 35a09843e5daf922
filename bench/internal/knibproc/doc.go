// Package knibproc runs knib as the benchmarks use it: it builds the
// binary, starts an all-in-one `knib server` process on its own data
// directory and a free port, and drives the CLI against it as admin.
//
// Vocabulary:
//   - Server: one `knib server` process; its log goes to a file, read back
//     by LogTail and LogHas (debug logging records every qemu-img run).
//   - CLI / CLIJSON: one `knib` client process each, with KNIB_SERVER and
//     KNIB_DATA_DIR set so that it authenticates with the admin token in the
//     data directory.
package knibproc
