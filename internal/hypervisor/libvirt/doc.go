// Package lv adapts the hypervisor port to libvirt, spoken over libvirt's
// RPC protocol with github.com/digitalocean/go-libvirt (no cgo, no virsh).
// The folder is internal/hypervisor/libvirt; the package is named lv so it
// does not clash with go-libvirt's package name.
//
// Vocabulary (beyond package hypervisor's):
//
//   - connection URI: the libvirt driver and instance to open, such as
//     qemu:///system, qemu:///session or test:///default. Only local URIs
//     are supported; the daemon is reached over its UNIX socket, chosen by
//     socketFor. test:///default is libvirt's mock driver, opened inside
//     the daemon; its state lives as long as the daemon and is shared by
//     all its clients.
//   - live / inactive XML: the domain definition in effect for a running
//     domain, and the stored definition the next boot will use.
//   - backingStore: the element of the live XML in which libvirt describes
//     a disk's backing chain as it probed it when the domain started. Where
//     it is missing (a stopped domain, or a driver that does not probe),
//     the adapter asks qemu-img instead (info --backing-chain -U).
//
// Domain XML is always decoded with libvirt.org/go/libvirtxml.
package lv
