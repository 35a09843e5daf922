#!/usr/bin/env bash
# setup.sh - prepare this machine for knib's real-libvirt tests (run as root).
#
# Idempotent and quick when everything is already in place:
#   1. installs the Debian packages the test bed needs (apt-get update only when
#      something is missing),
#   1b. prepares libguestfs (file-level restore and its test fixtures): a
#      supermin kernel unpacked under /var/cache/knib/gfk and the environment
#      file /var/cache/knib/gfk/env that guestfish is run with,
#   2. starts virtlogd and libvirtd (this machine has no systemd) and waits
#      until qemu:///system answers,
#   3. builds the test guest (scripts/build-guest.sh, cached).
# Every step logs one line prefixed with "setup:".
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$script_dir/kernel-pkg.sh"

[[ $(id -u) -eq 0 ]] || die "must run as root"

# --- 0. S3 server for the offsite-copy tests (issue 15), in the background --
# Building versitygw takes about 1.5 minutes on a fresh machine: it runs
# beside the package installation and is waited for at the end.
s3log=$(mktemp /tmp/knib-setup-s3.XXXXXX)
bash "$script_dir/setup-s3.sh" >"$s3log" 2>&1 &
s3pid=$!

# --- 1. packages -------------------------------------------------------------
# The file-system tools (xfsprogs ... fdisk) build the file-level restore's
# test images; kmod provides the depmod of step 1b.
packages=(qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients
	qemu-guest-agent busybox-static e2fsprogs zstd curl jq virtnbdbackup chromium
	xfsprogs btrfs-progs dosfstools mtools ntfs-3g lvm2 fdisk kmod)
# Installed without their recommends (libguestfs-tools recommends a lot;
# prometheus: /usr/bin/prometheus and promtool for the metrics' tests, no
# daemon: see below).
packages_norec=(libguestfs-tools prometheus)

