// Package offsitetest holds the conformance suite of offsite.Bucket (Run),
// which every implementation passes, and Mem, an in-memory bucket for
// unit tests of its callers.
package offsitetest
