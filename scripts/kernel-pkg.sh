# kernel-pkg.sh - sourced by setup.sh and build-guest.sh (which define log
# and die): the versioned cloud kernel package both take their kernel from.

# cloud_kernel_pkg prints the linux-image-*-cloud-amd64 package that
# linux-image-cloud-amd64 depends on, refreshing the apt lists once if they
# lack it.
cloud_kernel_pkg() {
	local pkg
	pkg=$(_cloud_kernel_dep || true)
	if [[ -z $pkg ]]; then
		log "apt lists lack linux-image-cloud-amd64: apt-get update" >&2
		apt-get update -qq >&2
		pkg=$(_cloud_kernel_dep || true)
	fi
	[[ -n $pkg ]] || die "cannot find the package linux-image-cloud-amd64 depends on"
	printf '%s\n' "$pkg"
}

_cloud_kernel_dep() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
