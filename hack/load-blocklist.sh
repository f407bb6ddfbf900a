#!/usr/bin/env bash
# What a Mastodon-size blocklist costs the inbox (issue 17, docs/benchmarks.md): one fedforge
# binary under hack/load-local-ab.sh's inbox load, alternating `fedforge local` on
# config/samples (side a: the sample FederationPolicy, two denied hosts) with the same
# samples whose policy also names a ConfigMap holding a 10,000-domain blocklist in
# Mastodon's domain_blocks CSV format (side b). The load's senders are not listed, so every
# POST is checked against the whole list and accepted, as a real server's traffic mostly is.
#
#   make build && hack/load-blocklist.sh [rounds] [hack/load-inbox.sh flags, default -n 8000]
#
# Each side has its own data directory (.local/ab/run and .local/ab/run-b): the samples
# are applied, never withdrawn, so one control plane would keep side b's policy for side a.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
shift 2>/dev/null || true
bin=${FEDFORGE_BIN:-bin/fedforge}
[[ -x $bin ]] || { echo "load-blocklist: no $bin: run make build first" >&2; exit 1; }
samples=.local/blocklist/samples
rm -rf "$samples"
mkdir -p "$samples"
for f in config/samples/*.yaml; do
	[[ $(basename "$f") == kustomization.yaml ]] || cp "$f" "$samples/"
done
cat >>"$samples/federation_v1alpha1_federationpolicy.yaml" <<'YAML'
  blocklistRef:
    name: blocklist-10000
YAML
{
	printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: blocklist-10000\ndata:\n  blocklist.csv: |\n'
	printf '    #domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate\n'
	for i in $(seq 0 9999); do printf '    spam%05d.example,suspend,true,true,spam,false\n' "$i"; done
} >"$samples/blocklist_configmap.yaml"
FEDFORGE_AB_SAMPLES_B=$samples exec hack/load-local-ab.sh "$bin" "$bin" "$rounds" "$@"
