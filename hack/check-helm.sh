#!/usr/bin/env bash
# Fails when the Helm chart (charts/fedforge) disagrees with the kustomize install
# (config/default), so that a platform team gets the same operator either way. `make test`
# runs it (make check-helm), with helm from hack/helm.sh and kustomize from make kustomize.
#
#   1. The CRDs in charts/fedforge/crds/ are byte for byte config/crd/bases/, and the
#      manager's RBAC rules (charts/fedforge/files/manager-role.yaml) are config/rbac/role.yaml:
#      `make helm-chart` copies them after `make manifests`.
#   2. `helm lint --strict`, with default values and with the ServiceMonitor on.
#   3. `helm template --include-crds` with default values, release fedforge in fedforge-system,
#      has the objects of `kustomize build config/default` (but its Namespace: Helm installs
#      into a namespace it does not own), field by field; the chart may only add labels
#      and annotations (hack/helmcheck). The same for another release name and namespace,
#      against config/default with that prefix and namespace set.
#   4. With serviceMonitor.enabled=true, the ServiceMonitor selects the metrics Service.
set -euo pipefail
kustomize=${1:?usage: check-helm.sh KUSTOMIZE HELM}
helm=${2:?usage: check-helm.sh KUSTOMIZE HELM}
# Absolute paths: the kustomize runs below change directory.
abs() { case $1 in */*) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;; *) command -v "$1" ;; esac; }
kustomize=$(abs "$kustomize"); helm=$(abs "$helm")
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# helm keeps no state for lint and template; keep it out of $HOME all the same.
export HELM_CACHE_HOME="$tmp/helm/cache" HELM_CONFIG_HOME="$tmp/helm/config" HELM_DATA_HOME="$tmp/helm/data"
chart=charts/fedforge
say() { echo "check-helm: $*" >&2; }

status=0
diff -ru config/crd/bases "$chart/crds" || status=1
diff -u config/rbac/role.yaml "$chart/files/manager-role.yaml" || status=1
if [ $status -ne 0 ]; then
	say "$chart is stale: run 'make helm-chart' and commit the result"
	exit 1
fi

"$helm" lint --strict "$chart" >"$tmp/lint.log" 2>&1 &&
	"$helm" lint --strict "$chart" --set serviceMonitor.enabled=true >>"$tmp/lint.log" 2>&1 ||
	{ cat "$tmp/lint.log" >&2; say "helm lint failed"; exit 1; }

go build -o "$tmp/helmcheck" ./hack/helmcheck

# compare_release RELEASE NAMESPACE PREFIX: the chart installed as RELEASE into NAMESPACE
# against config/default with namePrefix PREFIX and namespace NAMESPACE.
compare_release() {
	local release=$1 ns=$2 prefix=$3 dir="$tmp/$1"
	mkdir -p "$dir"
	cp -r config "$dir/"
	(cd "$dir/config/default" && "$kustomize" edit set namespace "$ns" && "$kustomize" edit set nameprefix "$prefix")
	"$kustomize" build "$dir/config/default" >"$dir/kustomize.yaml"
	"$helm" template "$release" "$chart" --namespace "$ns" --include-crds >"$dir/helm.yaml"
	if ! "$tmp/helmcheck" compare "$dir/kustomize.yaml" "$dir/helm.yaml"; then
		say "helm template $release $chart -n $ns disagrees with kustomize build config/default (namePrefix $prefix, namespace $ns)"
		return 1
	fi
}
compare_release fedforge fedforge-system fedforge-
compare_release acme fedforge-acme acme-fedforge-

"$helm" template fedforge "$chart" --namespace fedforge-system --set serviceMonitor.enabled=true >"$tmp/monitor.yaml"
"$tmp/helmcheck" servicemonitor "$tmp/monitor.yaml" || { say "the ServiceMonitor does not select the metrics Service"; exit 1; }
say "charts/fedforge agrees with config/default ($(ls "$chart/crds" | wc -l) CRDs byte-identical, helm lint clean)"
