#!/usr/bin/env bash
# Fails when the generated CRDs, RBAC or deepcopy functions differ from what controller-gen
# makes from the current sources. It generates into a scratch copy, so it works on a dirty
# tree and never rewrites the working files.
set -euo pipefail
cg=${1:?usage: verify-generated.sh CONTROLLER_GEN}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$root"
"$cg" rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." \
	output:crd:artifacts:config="$tmp/crd" output:rbac:artifacts:config="$tmp/rbac"
# controller-gen writes deepcopy next to the types; keep the working copy and put it back.
dc=api/v1alpha1/zz_generated.deepcopy.go
mkdir -p "$tmp/api"; cp "$dc" "$tmp/api/committed.go"
"$cg" object:headerFile="hack/boilerplate.go.txt" paths="./api/..."
cp "$dc" "$tmp/api/zz_generated.deepcopy.go"; cp "$tmp/api/committed.go" "$dc"
status=0
diff -ru config/crd/bases "$tmp/crd" || status=1
if [ -f "$tmp/rbac/role.yaml" ] || [ -f config/rbac/role.yaml ]; then
	diff -u config/rbac/role.yaml "$tmp/rbac/role.yaml" || status=1
fi
diff -u api/v1alpha1/zz_generated.deepcopy.go "$tmp/api/zz_generated.deepcopy.go" || status=1
if [ $status -ne 0 ]; then
	echo "generated files are stale: run 'make manifests generate' and commit the result" >&2
fi
exit $status
