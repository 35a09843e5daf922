#!/usr/bin/env bash
# second-libvirtd.sh - start a second, independent system libvirt daemon on
# this machine ("host B" of the cross-host tests). Run as root; idempotent.
#
# The daemon runs in a private mount namespace in which libvirt's own
# directories are replaced by directories under $KNIB_HOSTB_DIR (default
# /var/lib/knib-hostb):
#
#   /etc/libvirt           <- $base/etc      (own config: no domains, no networks)
#   /var/lib/libvirt/qemu  <- $base/qemu     (domain state, channels, snapshots)
#   /var/cache/libvirt     <- $base/cache
#   /var/log/libvirt       <- $base/log      (QEMU logs)
#   /run/libvirt           <- $run           (sockets, pid files, runtime state)
#
# Everything else (disk images, backup storage, the test guest) is the same
# file system as the first daemon's, so both hosts see one backup storage at
# one absolute path. QEMU runs as libvirt-qemu like on the first daemon.
# The daemon has its own virtlogd, no cgroups (cgroup_controllers = [ ]) and
# its own VNC port range. Its processes are named knib-libvirtd-b and
# knib-virtlogd-b (symlinks), so `pgrep -x libvirtd` still finds only the
# first daemon.
#
# Connection URI: qemu:///system?socket=$run/libvirt-sock
# A QEMU of host B writes screenshots into $base/qemu (its
# /var/lib/libvirt/qemu), hence the URI parameter screenshot_dir.
set -euo pipefail

log() { printf 'setup: host B: %s\n' "$*"; }
die() { printf 'setup: host B: ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"

base=${KNIB_HOSTB_DIR:-/var/lib/knib-hostb}
run=${KNIB_HOSTB_RUN:-/run/knib-hostb}
sock=$run/libvirt-sock
uri="qemu:///system?socket=$sock"

if [[ -S $sock ]] && virsh -c "$uri" version >/dev/null 2>&1; then
	log "second libvirtd already answers on $sock"
	exit 0
fi

mkdir -p "$base"/{etc,qemu,cache,log/qemu,bin} "$run"
chmod 0755 "$base"
# Configuration: a copy of the system's, without domains, networks or hooks.
if [[ ! -f $base/etc/libvirtd.conf ]]; then
	cp -a /etc/libvirt/. "$base/etc/"
	rm -f "$base"/etc/qemu/*.xml
	rm -rf "$base"/etc/qemu/networks "$base"/etc/hooks "$base"/etc/nwfilter
	mkdir -p "$base"/etc/qemu/networks/autostart
fi
conf=$base/etc/qemu.conf
if ! grep -q '^# knib host B' "$conf"; then
	cat >>"$conf" <<'EOF'
# knib host B: no cgroups (they would collide with the first daemon's
# machine groups), its own VNC ports.
cgroup_controllers = [ ]
remote_display_port_min = 6100
remote_display_port_max = 6199
EOF
fi
# libvirt-qemu must own its state directory as on the first daemon.
chown libvirt-qemu:libvirt-qemu "$base/qemu"
chmod 0751 "$base/qemu"

ln -sfn "$(command -v libvirtd || echo /usr/sbin/libvirtd)" "$base/bin/knib-libvirtd-b"
ln -sfn "$(command -v virtlogd || echo /usr/sbin/virtlogd)" "$base/bin/knib-virtlogd-b"

log "starting a second libvirtd in a private mount namespace ($sock)"
# The daemons outlive this shell: the namespace lives as long as they do.
unshare --mount --propagation private -- /bin/sh -euc '
	base=$1 run=$2
	mount --bind "$base/etc" /etc/libvirt
	mount --bind "$base/qemu" /var/lib/libvirt/qemu
	mkdir -p /var/cache/libvirt
	mount --bind "$base/cache" /var/cache/libvirt
	mount --bind "$base/log" /var/log/libvirt
	mkdir -p /run/libvirt
	mount --bind "$run" /run/libvirt
	# A virtlogd left from an earlier start serves the same socket: keep it.
	if ! pgrep -x knib-virtlogd-b >/dev/null 2>&1; then
		"$base/bin/knib-virtlogd-b" -d -p /run/libvirt/virtlogd.pid </dev/null >>"$base/log/virtlogd.stderr" 2>&1
	fi
	"$base/bin/knib-libvirtd-b" -d -p /run/libvirt/libvirtd.pid </dev/null >>"$base/log/libvirtd.stderr" 2>&1
' knib-hostb "$base" "$run" || die "second libvirtd failed to start, see $base/log/"

deadline=$((SECONDS + 60))
until [[ -S $sock ]] && virsh -c "$uri" version >/dev/null 2>&1; do
	((SECONDS < deadline)) || die "second libvirtd did not answer on $sock within 60 s (see $base/log/)"
	sleep 0.5
done
log "second libvirtd answers: $uri"
