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

log() { echo "envtest-binaries: $*" >&2; }

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

# build_k8s builds one command of k8s.io/kubernetes in a throwaway module. k8s.io/kubernetes
# replaces its staging modules with ./staging paths that do not exist in the module proxy's
# copy, so the throwaway module replaces each of them with its published v0.X.Y release.
build_k8s() {
	local cmd=$1 out="$assets/$1"
	[ -x "$out" ] && return 0
	local work="$root/bin/.build/kubernetes-${K8S_VERSION}"
	mkdir -p "$work"
	if [ ! -f "$work/go.sum" ]; then
		log "preparing k8s.io/kubernetes@${K8S_VERSION} build module in $work"
		(
			cd "$work"
			rm -f go.mod go.sum
			go mod init fedforge.local/build-kubernetes >/dev/null 2>&1
			go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
			kmod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
			for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$kmod"); do
				go mod edit -replace="$m=$m@${staging_version}"
			done
			cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
			go mod tidy >/dev/null
		)
	fi
	log "building $cmd ${K8S_VERSION} (several minutes cold)"
	local minor; minor=$(echo "$K8S_VERSION" | cut -d. -f2)
	local ldflags="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor}"
		ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	(cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$cmd")
	mv "$out.tmp" "$out"
}

# build_etcd builds etcd from go.etcd.io/etcd/server/v3, whose root package is the etcd binary.
build_etcd() {
	local out="$assets/etcd" cache="$root/bin/etcd/${ETCD_VERSION}/etcd"
	if [ ! -x "$cache" ]; then
		local work="$root/bin/.build/etcd-${ETCD_VERSION}"
		mkdir -p "$work" "$(dirname "$cache")"
		log "building etcd ${ETCD_VERSION} (about two minutes cold)"
		(
			cd "$work"
			[ -f go.mod ] || go mod init fedforge.local/build-etcd >/dev/null 2>&1
			cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
			go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
			go mod tidy >/dev/null
			CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache.tmp" go.etcd.io/etcd/server/v3
			mv "$cache.tmp" "$cache"
		)
	fi
	cp -f "$cache" "$out"
}

if [ ! -x "$assets/kube-apiserver" ] || [ ! -x "$assets/etcd" ]; then
	try_download || true
fi
build_etcd
build_k8s kube-apiserver
if [ "${ENVTEST_KUBECTL:-1}" = 1 ]; then build_k8s kubectl; fi
echo "$assets"
