#!/usr/bin/env bash
# Issue 17's fan-out figures (docs/benchmarks.md): BenchmarkFanOut of internal/delivery, the
# fan-out to 10,000 personal inboxes and to 1,000 shared inboxes on 1,000 loopback hosts, each
# as a ratio to the raw RSA signing limit measured in the same process just before it.
#
#   hack/load-fanout.sh build [BASE_REV]   # before the measurement: compile the binaries
#   hack/load-fanout.sh run [ROUNDS]       # alternate them, ROUNDS times each (default 2)
#   hack/load-fanout.sh profile [BIN]      # one fan-out per case of BIN (default after) under
#                                          # a CPU profile, and where its CPU went
#
# build compiles the delivery test binary of this work tree (after.test) and, with BASE_REV,
# one of BASE_REV's code with this tree's benchmark files (before.test), so both run the same
# benchmark. run alternates the binaries, each run under `flock -o /tmp/fedforge-perf.lock`
# (the lock perf measurements share; one binary's run of every case, five pairs each,
# holds it about 4 min on a quiet machine) with /proc/loadavg printed before and after. CASES (a -test.bench regexp) picks
# the cases; BENCHTIME (default 5x for run, 1x for profile) the fan-outs per case, each
# paired with its own yardstick right before it (the case reports the pairs' median ratio
# and range). Output in .local/fanout/.
# With FEDFORGE_TEST_POSTGRES_DSN set (hack/test-postgres.sh), CASES may also name the
# PostgreSQL cases ('FanOut/postgres/shared-inboxes$'). UNTIL=HH:MM (UTC) skips a run
# that gets the lock after that time (the end of a quiet window).
#
# profile splits the profile's samples by the first of these frames their stack holds:
# the raw signing (the yardstick), the peers' HTTP servers (in the benchmark's process),
# the fan-out's signatures (SignCavage), new connections (dialConn), the client
# transport's read and write loops, the rest of the request path, the store writes, the
# executor, GC, and the rest; each is shown in seconds and as a multiple of the CPU of
# the fan-outs' own signatures (`split [BIN]` prints the table again).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.local/fanout
mkdir -p "$dir"
cases=${CASES:-'FanOut/sqlite/(shared-inboxes|personal-inboxes|personal-inboxes-keepalive|shared-inboxes-peers-apart|shared-inboxes-peers-apart-warm|personal-inboxes-peers-apart)$'}
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
			log=$dir/$b-$r-$(date -u +%H%M%S).txt
			flock -o /tmp/fedforge-perf.lock bash -c '
				if [[ -n ${UNTIL:-} && $(date -u +%H:%M) > $UNTIL ]]; then echo "# $(date -u +%FT%TZ) skipped: past $UNTIL"; exit 0; fi
				cd internal/delivery
				echo "# $(date -u +%FT%TZ) loadavg before: $(cat /proc/loadavg)"
				"../../$1" -test.run "^\$" -test.bench "$2" -test.benchtime "$3" -test.count 1 -test.timeout 20m
				echo "# $(date -u +%FT%TZ) loadavg after: $(cat /proc/loadavg)"
			' _ "$dir/$b.test" "$cases" "${BENCHTIME:-5x}" | tee "$log"
		done
	done
	;;
profile)
	bin=${2:-after}
	[[ -x $dir/$bin.test ]] || { echo "no $dir/$bin.test: run '$0 build' first" >&2; exit 1; }
	flock -o /tmp/fedforge-perf.lock bash -c '
		if [[ -n ${UNTIL:-} && $(date -u +%H:%M) > $UNTIL ]]; then echo "# $(date -u +%FT%TZ) skipped: past $UNTIL"; exit 1; fi
		cd internal/delivery
		echo "# $(date -u +%FT%TZ) loadavg before: $(cat /proc/loadavg)"
		"../../$1" -test.run "^\$" -test.bench "$2" -test.benchtime "$3" -test.count 1 -test.timeout 20m -test.cpuprofile "../../$4"
		echo "# $(date -u +%FT%TZ) loadavg after: $(cat /proc/loadavg)"
	' _ "$dir/$bin.test" "$cases" "${BENCHTIME:-1x}" "$dir/$bin.cpu" | tee "$dir/$bin-profile.txt"
	"$0" split "$bin" | tee -a "$dir/$bin-profile.txt"
	;;
split) # the table of profile, from .local/fanout/BIN.cpu
	bin=${2:-after}
	go tool pprof -traces "$dir/$bin.test" "$dir/$bin.cpu" 2>/dev/null | awk '
		function flush() {
			if (t == 0) return
			split("setup raw peers sign dial readloop writeloop request store executor gc", order, " ")
			b = "other"
			for (i = 1; i <= 11; i++) if (hit[order[i]]) { b = order[i]; break }
			sum[b] += t; total += t; t = 0; delete hit
		}
		function frame(f) {
			if (f ~ /keys\.Generate|newFediverse|peersApart|http2ConfigureServer|TestFanOutPeersChild/) hit["setup"] = 1
			if (f ~ /delivery\.rawSign/) hit["raw"] = 1
			if (f ~ /net\/http\.\(\*conn\)\.serve|net\/http\.\(\*Server\)\.Serve|delivery\.\(\*peer\)/) hit["peers"] = 1
			if (f ~ /activitypub\.SignCavage|activitypub\.\(\*Client\)\.sign/) hit["sign"] = 1
			if (f ~ /\(\*Transport\)\.dialConn/) hit["dial"] = 1
			if (f ~ /\(\*persistConn\)\.readLoop/) hit["readloop"] = 1
			if (f ~ /\(\*persistConn\)\.writeLoop/) hit["writeloop"] = 1
			if (f ~ /activitypub\.\(\*Client\)|net\/http\.\(\*Client\)/) hit["request"] = 1
			if (f ~ /MarkDelivered|LeaseDeliveries|AppendActivity|internal\/store\./) hit["store"] = 1
			if (f ~ /delivery\.\(\*Executor\)|delivery\.\(\*deliveredGroup\)|delivery\.\(\*Publisher\)/) hit["executor"] = 1
			if (f ~ /runtime\.gcBgMarkWorker|runtime\.bgsweep|runtime\.bgscavenge/) hit["gc"] = 1
		}
		function secs(v) {
			if (v ~ /ms$/) return substr(v, 1, length(v) - 2) / 1000
			if (v ~ /us$|µs$/) return 0
			return substr(v, 1, length(v) - 1) + 0
		}
		/^-+\+-+$/ { flush(); next }
		/^ *[0-9.]+(s|ms|us|µs) +/ && NR > 5 { flush(); t = secs($1); frame($2); next }
		t > 0 { frame($1) }
		END {
			flush()
			printf "%-10s %8s %10s\n", "bucket", "CPU", "x signing"
			split("sign dial readloop writeloop request store executor gc peers other raw setup", show, " ")
			for (i = 1; i <= 12; i++) printf "%-10s %7.2fs %10.3f\n", show[i], sum[show[i]], (sum["sign"] > 0 ? sum[show[i]] / sum["sign"] : 0)
			printf "%-10s %7.2fs\n", "total", total
		}'
	;;
*)
	sed -n '2,25p' "$0" >&2
	exit 2
	;;
esac
