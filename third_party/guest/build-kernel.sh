#!/bin/bash
# ember guest recipe: the microVM kernel, built from Debian's linux-source-6.1
# with `make tinyconfig` + microvm.config. Prints the output directory
# (vmlinux, bzImage, System.map, config) on stdout.
#
# Needs: linux-source-6.1 build-essential flex bison bc libelf-dev
. "$(dirname "$0")/common.sh"

FRAGMENT=$GUEST_RECIPE_DIR/microvm.config
TARBALL=/usr/src/linux-source-6.1.tar.xz
JOBS=${JOBS:-$(nproc)}

build() {
	local ver key out work obj src started
	ver=$(pkg_version linux-source-6.1)
	need_cmd make gcc flex bison bc xz
	[ -f "$TARBALL" ] || die "$TARBALL missing (apt-get install linux-source-6.1)"
	key=$(cache_key "$FRAGMENT" "$GUEST_RECIPE_DIR/build-kernel.sh" \
		"$GUEST_RECIPE_DIR/common.sh" "linux-source-6.1=$ver" "$(gcc -dumpfullversion)")
	out=$GUEST_CACHE/kernel/$key
	if [ -f "$out/vmlinux" ]; then
		printf '%s\n' "$out"
		return
	fi
	log "building microVM kernel (linux-source-6.1 $ver, key $key): $(miss_reason kernel "$key")"
	started=$(date +%s)
	work=$GUEST_CACHE/work/kernel-$key
	rm -rf "$work"
	mkdir -p "$work/obj"
	src=$work/linux-source-6.1
	tar -C "$work" -xf "$TARBALL"
	obj=$work/obj
	log "  log: $work/build.log"
	{
		make -C "$src" O="$obj" ARCH=x86_64 tinyconfig
		"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" "$FRAGMENT"
		make -C "$src" O="$obj" ARCH=x86_64 olddefconfig
	} >"$work/build.log" 2>&1 || die "kernel configuration failed, see $work/build.log"
	check_config "$obj/.config"
	make -C "$src" O="$obj" ARCH=x86_64 -j"$JOBS" vmlinux bzImage \
		>>"$work/build.log" 2>&1 || {
		tail -n 30 "$work/build.log" >&2
		die "kernel build failed, see $work/build.log"
	}
	mkdir -p "$work/out"
	cp "$obj/vmlinux" "$obj/System.map" "$work/out/"
	cp "$obj/arch/x86/boot/bzImage" "$work/out/bzImage"
	cp "$obj/.config" "$work/out/config"
	printf 'linux-source-6.1 %s\nkey %s\nbuilt %s in %ss\n' "$ver" "$key" \
		"$(date -u +%FT%TZ)" "$(($(date +%s) - started))" >"$work/out/BUILDINFO"
	publish "$work/out" "$out"
	cp "$work/build.log" "$out/build.log"
	rm -rf "$work"
	log "kernel built in $(($(date +%s) - started))s: $out"
	printf '%s\n' "$out"
}

# Every option of the fragment must have survived olddefconfig: a dropped
# option (unmet dependency) would otherwise silently produce a kernel that
# cannot find its devices.
check_config() {
	local bad=0 line opt want
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*)
			opt=${line%%=*}
			grep -qx -- "$line" "$1" || { log "config: wanted $line, got: $(grep -E "^(# )?$opt[= ]" "$1" || echo unset)"; bad=1; }
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }
			opt=${opt%% *}
			want=$(grep -E "^$opt=" "$1" || true)
			[ -z "$want" ] || { log "config: wanted $opt off, got: $want"; bad=1; }
			;;
		esac
	done <"$FRAGMENT"
	[ "$bad" = 0 ] || die "microvm.config does not apply cleanly to this kernel"
}

with_lock kernel build
