// Package qemuimg is a typed wrapper around the qemu-img program.
//
// Vocabulary:
//
//   - image: a disk image file (or block device) in some format such as
//     qcow2 or raw. The format is always passed explicitly where the caller
//     knows it, so qemu-img never has to guess (probing a raw image that a
//     guest wrote is a known security hole).
//   - overlay / backing file: a qcow2 image may name another image, its
//     backing file, from which it reads every cluster it does not hold
//     itself. The overlay is the image on top. A chain of overlays down to an
//     image without backing file is a backing chain; its top is the active
//     layer when a VM uses it.
//   - backing format: the format of the backing file, recorded in the
//     overlay's header next to the backing file name. This package always
//     records it (qemu-img -F) so qemu never probes it.
//   - force share (-U): open an image without taking qemu's image locks, to
//     read an image a running QEMU holds open. What a reader sees of the
//     active layer of a running VM is only as fresh as the last flush.
//   - full / incremental copy: Convert without a backing file reads through
//     the whole source chain and writes a self-contained image; Convert with
//     a backing file (-B) copies only the clusters allocated in the source's
//     top layer and records the given backing file in the output.
//   - commit: write the clusters of an overlay into an image below it.
//   - rebase: change the backing file an overlay names; "unsafe" (-u) only
//     rewrites the header, without comparing or copying any data.
//
// Every call runs qemu-img with an argument list (never a shell). A run that
// exits with a non-zero status yields a *RunError carrying the arguments,
// the exit code and qemu-img's trimmed stderr. A run stopped because its
// context ended yields an error matching both the context's error and the
// *RunError. Failure to start the program at all (binary missing) yields the
// error from os/exec, wrapped.
//
// The files qemu-img creates (Create, Convert) get the mode its umask
// leaves (0644 under the usual 022) and the caller's group: callers that
// keep them set their mode and group (internal/fileperm) right after.
package qemuimg
