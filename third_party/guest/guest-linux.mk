# ember: the default Linux guest (third_party/guest/), included by the main Makefile.
# `make guest-linux` builds it from Debian packages, or reuses the machine-wide cache
# (${EMBER_CACHE:-/var/cache/ember}/guest/), and leaves stable symlinks in
# $(GUEST_LINUX_DIR). The recipe scripts decide what is stale (their cache key), so
# the targets are phony and cheap when nothing changed.
GUEST_LINUX_RECIPE := third_party/guest
GUEST_LINUX_DIR := $(BUILD)/linux
GUEST_LINUX_VMLINUX := $(GUEST_LINUX_DIR)/vmlinux
GUEST_LINUX_BZIMAGE := $(GUEST_LINUX_DIR)/bzImage
GUEST_LINUX_INITRAMFS := $(GUEST_LINUX_DIR)/initramfs.cpio.gz
GUEST_LINUX_INITRAMFS_RAW := $(GUEST_LINUX_DIR)/initramfs.cpio
GUEST_LINUX_ROOTFS := $(GUEST_LINUX_DIR)/rootfs.ext4
GUEST_LINUX_CLOUD_KERNEL := $(GUEST_LINUX_DIR)/vmlinuz-cloud
GUEST_LINUX_CLOUD_VMLINUX := $(GUEST_LINUX_DIR)/vmlinux-cloud
GUEST_LINUX_CLOUD_INITRAMFS := $(GUEST_LINUX_DIR)/initramfs-cloud.cpio
# Debian packages the recipe needs (for `make deps`).
GUEST_LINUX_DEB_PACKAGES := linux-source-6.1 flex bison bc libelf-dev busybox-static cpio \
	e2fsprogs xz-utils lz4 python3

.PHONY: guest-linux guest-linux-kernel guest-linux-rootfs guest-linux-cloud
guest-linux:
	$(Q)$(GUEST_LINUX_RECIPE)/build.sh $(GUEST_LINUX_DIR) kernel rootfs cloud
guest-linux-kernel:
	$(Q)$(GUEST_LINUX_RECIPE)/build.sh $(GUEST_LINUX_DIR) kernel
guest-linux-rootfs:
	$(Q)$(GUEST_LINUX_RECIPE)/build.sh $(GUEST_LINUX_DIR) rootfs
guest-linux-cloud:
	$(Q)$(GUEST_LINUX_RECIPE)/build.sh $(GUEST_LINUX_DIR) cloud
