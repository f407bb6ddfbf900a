#!/usr/bin/env bash
# Measures a running inbox with hack/inboxload (issue 17, docs/benchmarks.md): by default
# the shared inbox of `make run`'s server on 127.0.0.1:8080, whose process is found by
# name; pass --pid and --target for another server (a `fedforge server`, or a peer such
# as Fedify: the tool is the same for every server, so figures compare).
#
#   make run   # in another terminal; add --pprof-bind-address 127.0.0.1:6060 to the
#              # fedforge command line (see the Makefile) to also take a CPU profile
#   hack/load-inbox.sh                       # 20,000 cavage POSTs, 16 connections
#   hack/load-inbox.sh -sig rfc9421-ed25519 -n 5000
#   hack/load-inbox.sh -pprof http://127.0.0.1:6060 -pprof-out /tmp/inbox.prof
#
# Every address must be on loopback (the tool refuses others); every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local/load
go build -o .local/load/inboxload ./hack/inboxload
args=("$@")
if [[ " ${args[*]:-} " != *" -pid "* ]]; then
	pid=$(pgrep -o -x fedforge || true)
	[[ -n "$pid" ]] || { echo "load-inbox: no fedforge process found: start make run, or pass -pid" >&2; exit 1; }
	args+=(-pid "$pid")
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
exec .local/load/inboxload "${args[@]}"
