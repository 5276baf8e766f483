#!/bin/bash
# ember guest recipe: the busybox user space, as a gzip'd newc initramfs and as a
# small ext4 image of the same tree. Prints the output directory
# (initramfs.cpio.gz, initramfs.cpio, rootfs.ext4) on stdout.
#
# initramfs.cpio is the same archive uncompressed: on an emulating host the
# kernel's gunzip of the initramfs runs at CPL0, one emulated instruction at a
# time, and costs minutes; an uncompressed archive is only copied.
#
# Needs: busybox-static cpio e2fsprogs gcc (vsock.c, a static AF_VSOCK tool: busybox
# has none)
. "$(dirname "$0")/common.sh"

ROOTFS_MIB=${ROOTFS_MIB:-16}

build() {
	local bbver cpiover e2ver ccver key out work tree started a asroot
	bbver=$(pkg_version busybox-static)
	cpiover=$(pkg_version cpio)
	e2ver=$(pkg_version e2fsprogs)
	need_cmd cpio mkfs.ext4 gzip gcc
	ccver=$(gcc -dumpfullversion)
	asroot=$([ "$(id -u)" = 0 ] && echo root || echo user)
	key=$(cache_key "$GUEST_RECIPE_DIR/init" "$GUEST_RECIPE_DIR/build-rootfs.sh" \
		"$GUEST_RECIPE_DIR/common.sh" "$GUEST_RECIPE_DIR/vsock.c" "gcc=$ccver" \
		"busybox-static=$bbver" "cpio=$cpiover" \
		"e2fsprogs=$e2ver" "rootfs_mib=$ROOTFS_MIB" "as=$asroot")
	out=$GUEST_CACHE/rootfs/$key
	if [ -f "$out/initramfs.cpio.gz" ] && [ -f "$out/initramfs.cpio" ] && [ -f "$out/rootfs.ext4" ]; then
		printf '%s\n' "$out"
		return
	fi
	log "building busybox initramfs + ext4 (busybox-static $bbver, key $key): $(miss_reason rootfs "$key")"
	started=$(date +%s)
	work=$GUEST_CACHE/work/rootfs-$key
	rm -rf "$work"
	tree=$work/tree
	mkdir -p "$tree"/{bin,dev,etc,proc,sys,tmp,root,mnt,run,lib/modules} "$tree/usr" "$work/out"
	ln -s ../bin "$tree/usr/bin"
	ln -s bin "$tree/sbin"
	ln -s ../bin "$tree/usr/sbin"
	cp /bin/busybox "$tree/bin/busybox"
	ln -s busybox "$tree/bin/sh"
	gcc -static -O2 -Wall -Werror -s -o "$tree/bin/vsock" "$GUEST_RECIPE_DIR/vsock.c"
	install -m 0755 "$GUEST_RECIPE_DIR/init" "$tree/init"
	printf 'root::0:0:root:/root:/bin/sh\n' >"$tree/etc/passwd"
	printf 'root:x:0:\n' >"$tree/etc/group"
	printf 'export PS1="ember# "\n' >"$tree/etc/profile"
	chmod 1777 "$tree/tmp"
	# The kernel opens /dev/console for /init before devtmpfs exists; making the
	# node needs root (without it, /init takes the console itself).
	if [ "$asroot" = root ]; then
		mknod -m 0600 "$tree/dev/console" c 5 1
		mknod -m 0666 "$tree/dev/null" c 1 3
	fi
	find "$tree" -exec touch -h -d @0 {} + # same inputs, same archive
	(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$work/out/initramfs.cpio"
	gzip -9n <"$work/out/initramfs.cpio" >"$work/out/initramfs.cpio.gz"
	# The initramfs holds no applet links: /init makes them (busybox --install),
	# since each file the kernel unpacks costs guest time, a lot of it on an
	# emulating host. The disk image has them all, and may be mounted read-only.
	for a in $(/bin/busybox --list); do
		[ -e "$tree/bin/$a" ] || ln -s busybox "$tree/bin/$a"
	done
	# Same tree as a file system for block-device tests (root=/dev/vda).
	mkfs.ext4 -q -F -L ember-root -E root_owner=0:0 -d "$tree" "$work/out/rootfs.ext4" \
		"${ROOTFS_MIB}M" >/dev/null
	printf 'busybox-static %s\nkey %s\nbuilt %s\n' "$bbver" "$key" "$(date -u +%FT%TZ)" \
		>"$work/out/BUILDINFO"
	publish "$work/out" "$out"
	rm -rf "$work"
	log "initramfs and rootfs built in $(($(date +%s) - started))s: $out"
	printf '%s\n' "$out"
}

with_lock rootfs build
