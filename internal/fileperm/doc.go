// Package fileperm decides who may read the files knib writes on a host,
// and applies it. A backup holds a whole disk: only root and QEMU may read
// it, never any other local user.
//
// Vocabulary:
//   - QEMU group: the group libvirt runs QEMU processes with. It is
//     qemu.conf's `group` when set, else the first of the distributions'
//     defaults that exists on the host: libvirt-qemu (Debian), qemu
//     (Fedora, RHEL), kvm (Ubuntu). QEMU reads backup files through it
//     (quick restores and validations boot from overlays on them) and
//     writes the disks knib gives a VM through it, whether or not libvirt's
//     dynamic_ownership also hands them to the QEMU user while the VM runs.
//   - private tree: a directory tree knib owns (a backup storage, a VM's
//     disk directory made by knib): directories DirMode, files FileMode,
//     the QEMU group, owner root (the agent's user), nothing for others.
//   - disk file: a file QEMU writes (a restored disk, a quick restore's or
//     a validation's overlay, a delta, a new empty disk, a restored NVRAM):
//     DiskMode and the QEMU group.
//   - tighten: take other users' bits away and give the QEMU group what it
//     needs (read, and search on directories), then the QEMU group itself;
//     the owner and a group write bit are left as they are (libvirt may
//     have handed a file in use to the QEMU user). Tightening twice changes
//     nothing the second time.
//   - problem: a path that other users may read, write or search, that
//     belongs to another group than the QEMU group, or that the QEMU group
//     cannot read (or search, for a directory); Check lists them.
//
// qemu-img creates files with its umask's mode (0644 under the usual 022):
// callers set the mode with File or Disk right after it created one, in a
// directory made with MkdirAll, which other users cannot enter meanwhile.
package fileperm
