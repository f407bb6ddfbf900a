#!/usr/bin/env bash
# `make test-e2e`: brings the local cluster up (or reuses a running one), builds the image
# and imports it, builds helm, runs the Ginkgo suite (which deploys the operator with
# `make deploy` and removes it again; the Helm chart's spec installs it with helm too), and
# tears down what it brought up, also on failure. Cached binaries under bin/ stay.
#
#   E2E_KEEP_CLUSTER=1   keep a cluster this run started (to look at it afterwards)
#   E2E_FOCUS=regexp     run only matching specs (ginkgo --focus)
#   E2E_TIMEOUT=30m      go test timeout
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cluster=hack/local-cluster.sh
t0=$SECONDS
phase() { echo "e2e: $* (+$((SECONDS - t0))s)" >&2; }

started=0
if [ "$("$cluster" status 2>/dev/null | awk '$2=="running"' | wc -l)" -eq 7 ]; then
	phase "reusing the running local cluster"
else
	phase "bringing the local cluster up"
	started=1
fi

teardown() {
	local rc=$?
	if [ "$started" = 1 ] && [ "${E2E_KEEP_CLUSTER:-0}" != 1 ]; then
		phase "tearing the local cluster down"
		"$cluster" down || rc=1
	elif [ "$started" = 1 ]; then
		phase "keeping the cluster (E2E_KEEP_CLUSTER=1); stop it with: make cluster-down"
	fi
	phase "done, exit $rc"
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# up is idempotent: on a running cluster it only checks and refreshes add-ons.
"$cluster" up
export KUBECONFIG KUBECTL E2E_CLUSTER_LOGS
KUBECONFIG=$("$cluster" kubeconfig)
KUBECTL="$(hack/envtest-binaries.sh)/kubectl"   # the same version as the cluster
E2E_CLUSTER_LOGS="$(dirname "$KUBECONFIG")/logs"

phase "building the image"
make --no-print-directory image-bin >/dev/null
# A tag derived from the image's binary (-tags nolocal): a changed binary gets a new tag,
# so a reused cluster never runs a stale image under an old name.
tag="e2e-$(sha256sum bin/fedforge-image-bin | cut -c1-12)"
export E2E_IMG="fedforge:$tag"
make --no-print-directory image IMG="$E2E_IMG" IMAGE_TAR="$root/bin/fedforge-e2e.tar" >/dev/null
"$cluster" load-image "$root/bin/fedforge-e2e.tar"
# The same image under a second tag: the "new image tag" of the PostgreSQL rollout scenario.
export E2E_IMG_NEXT="$E2E_IMG-next"
"$cluster" tag-image "$E2E_IMG" "$E2E_IMG_NEXT"

phase "building (or reusing) helm for the chart's spec"
export E2E_HELM
E2E_HELM=$(hack/helm.sh)

phase "building (or reusing) Gitea for the tickets spec"
# Scenario 8 runs a Gitea on the host's bridge address (hack/gitea.sh start); built once,
# cached under bin/gitea/<version>/.
hack/gitea.sh build >/dev/null

phase "installing the Fedify peers' Node and packages"
# Scenarios 6 and 7 run Fedify apps on the host: Fedify 1.5.9 on Node 20 (test/e2e/fedify)
# and Fedify 2.x on Node 22 (test/e2e/fedify2), each with its packages.
export E2E_NODE E2E_NODE22
E2E_NODE=$(test/e2e/fedify/setup.sh)
E2E_NODE22=$(test/e2e/fedify/setup.sh fedify2 22 22.23.5)

phase "running the suite with $E2E_IMG"
args=(-tags e2e -count=1 -timeout "${E2E_TIMEOUT:-30m}" ./test/e2e/ -v -args -ginkgo.v)
[ -n "${E2E_FOCUS:-}" ] && args+=(-ginkgo.focus "$E2E_FOCUS")
go test "${args[@]}"
