#!/bin/sh
# Install the Debian packages ember needs (as root), or say which are missing.
# Usage: deps.sh [--no-install-recommends] PACKAGE...
apt_opts=""
if [ "${1:-}" = --no-install-recommends ]; then
	apt_opts=$1
	shift
fi
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && { echo "deps: all packages present"; exit 0; }
echo "deps: missing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "deps: run as root, or install them yourself: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# `apt-get update` only when the package lists are missing or the install fails.
apt-get install -y -q $apt_opts $missing ||
	{ apt-get update -q && apt-get install -y -q $apt_opts $missing; } || {
	echo "deps: apt-get could not install:$missing" >&2
	exit 1
}
