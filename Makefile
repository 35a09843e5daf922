# knib Makefile
# more targets are added by others

.PHONY: setup guest

# Install packages, start virtlogd/libvirtd, build the test guest (root).
setup:
	bash scripts/setup.sh

# Build (or confirm cached) the test guest kernel + initramfs.
guest:
	bash scripts/build-guest.sh
