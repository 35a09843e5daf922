#!/usr/bin/env bash
# build-guest.sh - build knib's tiny test guest (kernel + initramfs), cached.
#
# Output, in ${KNIB_GUEST_DIR:-/var/cache/knib/guest}, all world-readable (QEMU
# runs as libvirt-qemu):
#   vmlinuz             Debian's cloud kernel (linux-image-*-cloud-amd64)
#   initramfs.cpio.gz   busybox-static + qemu-ga + virtio modules + /init
#   kernel-version      the kernel release the two were built from
#   .build-guest.sha256 hash of this script; the guest is rebuilt only when an
#                       output is missing or this script changed.
#
# The guest's /init loads the virtio modules, mounts /dev/vda (ext4) at /data
# when it holds a file system, starts qemu-ga on the virtio-serial port
# org.qemu.guest_agent.0, prints the boot marker KNIB-GUEST-READY on the
# serial console and then idles. Needs: apt (network to Debian's mirror),
# dpkg, busybox-static, qemu-guest-agent, gzip, flock (util-linux).
set -euo pipefail

log() { printf 'build-guest: %s\n' "$*"; }
die() { printf 'build-guest: ERROR: %s\n' "$*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/kernel-pkg.sh"

out=${KNIB_GUEST_DIR:-/var/cache/knib/guest}
self=$(readlink -f "${BASH_SOURCE[0]}")
busybox=/bin/busybox
qemu_ga=/usr/sbin/qemu-ga
# Load order of the virtio modules (their dependencies are added from
# modules.dep in front of each, so the list only has to be complete enough).
modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
	virtio_console virtio_blk)

umask 022
mkdir -p "$out"
chmod 0755 "$out"

# Serialise concurrent builds (parallel `go test` processes all call this).
if command -v flock >/dev/null; then
	exec 9>"$out/.lock"
	flock 9
fi

want=$(sha256sum "$self" | cut -d' ' -f1)
have=$(cat "$out/.build-guest.sha256" 2>/dev/null || true)
if [[ -s $out/vmlinuz && -s $out/initramfs.cpio.gz && $want == "$have" ]]; then
	log "up to date in $out ($(cat "$out/kernel-version" 2>/dev/null || echo '?'))"
	exit 0
fi

[[ -x $busybox ]] || die "$busybox missing (apt-get install busybox-static)"
[[ -x $qemu_ga ]] || die "$qemu_ga missing (apt-get install qemu-guest-agent)"

tmp=$(mktemp -d /tmp/knib-guest.XXXXXX)
chmod 0755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

