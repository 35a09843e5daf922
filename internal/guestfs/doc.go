// Package guestfs reads the file systems inside disk images with libguestfs
// (Debian's libguestfs-tools), through guestfish's remote-control mode.
//
// A guest's file system is untrusted data: a crafted image can attack the
// kernel that mounts it. libguestfs mounts it in its appliance, a small VM of
// its own (run by QEMU, here under TCG), never in the host's kernel; every
// path the appliance's daemon resolves stays inside the guest file system
// (it chroots to it), so ".." and absolute symlinks never lead out.
//
// Vocabulary:
//
//   - handle: one appliance with a set of drives attached read-only
//     (libguestfs puts a throw-away overlay on each), driven by a guestfish
//     process in listen mode. Launching one costs seconds (a boot); a call
//     on a running one costs tens of milliseconds.
//   - drive: a disk image attached to the appliance; the appliance names the
//     n-th drive /dev/sdX (sda, sdb, ...), its partitions /dev/sdX1...
//   - device: a block device inside the appliance that holds a file system:
//     a whole drive, a partition, or an LVM logical volume (/dev/VG/LV).
//   - mounted: the one device a handle has mounted read-only at its root;
//     paths of calls are inside that file system.
//   - entry: one directory entry with its metadata (lstat: symlinks are not
//     followed).
//
// Every call runs guestfish with an argument list, never a shell: in remote
// mode guestfish passes each argument to the command unparsed. Commands are
// sent with guestfish's "-" prefix, so that a failing command does not end
// the listening process; its error comes back as an *Error carrying
// libguestfs' message. The few commands that take a list of names in one
// string (lstatnslist, readlinklist) get only names that their parser
// reads back unchanged; other names are asked one by one.
package guestfs
