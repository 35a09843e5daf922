// Package testbed runs knib's integration tests against the real libvirt of
// the machine: it starts nothing itself (scripts/setup.sh does) but checks
// that the infrastructure is there, builds the test guest once, and creates,
// drives and removes test domains.
//
// Vocabulary:
//
//   - Test guest: the tiny Linux that every test domain boots, built and
//     cached by scripts/build-guest.sh in GuestDir() (default
//     /var/cache/knib/guest): Debian's cloud kernel (vmlinuz) and an
//     initramfs (initramfs.cpio.gz) holding busybox, qemu-ga and the virtio
//     modules. Its /init mounts the first disk (/dev/vda) at /data when it
//     holds ext4, starts qemu-ga on the virtio-serial port
//     org.qemu.guest_agent.0 and then idles. It has no network. Everything
//     a test does inside it goes through the guest agent (Domain.Exec), and
//     busybox provides the commands (sh, cat, echo, sync, md5sum, dd, ...).
//
//   - Test domain: a persistent libvirt domain made by NewDomain, named
//     knib-t-<something>, of type "qemu" (TCG: nested KVM is unreliable on
//     the machines knib is tested on) with direct kernel boot of the test
//     guest, one or more qcow2 disks vda, vdb, ... on the virtio bus under
//     ImagesDir/<name>/, a serial console logged to ConsoleLog, the guest-
//     agent channel and VNC graphics with a video device (so that
//     virDomainScreenshot works). A test domain is removed (destroyed,
//     undefined, its directory deleted) when its test ends, and any leftover
//     of the same name is removed before it is created.
//
//   - Boot marker: the line BootMarker ("KNIB-GUEST-READY") that the test
//     guest prints on its serial console once qemu-ga has been started. The
//     readiness check used here is the guest agent answering guest-ping
//     (Domain.WaitAgent); the marker helps when reading a console log.
//
//   - Second host: an independent system libvirt daemon on the same machine
//     (SecondHost), started by scripts/second-libvirtd.sh (setup.sh runs
//     it) in a private mount namespace with its own configuration, domains,
//     state, logs, sockets and virtlogd under SecondHostDir, reached at
//     SecondHostSocket. Disks and backup storage are the same file system
//     as the first daemon's, so a backup storage is shared at one path.
//     NewDomainOn creates test domains there.
//
//   - Infra skip: when libvirt's socket cannot be connected, QEMU or the
//     tools are missing, the process is not root, or the test guest cannot
//     be built, Require skips the test with the reason. When the
//     environment variable KNIB_TEST_REQUIRE_INFRA=1 is set (CI sets it),
//     the same condition fails the test instead, so CI cannot pass by
//     skipping everything.
//
//   - Test PostgreSQL: PostgresURL finds the server (KNIB_TEST_POSTGRES_URL,
//     else /etc/knib/postgres.url from scripts/setup-postgres.sh) and
//     PostgresDB creates a fresh database (C collation) through the knib
//     role for one test and drops it at its end. An unreachable PostgreSQL
//     is an infra skip like libvirt's, a failure under
//     KNIB_TEST_REQUIRE_INFRA=1.
//
// Typical use in another package's test:
//
//	func TestBackup(t *testing.T) {
//		d := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-backup", Start: true})
//		out, code, err := d.Exec(ctx, "/bin/sh", "-c", "echo hi > /data/f && sync")
//		...
//	}
package testbed
