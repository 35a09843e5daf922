// Package fsatomic writes files so that a reader, or a process started
// after a crash, sees either the old content or the new one, never a part.
//
// Vocabulary:
//   - atomic write: the content goes to a temporary file beside the target
//     (same directory, so the same file system), which is fsynced, renamed
//     over the target, and then the directory is fsynced so that the rename
//     itself survives a power loss. On any error the temporary file is
//     removed and the target is untouched. WriteOwned also gives the
//     file its group (a backup storage's, internal/fileperm) before the
//     rename.
package fsatomic