# missing_of PKG...: prints the packages of the list that are not installed.
missing_of() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[[ $status == installed ]] || printf '%s\n' "$p"
	done
}
mapfile -t missing < <(missing_of "${packages[@]}")
mapfile -t missing_norec < <(missing_of "${packages_norec[@]}")
if ((${#missing[@]} + ${#missing_norec[@]})); then
	log "installing ${missing[*]} ${missing_norec[*]} (apt-get update first)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	if ((${#missing[@]})); then
		apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	if ((${#missing_norec[@]})); then
		# No package starts a daemon (prometheus would listen on :9090):
		# invoke-rc.d asks policy-rc.d, which says no (101) during the install.
		policy=""
		if [[ ! -e /usr/sbin/policy-rc.d ]]; then
			policy=/usr/sbin/policy-rc.d
			printf '#!/bin/sh\nexit 101\n' >"$policy"
			chmod 755 "$policy"
		fi
		rc=0
		apt-get install -y -qq --no-install-recommends "${missing_norec[@]}" >/dev/null || rc=$?
		[[ -z $policy ]] || rm -f "$policy"
		((rc == 0)) || die "apt-get install ${missing_norec[*]} failed"
	fi
	log "packages installed"
else
	log "packages already installed"
fi

# --- 1b. libguestfs: supermin kernel and environment -------------------------
# These machines have no kernel in /boot, which supermin needs to build the
# libguestfs appliance: Debian's cloud kernel (the package
# linux-image-cloud-amd64 depends on) is unpacked into $gfk/k, its modules.dep
# made with kmod's depmod (busybox's breaks modprobe in the appliance), and
# $gfk/env names it for supermin (KEY=VALUE lines; guestfish is run with
# them added to its environment). QEMU runs under TCG (nested KVM is
# unreliable here). Skipped when the env file and what it names exist.
gfk=${KNIB_GFK_DIR:-/var/cache/knib/gfk}
gfk_env=$gfk/env
gfk_ready() {
	local kernel modules
	[[ -s $gfk_env ]] || return 1
	kernel=$(sed -n 's/^SUPERMIN_KERNEL=//p' "$gfk_env")
	modules=$(sed -n 's/^SUPERMIN_MODULES=//p' "$gfk_env")
	[[ -n $kernel && -s $kernel && -n $modules && -s $modules/modules.dep ]]
}
mkdir -p /lib/modules # supermin reads it even with SUPERMIN_MODULES set
if gfk_ready; then
	log "libguestfs kernel already in $gfk ($(sed -n 's/^SUPERMIN_KERNEL_VERSION=//p' "$gfk_env"))"
else
	depmod=/sbin/depmod
	[[ $(readlink -f "$depmod") == */kmod ]] || die "$depmod is not kmod's (apt-get install kmod)"
	pkg=$(cloud_kernel_pkg)
	mkdir -p "$gfk/deb"
	chmod 0755 "$gfk"
	# A download of an earlier run is reused.
	deb=$(find "$gfk/deb" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
	if [[ -z $deb ]]; then
		log "libguestfs kernel: downloading $pkg"
		# Let apt's sandbox user write there (avoids a warning and a root fallback).
		if id _apt >/dev/null 2>&1; then chown _apt "$gfk/deb"; fi
		(cd "$gfk/deb" && apt-get download -qq "$pkg") || die "apt-get download $pkg failed"
		deb=$(find "$gfk/deb" -maxdepth 1 -name "${pkg}_*.deb" | sort | tail -n 1)
		[[ -n $deb ]] || die "apt-get download $pkg left no ${pkg}_*.deb in $gfk/deb"
	else
		log "libguestfs kernel: reusing $deb"
	fi
	rm -rf "$gfk/k.new"
	dpkg -x "$deb" "$gfk/k.new"
	kver=$(ls "$gfk/k.new/lib/modules")
	[[ -n $kver && $kver != *[[:space:]]* ]] || die "no single kernel version in $deb"
	[[ -f $gfk/k.new/boot/vmlinuz-$kver ]] || die "no boot/vmlinuz-$kver in $deb"
	# The package ships no modules.dep (depmod runs at install time): make one.
	"$depmod" -b "$gfk/k.new" "$kver" || die "depmod for $kver failed"
	rm -rf "$gfk/k"
	mv "$gfk/k.new" "$gfk/k"
	k=$gfk/k
	cat >"$gfk_env.new" <<-ENV
		LIBGUESTFS_BACKEND=direct
		LIBGUESTFS_BACKEND_SETTINGS=force_tcg
		SUPERMIN_KERNEL=$k/boot/vmlinuz-$kver
		SUPERMIN_MODULES=$k/lib/modules/$kver
		SUPERMIN_KERNEL_VERSION=$kver
	ENV
	chmod 0644 "$gfk_env.new"
	mv -f "$gfk_env.new" "$gfk_env"
	log "libguestfs kernel $kver in $k, environment in $gfk_env"
	# First launch: supermin builds the appliance (cached in /var/tmp).
	log "libguestfs: first launch (builds the appliance, ~15 s)"
	gfk_tmp=$(mktemp -d /tmp/knib-gfk.XXXXXX)
	if ! (set -a && . "$gfk_env" && guestfish -N "$gfk_tmp/t.img=fs:ext4:64M" exit) \
		>"$gfk_tmp/log" 2>&1; then
		cat "$gfk_tmp/log" >&2
		rm -rf "$gfk_tmp"
		die "guestfish cannot launch its appliance with $gfk_env"
	fi
	rm -rf "$gfk_tmp"
	log "libguestfs works"
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

# --- 6. S3 server for the offsite-copy tests (started at step 0) -------------
if ! wait "$s3pid"; then
	cat "$s3log" >&2
	rm -f "$s3log"
	die "the S3 server (versitygw) could not be installed"
fi
cat "$s3log"
rm -f "$s3log"

log "done"
