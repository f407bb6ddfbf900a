#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium, installing Debian's `chromium` package
# when it is missing (as hack/gitea.sh does for git), so the browser test of the profile
# page runs on a fresh Debian machine. Concurrent callers wait on a lock instead of
# running apt-get twice.
#
#   hack/chromium.sh        # prints /usr/bin/chromium
set -euo pipefail

log() { echo "chromium: $*" >&2; }
die() { log "$*"; exit 1; }

find_chromium() {
	for c in chromium chromium-browser; do
		if command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}

if path=$(find_chromium); then
	echo "$path"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "chromium is not installed and we are not root: apt-get install chromium"
exec 9>/tmp/fedforge-chromium-install.lock
flock 9
if path=$(find_chromium); then
	echo "$path"
	exit 0
fi
log "installing chromium from Debian"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2 ||
	{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2; } ||
	die "chromium is missing and apt-get could not install it"
find_chromium || die "apt-get installed chromium but no chromium binary is on PATH"