# --- kernel package ---------------------------------------------------------
pkg=$(cloud_kernel_pkg)
log "downloading $pkg"
mkdir "$tmp/deb"
# Let apt's sandbox user write there (avoids a warning and a root fallback).
if id _apt >/dev/null 2>&1; then chown _apt "$tmp/deb"; fi
(cd "$tmp/deb" && apt-get download -qq "$pkg") || die "apt-get download $pkg failed"
dpkg -x "$tmp"/deb/*.deb "$tmp/k"
kver=$(ls "$tmp/k/lib/modules")
[[ -f $tmp/k/boot/vmlinuz-$kver ]] || die "no boot/vmlinuz-$kver in $pkg"
moddir=$tmp/k/lib/modules/$kver
# The package ships no modules.dep (depmod runs at install time): make one.
"$busybox" depmod -b "$tmp/k" "$kver"

# --- module load order from modules.dep -------------------------------------
declare -A modpath=() moddeps=() seen=()
while IFS= read -r line; do
	file=${line%%:*}
	name=${file##*/}
	name=${name%%.ko*}
	name=${name//-/_}
	modpath[$name]=$file
	deps=${line#*:}
	moddeps[$name]=$deps
done <"$moddir/modules.dep"

order=()
add_module() {
	local name=$1 d dn
	[[ -n ${seen[$name]:-} ]] && return 0
	[[ -n ${modpath[$name]:-} ]] || die "module $name not in $pkg"
	seen[$name]=1
	for d in ${moddeps[$name]}; do
		dn=${d##*/}
		dn=${dn%%.ko*}
		add_module "${dn//-/_}"
	done
	order+=("${modpath[$name]}")
}
for m in "${modules[@]}"; do add_module "$m"; done
for f in "${order[@]}"; do
	[[ $f == *.ko ]] || die "module $f is compressed; busybox insmod needs plain .ko"
done
log "modules: ${order[*]##*/}"

# --- initramfs tree ----------------------------------------------------------
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,data,etc,root,var/log,lib/modules/"$kver"}
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"

cp "$busybox" "$root/bin/busybox"
while IFS= read -r applet; do
	[[ $applet == */* ]] || continue # e.g. linuxrc at the top level
	[[ -e $root/$applet || -L $root/$applet ]] && continue
	ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

# qemu-ga and every library ldd lists, at the same paths.
cp "$qemu_ga" "$root/usr/sbin/qemu-ga"
libs=$(ldd "$qemu_ga" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[[ -n $libs ]] || die "ldd $qemu_ga listed no libraries"
for lib in $libs; do
	mkdir -p "$root/$(dirname "$lib")"
	cp -L "$lib" "$root/$lib"
done

for f in "${order[@]}"; do
	mkdir -p "$root/lib/modules/$kver/$(dirname "$f")"
	cp "$moddir/$f" "$root/lib/modules/$kver/$f"
	printf '/lib/modules/%s/%s\n' "$kver" "$f"
done >"$root/etc/knib-modules"

printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf 'knib-guest\n' >"$root/etc/hostname"

# qemu-ga's guest-shutdown runs /sbin/shutdown -h|-r|-H -P +0 MSG; busybox has
# no shutdown applet. The power-off is delayed so qemu-ga sees a clean exit.
cat >"$root/sbin/shutdown" <<'SHUTDOWN'
#!/bin/sh
# knib test guest: minimal shutdown for qemu-ga's guest-shutdown.
case "$1" in
-r) action="reboot -f" ;;
-H) action="halt -f" ;;
*) action="poweroff -f" ;;
esac
sync
(sleep 1; sync; $action) </dev/null >/dev/null 2>&1 &
exit 0
SHUTDOWN
chmod 0755 "$root/sbin/shutdown"

cat >"$root/init" <<'INIT'
#!/bin/sh
# /init of the knib test guest (generated by scripts/build-guest.sh).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
hostname -F /etc/hostname

while read -r m; do
	insmod "$m" || echo "knib-guest: insmod $m failed"
done </etc/knib-modules

# /data: the first virtio disk, when it holds an ext4 file system.
i=0
while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if [ -b /dev/vda ] && mount -t ext4 /dev/vda /data 2>/dev/null; then
	echo "knib-guest: /dev/vda mounted at /data"
else
	echo "knib-guest: /dev/vda not mounted"
fi

# Guest agent on the virtio-serial port named org.qemu.guest_agent.0.
port=
i=0
while [ -z "$port" ] && [ $i -lt 100 ]; do
	for n in /sys/class/virtio-ports/*/name; do
		[ -r "$n" ] || continue
		if [ "$(cat "$n")" = org.qemu.guest_agent.0 ]; then
			d=${n%/name}
			port=${d##*/}
		fi
	done
	[ -n "$port" ] || { sleep 0.1; i=$((i + 1)); }
done
if [ -n "$port" ]; then
	i=0
	while [ ! -c "/dev/$port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	qemu-ga -m virtio-serial -p "/dev/$port" -l /var/log/qemu-ga.log -d ||
		echo "knib-guest: qemu-ga failed to start"
else
	echo "knib-guest: no virtio-serial port org.qemu.guest_agent.0"
fi

echo KNIB-GUEST-READY >/dev/ttyS0
echo KNIB-GUEST-READY >/dev/console

# busybox halt/poweroff/reboot signal init with USR1/USR2/TERM.
trap 'sync; halt -f' USR1
trap 'sync; poweroff -f' USR2
trap 'sync; reboot -f' TERM
while :; do
	sleep 3600 &
	wait $!
done
INIT
chmod 0755 "$root/init"

(cd "$root" && find . | LC_ALL=C sort | "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) |
	gzip -9n >"$tmp/initramfs.cpio.gz"

# --- install atomically -----------------------------------------------------
install -m 0644 "$tmp/k/boot/vmlinuz-$kver" "$out/.vmlinuz.new"
install -m 0644 "$tmp/initramfs.cpio.gz" "$out/.initramfs.cpio.gz.new"
mv -f "$out/.vmlinuz.new" "$out/vmlinuz"
mv -f "$out/.initramfs.cpio.gz.new" "$out/initramfs.cpio.gz"
printf '%s\n' "$kver" >"$out/kernel-version"
chmod 0644 "$out/kernel-version"
printf '%s\n' "$want" >"$out/.build-guest.sha256"
log "built $out (kernel $kver, initramfs $(du -k "$out/initramfs.cpio.gz" | cut -f1) KiB)"
