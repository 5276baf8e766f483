#!/bin/bash
# ember KVM sandbox: the kernel and initramfs that QEMU (TCG, an AMD CPU with SVM and
# nested paging) boots to give a host without a usable /dev/kvm a real one (kvm_amd).
# Prints the output directory: vmlinuz (Debian's generic kernel), initramfs.cpio.gz
# (busybox, the modules below with their dependencies, load order worked out here,
# and tests/sandbox/init), BUILDINFO. Cached machine-wide beside the guest kernels,
# keyed by the kernel package's version and these files.
#
# Needs: apt (with a package list), dpkg-deb, busybox-static, cpio, gzip, python3
. "$(dirname "$0")/../../third_party/guest/common.sh"

SANDBOX_DIR=$(cd "$(dirname "$0")" && pwd)
# kvm_amd for /dev/kvm; virtio_pci + 9p for the host's files; virtio_blk + ext4 for the
# scratch disk (/tmp with user xattrs, which tmpfs lacks on 6.1); tun and veth for the
# network tests.
MODULES="kvm-amd virtio_pci 9pnet_virtio 9p virtio_blk crc32c_generic ext4 tun veth"

kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

build() {
	local pkg ver key out work kver started
	need_cmd apt-cache apt-get dpkg-deb cpio gzip python3
	pkg=$(kernel_package)
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ] && ! ls -d "$GUEST_CACHE"/sandbox/*/ >/dev/null 2>&1; then
		apt-get update -q >&2 || true # a fresh machine may have no package lists yet
		pkg=$(kernel_package)
	fi
	if [ -z "$pkg" ]; then
		out=$(ls -dt "$GUEST_CACHE"/sandbox/*/ 2>/dev/null | head -n 1)
		[ -n "$out" ] || die "apt knows no linux-image-amd64 (run apt-get update)"
		log "apt knows no linux-image-amd64; using the cached sandbox $(head -n 1 "$out/BUILDINFO")"
		printf '%s\n' "${out%/}"
		return
	fi
	# The unsigned package holds the same kernel without the Secure Boot signature.
	apt-cache show "$pkg-unsigned" >/dev/null 2>&1 && pkg=$pkg-unsigned
	ver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ { print $2; exit }')
	key=$(cache_key "$SANDBOX_DIR/build.sh" "$SANDBOX_DIR/init" "$SANDBOX_DIR/modorder.py" \
		"$pkg=$ver" "busybox-static=$(pkg_version busybox-static)" "modules=$MODULES")
	out=$GUEST_CACHE/sandbox/$key
	if [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.cpio.gz" ]; then
		printf '%s\n' "$out"
		return
	fi
	log "building the KVM sandbox ($pkg $ver, key $key): $(miss_reason sandbox "$key")"
	started=$(date +%s)
	work=$GUEST_CACHE/work/sandbox-$key
	rm -rf "$work"
	mkdir -p "$work/deb" "$work/x" "$work/out" "$work/tree"
	chmod 0777 "$work/deb" # apt's download sandbox user writes here
	(cd "$work/deb" && apt-get download "$pkg=$ver" >&2) || die "apt-get download $pkg=$ver failed"
	dpkg-deb -x "$work"/deb/*.deb "$work/x"
	kver=$(ls "$work/x/lib/modules")
	cp "$work/x/boot/vmlinuz-$kver" "$work/out/vmlinuz"
	busybox depmod -b "$work/x" "$kver"
	local tree=$work/tree mdir=$work/x/lib/modules/$kver
	mkdir -p "$tree"/{bin,dev,proc,sys,host,scratch,modules}
	cp /bin/busybox "$tree/bin/busybox"
	ln -s busybox "$tree/bin/sh"
	install -m 0755 "$SANDBOX_DIR/init" "$tree/init"
	# Each module once, in an order where everything it needs comes before it.
	python3 "$SANDBOX_DIR/modorder.py" "$mdir/modules.dep" $MODULES >"$work/order" ||
		die "$pkg: a module is missing ($MODULES)"
	local i=0 m
	while read -r m; do
		i=$((i + 1))
		cp "$mdir/$m" "$tree/modules/$(printf '%02d' $i)-$(basename "$m")"
	done <"$work/order"
	mknod -m 0600 "$tree/dev/console" c 5 1 2>/dev/null || true
	find "$tree" -exec touch -h -d @0 {} +
	(cd "$tree" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -1n >"$work/out/initramfs.cpio.gz"
	printf '%s %s\nkernel %s\nmodules %s\nkey %s\nbuilt %s\n' "$pkg" "$ver" "$kver" \
		"$(xargs -n1 basename <"$work/order" | tr '\n' ' ')" "$key" "$(date -u +%FT%TZ)" \
		>"$work/out/BUILDINFO"
	publish "$work/out" "$out"
	rm -rf "$work"
	log "KVM sandbox ready in $(($(date +%s) - started))s: $out"
	printf '%s\n' "$out"
}

with_lock sandbox build
