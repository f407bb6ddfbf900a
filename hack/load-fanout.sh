#!/usr/bin/env bash
# Issue 17's fan-out figures (docs/benchmarks.md): BenchmarkFanOut of internal/delivery, the
# fan-out to 10,000 personal inboxes and to 1,000 shared inboxes on 1,000 loopback hosts, each
# as a ratio to the raw RSA signing limit measured in the same process just before it.
#
#   hack/load-fanout.sh build [BASE_REV]   # before the measurement: compile the binaries
#   hack/load-fanout.sh run [ROUNDS]       # alternate them, ROUNDS times each (default 2)
#
# build compiles the delivery test binary of this work tree (after.test) and, with BASE_REV,
# one of BASE_REV's code with this tree's benchmark files (before.test), so both run the same
# benchmark. run alternates the binaries, each run under `flock -o /tmp/fedforge-perf.lock`
# (the lock perf measurements share; one binary's run holds it about a minute on a quiet
# machine) with /proc/loadavg printed before and after. CASES (a -test.bench regexp) picks
# the cases; BENCHTIME (default 1x) the fan-outs per case. Output in .local/fanout/.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.local/fanout
mkdir -p "$dir"
cases=${CASES:-'FanOut/sqlite/(shared-inboxes|personal-inboxes|personal-inboxes-keepalive|shared-inboxes-peers-apart|personal-inboxes-peers-apart)$'}
case ${1:-} in
build)
	go test -c -o "$dir/after.test" ./internal/delivery/
	if [[ -n ${2:-} ]]; then
		src=$(mktemp -d)
		trap 'rm -rf "$src"' EXIT
		git archive "$2" | tar -x -C "$src"
		cp internal/delivery/bench_test.go internal/delivery/bench_peers_test.go internal/delivery/helpers_test.go "$src/internal/delivery/"
		(cd "$src" && go test -c -o "$OLDPWD/$dir/before.test" ./internal/delivery/)
	fi
	ls -l "$dir"/*.test
	;;
run)
	rounds=${2:-2}
	bins=()
	for b in before after; do [[ -x $dir/$b.test ]] && bins+=("$b"); done
	[[ ${#bins[@]} -gt 0 ]] || { echo "no binaries: run '$0 build [BASE_REV]' first" >&2; exit 1; }
	for r in $(seq "$rounds"); do
		for b in "${bins[@]}"; do
			log=$dir/$b-$r.txt
			flock -o /tmp/fedforge-perf.lock bash -c '
				cd internal/delivery
				echo "# $(date -u +%FT%TZ) loadavg before: $(cat /proc/loadavg)"
				"../../$1" -test.run "^\$" -test.bench "$2" -test.benchtime "$3" -test.count 1 -test.timeout 20m
				echo "# $(date -u +%FT%TZ) loadavg after: $(cat /proc/loadavg)"
			' _ "$dir/$b.test" "$cases" "${BENCHTIME:-1x}" | tee "$log"
		done
	done
	;;
*)
	sed -n '2,13p' "$0" >&2
	exit 2
	;;
esac
