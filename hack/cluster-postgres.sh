#!/usr/bin/env bash
# A PostgreSQL for the local cluster's pods (make test-e2e; issue 15): hack/test-postgres.sh's
# throwaway cluster, kept apart from the unit tests' one, also listening on the node's bridge
# address (hack/local-cluster.sh's NODE_IP) and reachable, with its password, from the pod
# subnet only. Prints a DSN that pods can use.
#
#   hack/cluster-postgres.sh           # start (idempotently) and print the DSN
#   hack/cluster-postgres.sh destroy   # stop it and remove its data (the e2e suite does)
#
# The bridge must exist (the cluster is up) before it starts: PostgreSQL binds the address
# at start.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_ip="$(sed -n 's/^NODE_IP=\([0-9.]*\).*/\1/p' "$root/hack/local-cluster.sh")"
pod_subnet="$(sed -n 's/^POD_SUBNET=\([0-9./]*\).*/\1/p' "$root/hack/local-cluster.sh")"
[[ -n "$node_ip" && -n "$pod_subnet" ]] || { echo "cluster-postgres: NODE_IP/POD_SUBNET not found in hack/local-cluster.sh" >&2; exit 1; }
if [[ "${1:-}" != destroy && "${1:-}" != stop && "${1:-}" != status ]] && ! ip -4 addr show | grep -q "inet $node_ip/"; then
	echo "cluster-postgres: $node_ip is not on this machine: bring the local cluster up first (hack/local-cluster.sh up)" >&2
	exit 1
fi
base=/var/lib/postgresql/fedforge-e2e
[[ "$(id -u)" == 0 ]] || base="$root/.local/postgres-e2e"
if [[ "$(id -u)" == 0 ]]; then
	install -d -m 0755 /var/lib/postgresql
	id postgres >/dev/null 2>&1 && install -d -o postgres -m 0755 "$base"
fi
export FEDFORGE_PG_DIR="$base/$(printf '%s' "$root" | sha256sum | cut -c1-16)"
export FEDFORGE_PG_LISTEN="$node_ip" FEDFORGE_PG_CIDR="$pod_subnet"
exec "$root/hack/test-postgres.sh" "$@"
