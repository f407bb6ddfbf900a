#!/usr/bin/env bash
# The server issue's measurements (docs/benchmarks.md): inbox throughput beside raw RSA
# verify, follow -> Accept latency at 100 follows/s, and manager/server memory with 10,000
# Subscriptions; and (TestLoadReplicas, issue 15) the same inbox load into one server on
# SQLite, one on PostgreSQL and three replicas sharing PostgreSQL, in one run, each with a
# fan-out to 1,000 followers; TestLoadAPIWrites, the kube-apiserver's writes per published
# activity with 10 and 1,000 followers (from its apiserver_request_total). Everything
# runs on 127.0.0.0/8 against a real kube-apiserver and etcd (and hack/test-postgres.sh's
# PostgreSQL); every loop is bounded.
#
# Usage: hack/load-server.sh [--pin] [test-name-regexp]
#
#   --pin   run the test process (the servers, and the raw verify measurement) on CPU 0
#           and the inbox load generator (a child process) on CPU 1, with taskset, so
#           that the inbox and the raw limit are measured on the same one core and the
#           generator does not take CPU from them. Meant for TestLoadInboxThroughput.
#
# FEDFORGE_LOAD_INBOX_N sets the number of inbox POSTs (default 20000);
# FEDFORGE_LOAD_PROFILE=file writes a CPU profile of the test process (the servers).
set -euo pipefail
cd "$(dirname "$0")/.."
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$(hack/envtest-binaries.sh)}"
export FEDFORGE_TEST_POSTGRES_DSN="${FEDFORGE_TEST_POSTGRES_DSN:-$(hack/test-postgres.sh)}" # TestLoadReplicas
pin=""
if [[ "${1:-}" == "--pin" ]]; then
	pin=1
	shift
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p .local/load
bin="$PWD/.local/load/app.test"
go test -c -o "$bin" ./internal/app
run=("$bin")
if [[ -n "$pin" ]]; then
	run=(taskset -c 0 "$bin")
	export FEDFORGE_LOAD_CLIENT_CPUS=1
fi
args=(-test.run "${1:-^TestLoad}" -test.count=1 -test.v -test.timeout 30m)
if [[ -n "${FEDFORGE_LOAD_PROFILE:-}" ]]; then
	args+=(-test.cpuprofile "$(realpath -m "$FEDFORGE_LOAD_PROFILE")")
fi
# The tests find config/ and hack/ relative to their package directory.
(cd internal/app && FEDFORGE_LOAD=1 "${run[@]}" "${args[@]}" 2>&1) | grep -E 'load_[a-z_]*test.go|^(--- |ok|FAIL|PASS)'
