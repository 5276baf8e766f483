# ember guest recipe: shared helpers (sourced by the build-*.sh scripts).
#
# Cache layout, outside the source tree so that later runs and CI on the same
# machine reuse it:
#   ${EMBER_CACHE:-/var/cache/ember}/guest/<kind>/<key>/   finished outputs
#   ${EMBER_CACHE:-/var/cache/ember}/guest/work/<kind>-<key>/  scratch (removed on success)
# <key> is a hash of everything that determines the output (recipe files, the
# Debian package versions used), so a change to any of them builds a new entry
# and the old one stays valid for other checkouts.

set -eu

GUEST_RECIPE_DIR=$(cd "$(dirname "$0")" && pwd)

guest_cache_root() {
	local root=${EMBER_CACHE:-/var/cache/ember}
	if ! mkdir -p "$root/guest" 2>/dev/null || [ ! -w "$root/guest" ]; then
		root=${XDG_CACHE_HOME:-$HOME/.cache}/ember
		mkdir -p "$root/guest"
	fi
	printf '%s/guest\n' "$root"
}
GUEST_CACHE=$(guest_cache_root)

log() { printf 'ember-guest: %s\n' "$*" >&2; }
die() { printf 'ember-guest: error: %s\n' "$*" >&2; exit 1; }

# pkg_version PACKAGE: installed version, or die with the apt-get line to run.
pkg_version() {
	dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
		awk '$3 == "installed" { print $4; found = 1 } END { exit !found }' ||
		die "Debian package '$1' is not installed (apt-get install $1)"
}

need_cmd() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || die "'$c' not found (see third_party/guest/README.md for the apt-get line)"
	done
}

# cache_key WORD...: 16 hex digits of sha256 over the words; a word naming a
# file stands for that file's contents.
cache_key() {
	local w
	for w in "$@"; do
		if [ -f "$w" ]; then
			printf 'file %s\n' "$(basename "$w")"
			cat "$w"
		else
			printf 'word %s\n' "$w"
		fi
	done | sha256sum | cut -c1-16
}

# miss_reason KIND KEY: why KIND/KEY is not cached, for the one-line notice.
miss_reason() {
	local others
	others=$(ls "$GUEST_CACHE/$1" 2>/dev/null | grep -v "^$2\$" | tr '\n' ' ' || true)
	if [ -n "$others" ]; then
		printf 'recipe or package versions changed (cached keys: %s)' "${others% }"
	else
		printf 'nothing cached yet in %s' "$GUEST_CACHE/$1"
	fi
}

# with_lock KIND CMD...: serialise builds of one kind across processes.
with_lock() {
	local kind=$1
	shift
	mkdir -p "$GUEST_CACHE"
	exec 9>"$GUEST_CACHE/.lock-$kind"
	flock 9
	"$@"
}

# publish TMPDIR FINALDIR: make a finished build visible atomically.
publish() {
	mkdir -p "$(dirname "$2")"
	rm -rf "$2.old"
	[ ! -e "$2" ] || mv "$2" "$2.old"
	mv "$1" "$2"
	rm -rf "$2.old"
}
