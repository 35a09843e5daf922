// Package monitortrace times the QMP commands libvirtd sends to QEMU, from
// libvirtd's own debug log, for benchmarks that need a figure libvirt's API
// does not give: how long QEMU held the guest's I/O.
//
// Vocabulary:
//   - a trace: libvirtd logging its QEMU monitor traffic (log filter
//     "1:qemu.qemu_monitor") to a file of its own, set and reset through
//     virt-admin while libvirtd runs; the daemon's other outputs stay;
//   - a command: one QMP command, from libvirtd's write of it to the
//     monitor socket (QEMU_MONITOR_IO_WRITE) to QEMU's reply
//     (QEMU_MONITOR_RECV_REPLY), matched by the command's id. The log's
//     timestamps have millisecond resolution.
//
// A disk-only snapshot is one "transaction" command (blockdev-snapshot of
// each disk): QEMU drains the guest's I/O on the snapshotted disks when it
// starts and releases it when it ends, so the command's span bounds the
// guest's I/O freeze from above.
package monitortrace
