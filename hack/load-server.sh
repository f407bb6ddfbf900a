#!/usr/bin/env bash
# The server issue's measurements (docs/benchmarks.md): inbox throughput beside raw RSA
# verify, follow -> Accept latency at 100 follows/s, and manager/server memory with 10,000
# Subscriptions. Everything runs on 127.0.0.0/8 against a real kube-apiserver and etcd;
# every loop is bounded. Usage: hack/load-server.sh [test-name-regexp]
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/envtest-binaries.sh)}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
FEDFORGE_LOAD=1 go test ./internal/app -run "${1:-^TestLoad}" -count=1 -v -timeout 30m 2>&1 | grep -E 'load_test.go|^(--- |ok|FAIL)'
