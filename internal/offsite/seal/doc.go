// Package seal is the format of everything knib writes to a remote: each
// object is encrypted and authenticated with AES-256-GCM in chunks, under a
// key derived from the remote's key, so that a remote's operator learns
// nothing but sizes and any change to an object fails its read.
//
// (Contract for the implementation; docs/offsite-format.md documents the
// bytes.)
//
//   - Key: the remote's 32-byte secret. Its text form is
//     "knib-remote-key-v1:" + base64url (no padding); NewKey draws one from
//     crypto/rand, ParseKey reads the text form back.
//   - Key.ObjectName(parts ...string) string: the hex HMAC-SHA256, under a
//     names key derived from the remote key, of the parts joined by a 0
//     byte: object keys in the bucket reveal no names.
//   - Key.Check() string: a key check value (hex HMAC of a fixed label
//     under a derived key): tells a wrong key from a damaged object.
//   - Object format: a header (magic "KNIBSEAL", version 1, chunk size,
//     32-byte salt) then chunks of ChunkSize plaintext bytes (the last one
//     shorter, possibly empty), each sealed with AES-256-GCM under the
//     object key HKDF-SHA256(remote key, salt, "knib-seal-v1 object " +
//     name), nonce = chunk index (big endian) with a flag marking the last
//     chunk, additional data = header + name. name is the object's key in
//     the bucket: an object moved to another key fails to open.
//   - NewSealed(k, salt, name, src io.ReaderAt, size) gives an io.ReaderAt
//     over the sealed object of size SealedSize(size): deterministic for
//     (k, salt, name, content), random access, so any part of a multipart
//     upload can be sealed again identically when an upload resumes.
//   - NewOpener(r io.Reader, k, name) io.Reader streams the plaintext back;
//     a changed, reordered, truncated or extended object makes Read fail
//     with an error wrapping ErrTampered and never returns unauthenticated
//     bytes. A wrong key looks like tampering; the remote's check value
//     (Key.Check, kept in the bucket by the server) tells the two apart.
package seal
