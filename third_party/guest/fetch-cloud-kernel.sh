#!/bin/bash
# ember guest recipe: Debian's stock cloud kernel, unpacked (never installed) from the
# image package that linux-image-cloud-amd64 depends on. Prints the output directory:
# vmlinuz (bzImage), vmlinux (the ELF kernel inside it), config, and modules.cpio
# (the virtio drivers with their dependencies and a modules.dep, uncompressed like
# initramfs.cpio), to be appended to the busybox initramfs.
#
# The ELF vmlinux matters on an emulating host: a bzImage first decompresses its
# kernel at CPL0, which that host runs one instruction at a time (tens of minutes).
#
# Needs: apt (with a package list: apt-get update), dpkg-deb, busybox-static, cpio,
# python3, lz4 (xz-utils, zstd or gzip if Debian changes the kernel compression)
. "$(dirname "$0")/common.sh"

# Drivers the initramfs loads for ember's devices; dependencies come from depmod.
MODULES="virtio_mmio virtio_blk virtio_net vmw_vsock_virtio_transport virtio-rng virtio_balloon"

build() {
	local pkg ver key out work kver started mods m dep
	need_cmd apt-cache apt-get dpkg-deb cpio
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		# No package list (offline CI): the newest cached download will do.
		out=$(ls -dt "$GUEST_CACHE"/cloud/*/ 2>/dev/null | head -n 1)
		[ -n "$out" ] || die "apt knows no linux-image-cloud-amd64 (run apt-get update)"
		log "apt knows no linux-image-cloud-amd64; using the cached $(head -n 1 "$out/BUILDINFO")"
		printf '%s\n' "${out%/}"
		return
	fi
	ver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/ { print $2; exit }')
	key=$(cache_key "$GUEST_RECIPE_DIR/fetch-cloud-kernel.sh" "$GUEST_RECIPE_DIR/common.sh" \
		"$pkg=$ver" "modules=$MODULES")
	out=$GUEST_CACHE/cloud/$key
	if [ -f "$out/vmlinuz" ] && [ -f "$out/vmlinux" ] && [ -f "$out/modules.cpio" ]; then
		printf '%s\n' "$out"
		return
	fi
	log "fetching Debian cloud kernel ($pkg $ver, key $key): $(miss_reason cloud "$key")"
	started=$(date +%s)
	work=$GUEST_CACHE/work/cloud-$key
	rm -rf "$work"
	mkdir -p "$work/deb" "$work/x" "$work/out" "$work/mods"
	# apt-get download writes into the current directory; no install on the host.
	# (Writable for apt's sandbox user, which downloads as root with a warning otherwise.)
	chmod 0777 "$work/deb"
	(cd "$work/deb" && apt-get download "$pkg=$ver" >&2) || die "apt-get download $pkg=$ver failed"
	dpkg-deb -x "$work"/deb/*.deb "$work/x"
	kver=${pkg#linux-image-}
	cp "$work/x/boot/vmlinuz-$kver" "$work/out/vmlinuz"
	cp "$work/x/boot/config-$kver" "$work/out/config"
	extract_vmlinux "$work/out/vmlinuz" "$work/out/vmlinux" "$work/payload"
	# Module closure: depmod over the package's tree, then each wanted module
	# with everything modules.dep says it needs.
	busybox depmod -b "$work/x" "$kver"
	mods=
	for m in $MODULES; do
		dep=$(awk -F: -v m="/$m.ko" 'length($1) > length(m) && substr($1, length($1) - length(m) + 1) == m { print $1 $2; exit }' \
			"$work/x/lib/modules/$kver/modules.dep")
		[ -n "$dep" ] || die "$pkg has no module $m"
		mods="$mods $dep"
	done
	mkdir -p "$work/mods/lib/modules/$kver"
	for m in $(printf '%s\n' $mods | sort -u); do
		mkdir -p "$work/mods/lib/modules/$kver/$(dirname "$m")"
		cp "$work/x/lib/modules/$kver/$m" "$work/mods/lib/modules/$kver/$m"
	done
	cp "$work/x/lib/modules/$kver/modules.builtin" "$work/x/lib/modules/$kver/modules.order" \
		"$work/mods/lib/modules/$kver/"
	busybox depmod -b "$work/mods" "$kver"
	find "$work/mods" -exec touch -h -d @0 {} +
	(cd "$work/mods" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) >"$work/out/modules.cpio"
	printf '%s %s\nkernel %s\nmodules%s\nkey %s\nfetched %s\n' "$pkg" "$ver" "$kver" \
		"$(printf ' %s' $(printf '%s\n' $mods | sort -u | xargs -n1 basename))" "$key" \
		"$(date -u +%FT%TZ)" >"$work/out/BUILDINFO"
	publish "$work/out" "$out"
	rm -rf "$work"
	log "cloud kernel ready in $(($(date +%s) - started))s: $out"
	printf '%s\n' "$out"
}

# extract_vmlinux BZIMAGE OUT SCRATCH: the compressed payload is found through the
# setup header (payload_offset/payload_length, boot protocol 2.08+), not by searching
# for magic numbers; the result must be an ELF whose size matches the size the
# kernel build appended to the payload.
extract_vmlinux() {
	local size fmt
	need_cmd python3
	fmt=$(python3 - "$1" "$3" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
if d[0x202:0x206] != b"HdrS" or struct.unpack_from("<H", d, 0x206)[0] < 0x208:
    sys.exit("not a bzImage with boot protocol 2.08+")
setup_sects = d[0x1f1] or 4
off, length = struct.unpack_from("<II", d, 0x248)
start = (setup_sects + 1) * 512 + off
p = d[start:start + length]
open(sys.argv[2], "wb").write(p)
magic = {b"\x02\x21\x4c\x18": "lz4", b"\xfd7zXZ": "xz", b"\x1f\x8b": "gzip",
         b"\x28\xb5\x2f\xfd": "zstd"}
fmt = next((v for k, v in magic.items() if p.startswith(k)), None)
if not fmt:
    sys.exit("unknown payload compression %s" % p[:6].hex())
print(fmt, struct.unpack("<I", p[-4:])[0])
PY
	) || die "$1: cannot find the kernel payload"
	size=${fmt#* }
	fmt=${fmt% *}
	need_cmd "$fmt"
	# The appended size makes lz4 and zstd report trailing garbage: the size check
	# below is what decides.
	"$fmt" -dc <"$3" >"$2" 2>/dev/null || true
	[ "$(head -c 4 "$2" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
		die "$1: decompressed payload ($fmt) is not an ELF kernel"
	[ "$(stat -c %s "$2")" = "$size" ] ||
		die "$1: decompressed payload is $(stat -c %s "$2") bytes, expected $size"
	rm -f "$3"
}

with_lock cloud build
