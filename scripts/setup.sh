#!/usr/bin/env bash
# setup.sh - prepare this machine for knib's real-libvirt tests (run as root).
#
# Idempotent and quick when everything is already in place:
#   1. installs the Debian packages the test bed needs (apt-get update only when
#      something is missing),
#   2. starts virtlogd and libvirtd (this machine has no systemd) and waits
#      until qemu:///system answers,
#   3. builds the test guest (scripts/build-guest.sh, cached).
# Every step logs one line prefixed with "setup:".
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ $(id -u) -eq 0 ]] || die "must run as root"

# --- 1. packages -------------------------------------------------------------
packages=(qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients
	qemu-guest-agent busybox-static e2fsprogs zstd curl jq virtnbdbackup chromium)
missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $status == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	log "installing ${missing[*]} (apt-get update first)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
	log "packages installed"
else
	log "packages already installed"
fi

# --- 2. daemons --------------------------------------------------------------
mkdir -p /var/log/libvirt /run/libvirt

# running NAME: true when a process with exactly this command name runs.
running() { pgrep -x "$1" >/dev/null 2>&1; }

if running virtlogd; then
	log "virtlogd already running"
else
	log "starting virtlogd"
	virtlogd -d </dev/null >>/var/log/libvirt/virtlogd.stderr 2>&1 ||
		die "virtlogd failed to start, see /var/log/libvirt/virtlogd.stderr"
fi

sock=/run/libvirt/libvirt-sock
if running libvirtd; then
	log "libvirtd already running"
else
	# A stale socket or pid file from a killed daemon is harmless: libvirtd
	# replaces both.
	log "starting libvirtd"
	libvirtd -d </dev/null >>/var/log/libvirt/libvirtd.stderr 2>&1 ||
		die "libvirtd failed to start, see /var/log/libvirt/libvirtd.stderr"
fi

deadline=$((SECONDS + 60))
until [[ -S $sock ]] && virsh -c qemu:///system version >/dev/null 2>&1; do
	((SECONDS < deadline)) || die "libvirtd did not answer on $sock within 60 s (see /var/log/libvirt/)"
	sleep 0.5
done
log "libvirt answers on qemu:///system ($(virsh -c qemu:///system version 2>/dev/null | sed -n 's/^Running hypervisor: //p'))"

# --- 3. test guest -----------------------------------------------------------
log "test guest: running build-guest.sh"
bash "$script_dir/build-guest.sh"

# --- 4. PostgreSQL (issue 6): the store tests run on both engines -------------
bash "$script_dir/setup-postgres.sh"

# --- 5. second libvirt daemon (host B of the cross-host tests) ---------------
bash "$script_dir/second-libvirtd.sh"

log "done"
