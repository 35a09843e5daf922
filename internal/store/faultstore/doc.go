// Package faultstore is a store.Store decorator for tests: it fails the
// N-th write (the store-failure twin of the crash points), so that a test
// can show that every write's error is handled and that recovery, once the
// store works again, leaves nothing stuck.
//
// Vocabulary:
//   - write: a method of store.Store that changes the catalogue (Create*,
//     Save*, Set*, Acquire*, Release*, ...); every other method is a read
//     and passes through.
//   - heal: make every write work again.
package faultstore
