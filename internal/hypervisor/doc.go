// Package hypervisor is the port through which the knib agent talks to the
// hypervisor of its own host. It holds only types and the Hypervisor
// contract; internal/hypervisor/libvirt adapts it to libvirt,
// internal/hypervisor/fake is an in-memory stand-in for unit tests, and
// internal/hypervisor/hvtest is the conformance suite both must pass.
//
// Vocabulary:
//
//   - host: the machine the hypervisor runs on (HostInfo).
//   - domain: a virtual machine as libvirt knows it, named by its UUID in
//     canonical lower-case text form (8-4-4-4-12 hex digits). Persistent
//     domains have a stored definition; transient ones exist only while
//     running.
//   - domain state: the coarse run state (DomainState): running, paused,
//     shutoff, crashed, pmsuspended, or other (no state, blocked, shutting
//     down).
//   - disk: one <disk> device of a domain, named by its target ("vda").
//   - source: what a disk reads from: for a file disk the path of its active
//     layer, the image the VM writes to.
//   - backing chain: the images below the active layer, top to bottom, each
//     the backing file of the one above (Layer). An image with no backing
//     file ends the chain. A disk without backing file has an empty chain.
//   - virtual size: the size of the disk as the guest sees it, in bytes.
//   - guest agent: qemu-ga inside the domain; a Hypervisor is a
//     guestagent.Transport for it.
//   - screenshot: an image of the domain's primary display.
//   - domain event: one change in a domain's life cycle (defined,
//     undefined, started, stopped, ...) as it happens (Watcher, events.go);
//     a resync event says the watch (re)subscribed and earlier changes may
//     have been missed.
package hypervisor
