#!/bin/bash
# ember guest recipe, top level: build (or reuse from the cache) every part of the
# default Linux guest and point stable names in OUTDIR at the cached files:
#   OUTDIR/vmlinux, bzImage, System.map, kernel.config   microVM kernel
#   OUTDIR/initramfs.cpio.gz, initramfs.cpio, rootfs.ext4 busybox user space
#   OUTDIR/vmlinuz-cloud, vmlinux-cloud, cloud.config     Debian's stock cloud kernel (bzImage, its ELF)
#   OUTDIR/initramfs-cloud.cpio                           initramfs + its virtio modules
# Usage: build.sh OUTDIR [kernel|rootfs|cloud]...   (default: all three)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [kernel|rootfs|cloud]..." >&2; exit 2; }
outdir=$1
shift
parts=${*:-kernel rootfs cloud}
mkdir -p "$outdir"

link() { ln -sfn "$1" "$outdir/$2"; }

for p in $parts; do
	case $p in
	kernel)
		k=$("$here/build-kernel.sh")
		link "$k/vmlinux" vmlinux
		link "$k/bzImage" bzImage
		link "$k/System.map" System.map
		link "$k/config" kernel.config
		;;
	rootfs)
		r=$("$here/build-rootfs.sh")
		link "$r/initramfs.cpio.gz" initramfs.cpio.gz
		link "$r/initramfs.cpio" initramfs.cpio
		link "$r/rootfs.ext4" rootfs.ext4
		;;
	cloud)
		r=$("$here/build-rootfs.sh")
		c=$("$here/fetch-cloud-kernel.sh")
		link "$c/vmlinuz" vmlinuz-cloud
		link "$c/vmlinux" vmlinux-cloud
		link "$c/config" cloud.config
		# Linux unpacks concatenated cpio archives one after the other.
		cat "$r/initramfs.cpio" "$c/modules.cpio" >"$outdir/initramfs-cloud.cpio.tmp"
		mv "$outdir/initramfs-cloud.cpio.tmp" "$outdir/initramfs-cloud.cpio"
		;;
	*)
		echo "build.sh: unknown part '$p' (kernel, rootfs, cloud)" >&2
		exit 2
		;;
	esac
done
