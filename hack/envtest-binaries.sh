#!/usr/bin/env bash
# Builds the control-plane binaries that envtest and `make run` need (kube-apiserver, etcd,
# and kubectl for convenience) from the Go module proxy, because no official envtest download
# is reachable from our build machines. Binaries are cached under bin/ by version and a
# second run with the same versions does nothing.
#
#   hack/envtest-binaries.sh            # prints the assets directory (KUBEBUILDER_ASSETS)
#
# Versions: Kubernetes follows go.mod's k8s.io/api (v0.X.Y -> v1.X.Y); etcd is ETCD_VERSION.
# If an official envtest tarball is reachable (ENVTEST_DOWNLOAD_URL), it is preferred.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

staging_version=$(awk '$1=="k8s.io/api"{print $2; exit}' go.mod)
[ -n "$staging_version" ] || { echo "envtest-binaries: k8s.io/api not found in go.mod" >&2; exit 1; }
K8S_VERSION=${K8S_VERSION:-v1${staging_version#v0}}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
assets="$root/bin/k8s/${K8S_VERSION}-$(go env GOOS)-$(go env GOARCH)"
mkdir -p "$assets"

BINARIES_LOG=envtest-binaries
# shellcheck source=hack/lib/binaries.sh
source "$root/hack/lib/binaries.sh"

# try_download fetches an official envtest tarball when ENVTEST_DOWNLOAD_URL is set and
# reachable; it is a no-op (and harmless) on machines without that network access.
try_download() {
	[ -n "${ENVTEST_DOWNLOAD_URL:-}" ] || return 1
	local tmp; tmp=$(mktemp -d)
	if curl -fsSL --max-time 60 "$ENVTEST_DOWNLOAD_URL" -o "$tmp/envtest.tgz" 2>/dev/null &&
		tar -C "$tmp" -xzf "$tmp/envtest.tgz"; then
		find "$tmp" -type f \( -name kube-apiserver -o -name etcd -o -name kubectl \) -exec cp {} "$assets/" \;
		rm -rf "$tmp"; return 0
	fi
	rm -rf "$tmp"; return 1
}

# envtest's commands of k8s.io/kubernetes (hack/lib/binaries.sh builds them).
K8S_ENVTEST_CMDS=(kube-apiserver kubectl)

# build_etcd builds etcd from go.etcd.io/etcd/server/v3, whose root package is the etcd
# binary, cached as bin/etcd/<version>/etcd, and copies it into the assets directory.
build_etcd() {
	local cache
	cache=$(build_go_tool etcd go.etcd.io/etcd/server/v3 "$ETCD_VERSION" go.etcd.io/etcd/server/v3)
	cp -f "$cache" "$assets/etcd"
}

if [ ! -x "$assets/kube-apiserver" ] || [ ! -x "$assets/etcd" ]; then
	try_download || true
fi
build_etcd
build_k8s_cmd "$assets" "" kube-apiserver "${K8S_ENVTEST_CMDS[@]}"
if [ "${ENVTEST_KUBECTL:-1}" = 1 ]; then build_k8s_cmd "$assets" "" kubectl "${K8S_ENVTEST_CMDS[@]}"; fi
echo "$assets"
