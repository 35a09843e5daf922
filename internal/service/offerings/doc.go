// Package offerings holds backup offerings.
//
// Vocabulary:
//   - offering: what a VM's backups do (chain size, compression,
//     validation, quick restore, file extraction).
package offerings
