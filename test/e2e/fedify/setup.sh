#!/usr/bin/env bash
# Installs what a Fedify peer of the e2e suite needs and prints the path of the node binary
# to run it with. Called by test/e2e/run.sh; needs no standard input.
#
#   setup.sh                      the Fedify 1.5.9 peer (test/e2e/fedify), Node 20 or newer
#   setup.sh fedify2 22 22.23.5   the Fedify 2.x peer (test/e2e/fedify2), Node 22 or newer
#
# Node: the node in PATH when its major version is at least the one asked for. Otherwise
# that Node release from the npm registry (the package node-linux-<arch>, which ships the
# official binary) under bin/node-<version>/, installed with the npm in PATH; on a fresh
# Debian 12, whose nodejs is 18, that npm comes from Debian (apt-get install nodejs npm).
# Packages: `npm ci` from the committed package-lock.json into test/e2e/<dir>/node_modules,
# skipped while the lockfile is the one last installed (npm's cache is its default, ~/.npm).
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
here="$root/test/e2e/${1:-fedify}"
node_major=${2:-20}
node_version=${3:-20.20.2} # the release installed when no node of node_major is found

log() { echo "fedify setup: $*" >&2; }

node_ok() { "$1" -e "process.exit(Number(process.versions.node.split('.')[0]) >= $node_major ? 0 : 1)" >/dev/null 2>&1; }

case "$(uname -m)" in
x86_64) arch=x64 ;;
aarch64) arch=arm64 ;;
*) echo "fedify setup: no Node package for $(uname -m)" >&2; exit 1 ;;
esac
prefix="$root/bin/node-$node_version"
cached="$prefix/node_modules/node-linux-$arch/bin/node"

node=""
if command -v node >/dev/null && node_ok "$(command -v node)"; then
	node=$(command -v node)
elif [ -x "$cached" ] && node_ok "$cached"; then
	node=$cached
else
	if ! command -v npm >/dev/null; then
		[ "$(id -u)" = 0 ] || { echo "fedify setup: need npm (apt-get install nodejs npm, as root)" >&2; exit 1; }
		log "installing Debian's nodejs and npm"
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q nodejs npm </dev/null >&2 || { apt-get update -q >&2 && apt-get install -y -q nodejs npm </dev/null >&2; }
	fi
	log "installing Node $node_version (npm package node-linux-$arch) under $prefix"
	mkdir -p "$prefix"
	npm install --prefix "$prefix" --no-save --no-package-lock --no-audit --no-fund \
		"node-linux-$arch@$node_version" </dev/null >&2
	node_ok "$cached" || { echo "fedify setup: $cached does not run" >&2; exit 1; }
	node=$cached
fi

# npm runs on the node chosen above (npm's launcher is `#!/usr/bin/env node`).
export PATH="$(dirname "$node"):$PATH"
stamp="$here/node_modules/.e2e-lock-sha256"
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	log "npm ci in $here (node $("$node" --version), npm $(npm --version 2>/dev/null))"
	(cd "$here" && npm ci --no-audit --no-fund </dev/null >&2)
	echo "$want" >"$stamp"
fi
echo "$node"
