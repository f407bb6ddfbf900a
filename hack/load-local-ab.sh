#!/usr/bin/env bash
# Alternates two fedforge binaries under the same inbox load (issue 17, docs/benchmarks.md):
# each round starts `fedforge local` (what `make run` runs) from the binary on its own
# loopback address with a profile endpoint, waits for /healthz, runs hack/load-inbox.sh
# against it (CPU per POST from /proc, raw verify CPU in the same run, a CPU profile), and
# stops it. Both binaries share one data directory, so they serve the same samples.
#
#   go build -o .local/bin/fedforge-before ./cmd/manager    # on the old commit
#   go build -o .local/bin/fedforge-after ./cmd/manager     # on the new one
#   hack/load-local-ab.sh .local/bin/fedforge-before .local/bin/fedforge-after [rounds] [-n 8000 ...]
#
# Everything listens on 127.0.0.61 (and the envtest control plane on 127.0.0.1); rounds
# (default 3) bound the run; profiles go to .local/ab/<label>.prof. On a very busy machine
# envtest's kube-apiserver may not start within its timeout: the script then stops and says
# so (FEDFORGE_AB_DATA=dir reuses an existing data directory, which starts faster).
# FEDFORGE_AB_SAMPLES_B=dir serves side b other samples (hack/load-blocklist.sh), from a
# data directory of its own (<data>-b): samples are applied, never withdrawn.
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2
rounds=${3:-3}
shift 3 2>/dev/null || shift $#
extra=("$@")
[[ ${#extra[@]} -gt 0 ]] || extra=(-n 8000)
dir=.local/ab
data=${FEDFORGE_AB_DATA:-$dir/run} # etcd data and kubeconfig, kept between rounds
mkdir -p "$dir"
assets=$(hack/envtest-binaries.sh)
pid=""
stop() {
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
	pid=""
}
trap stop EXIT
for r in $(seq "$rounds"); do
	for side in a b; do
		bin=$a label=a-$r samples=config/samples sidedata=$data
		if [[ $side == b ]]; then
			bin=$b label=b-$r
			if [[ -n ${FEDFORGE_AB_SAMPLES_B:-} ]]; then
				samples=$FEDFORGE_AB_SAMPLES_B sidedata=$data-b
			fi
		fi
		"$bin" local --pprof-bind-address 127.0.0.61:6060 --listen 127.0.0.61:8080 --assets "$assets" \
			--data-dir "$sidedata" --crds config/crd/bases --samples "$samples" >"$dir/$label.log" 2>&1 &
		pid=$!
		up=""
		for _ in $(seq 180); do
			curl -sf -o /dev/null http://127.0.0.61:8080/healthz && { up=1; break; }
			kill -0 "$pid" 2>/dev/null || break
			sleep 1
		done
		[[ -n "$up" ]] || { echo "load-local-ab: $bin did not come up; see $dir/$label.log" >&2; exit 1; }
		hack/load-inbox.sh -pid "$pid" -target http://127.0.0.61:8080/inbox -label "$label ($bin)" \
			-pprof http://127.0.0.61:6060 -pprof-seconds 3 -pprof-out "$dir/$label.prof" "${extra[@]}" |
			grep -v 'key server'
		stop
	done
done
