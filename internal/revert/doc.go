// Package revert undoes multi-step operations step by step (incus's
// reverter is the model): each step that changed something registers its
// undo right after it succeeded; if the operation fails, the undos run
// newest first; once it succeeded, they are dropped.
//
// Vocabulary:
//   - step: one change on a host or in the catalogue (a file written, a
//     domain defined, an intent recorded).
//   - undo: the function that takes one step back.
package revert
