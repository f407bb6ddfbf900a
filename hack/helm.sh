#!/usr/bin/env bash
# Builds helm from the Go module proxy (no release download is reachable from our build
# machines), caches it by version and prints its path, bin/helm-<version>. A second run with
# the same version does nothing.
#
#   hack/helm.sh            # prints bin/helm-v3.22.0
#   HELM_VERSION=v3.21.4 hack/helm.sh
#
# Helm 3, because it is what most platform teams run; the chart (charts/fedforge, apiVersion
# v2) installs with Helm 3 and 4 alike. The version stamps are those of helm's own Makefile:
# `helm version` tells the real version, and the Kubernetes version that `helm template` and
# `helm lint` assume without a cluster is the one of the client-go helm is built with (not
# helm's built-in default, v1.20).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
HELM_VERSION=${HELM_VERSION:-v3.22.0}
module=helm.sh/helm/v3

BINARIES_LOG=helm
# shellcheck source=hack/lib/binaries.sh
source "$root/hack/lib/binaries.sh"

link="$root/bin/helm-$HELM_VERSION"
if [ ! -x "$link" ]; then
	gomod=$(go mod download -json "$module@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
	clientgo=$(awk '$1=="k8s.io/client-go"{print $2; exit}' "$gomod")   # v0.37.0
	[ -n "$clientgo" ] || { echo "helm: k8s.io/client-go not found in $gomod" >&2; exit 1; }
	k8s_minor=$(echo "$clientgo" | cut -d. -f2)
	ldflags="-X $module/internal/version.version=$HELM_VERSION"
	ldflags+=" -X $module/internal/version.gitTreeState=clean"
	for p in pkg/lint/rules pkg/chartutil; do
		ldflags+=" -X $module/$p.k8sVersionMajor=1 -X $module/$p.k8sVersionMinor=$k8s_minor"
	done
	out=$(build_go_tool helm "$module" "$HELM_VERSION" "$module/cmd/helm" "$ldflags")
	ln -sfn "helm/$HELM_VERSION/helm" "$link"
fi
echo "$link"
