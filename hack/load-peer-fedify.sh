#!/usr/bin/env bash
# Fedforge and Fedify side by side under the same inbox load, alternated in one run
# (issue 17, docs/benchmarks.md "Issue 17, third session").
#
#   hack/load-peer-fedify.sh                 # 2 rounds each, -n 8000 cavage, 16 connections
#   hack/load-peer-fedify.sh 3 -n 20000 -sig rfc9421-rsa
#
# The two sides, each on its own loopback address, both started before the first round and
# kept running (each is idle while the other is measured):
# - Fedforge: `fedforge local` (what `make run` runs: SQLite store, embedded control plane;
#   PostgreSQL with FEDFORGE_STORE=postgres, below) built from this tree, serving on
#   127.0.0.61:8080.
# - Fedify: hack/fedify-peer/inbox.mjs, a minimal inbox in Fedify's documented production
#   setup (Node 24 LTS, @hono/node-server, PostgresKvStore + PostgresMessageQueue) on
#   127.0.0.62:8090, against a PostgreSQL with durable defaults (hack/load-peer-postgres.sh).
#   Node comes from the npm registry like the e2e peers' (test/e2e/fedify/setup.sh), the
#   packages from hack/fedify-peer/package-lock.json.
#
# Each round runs hack/inboxload against each side (its figures: POSTs/s, the server
# process's CPU per POST over the POSTs, the raw verify CPU in the same run). Fedify
# answers 202 once an activity is in its queue table; its listener runs afterwards in the
# queue worker, so this script also waits until every accepted activity is recorded
# (bounded: 600 s) and reads, from /proc, each side's CPU over the whole round, less its
# idle CPU (sampled for 5 s before the round, times the round's length), divided by the
# activities it recorded: the process alone, and with its database's processes
# (PostgreSQL's postmaster and backends for Fedify; Fedforge's SQLite is in its process).
# Output: one line per side and round, and the RESULT lines in .local/peer/results.txt;
# at the end Node's own raw RSA verify CPU (hack/fedify-peer/rawverify.mjs).
#
# FEDFORGE_STORE=postgres puts Fedforge on PostgreSQL too (`fedforge local --postgres-dsn`,
# the DSN passed in FEDFORGE_POSTGRES_DSN): a second database, fedforge, dropped and made
# afresh at each run, on the same cluster as Fedify's database (same durable defaults, same
# server settings); the default, FEDFORGE_STORE=sqlite, is make run's SQLite file. With
# both on one cluster, each side's "with database" CPU counts the whole cluster (postmaster,
# background processes, every backend) less its idle CPU sampled before the side's round,
# so the other side's idle polling is subtracted, not charged; Fedforge's "recorded" is
# then counted in its `received` table.
#
# LOAD_SIDES=fedforge measures only Fedforge's rounds (Fedify still runs, idle, as it is
# during Fedforge's rounds of a full run): a short run to compare Fedforge's stores in one
# window. The default is "fedforge fedify".
#
# LOAD_PG_STATS=1 (a diagnostic, not for timed runs: it waits 11 s around each round for
# PostgreSQL to publish its counters) also prints, per activity, the transactions and rows
# each side's database saw in its round (pg_stat_database).
#
# FEDIFY_STORE=sqlite runs Fedify on @fedify/sqlite instead (SqliteKvStore +
# SqliteMessageQueue, one file in .local/peer): the guide's single-node choice;
# FEDIFY_STORE=memory on MemoryKvStore without a queue (the development default, whose
# listener runs before the 202 and keeps nothing across a restart), for comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
shift 1 2>/dev/null || true
load=("$@")
[[ ${#load[@]} -gt 0 ]] || load=(-n 8000 -conns 16 -sig cavage)
n=8000 actors=50
for ((i = 0; i < ${#load[@]}; i++)); do
	[[ ${load[i]} == -n ]] && n=${load[i + 1]}
	[[ ${load[i]} == -actors ]] && actors=${load[i + 1]}
done
dir=.local/peer
mkdir -p "$dir" .local/load
log() { echo "load-peer-fedify: $*" >&2; }

go build -o .local/load/inboxload ./hack/inboxload
fedforge=${FEDFORGE_BIN:-.local/load/fedforge}
[[ -n "${FEDFORGE_BIN:-}" ]] || go build -trimpath -ldflags '-s -w' -o "$fedforge" ./cmd/manager
node=$(test/e2e/fedify/setup.sh ../../hack/fedify-peer 24 24.22.3)
store=${FEDIFY_STORE:-postgres}
case $store in
postgres) dsn=$(hack/load-peer-postgres.sh) ;;
sqlite) dsn=sqlite:$PWD/$dir/fedify.db && rm -f "$dir"/fedify.db* ;;
memory) dsn=memory ;;
*) log "FEDIFY_STORE=$store: want postgres, sqlite or memory"; exit 1 ;;
esac
ffstore=${FEDFORGE_STORE:-sqlite} ffdsn=""
case $ffstore in
sqlite) ;;
postgres) ffdsn=$(FEDFORGE_LOAD_PG_DB=fedforge FEDFORGE_LOAD_PG_FRESH=1 hack/load-peer-postgres.sh) ;;
*) log "FEDFORGE_STORE=$ffstore: want sqlite or postgres"; exit 1 ;;
esac
sides=${LOAD_SIDES:-fedforge fedify}
for side in $sides; do
	[[ $side == fedforge || $side == fedify ]] || { log "LOAD_SIDES=$sides: want fedforge and/or fedify"; exit 1; }
done
usepg=false
[[ $store == postgres || $ffstore == postgres ]] && usepg=true
pgdata=${FEDFORGE_LOAD_PG_DIR:-/var/lib/postgresql/fedforge-load-peer}/data

ffpid="" fypid=""
stop() {
	for p in $ffpid $fypid; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $ffpid $fypid; do
		for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || break; sleep 1; done
	done
	$usepg && { hack/load-peer-postgres.sh stop || true; }
}
trap stop EXIT
trap 'exit 143' TERM INT

# cpu_ticks PID...: user+system clock ticks of the processes and of their children that
# ended (PostgreSQL's postmaster reaps the backends that end).
cpu_ticks() {
	local total=0 p f
	for p in "$@"; do
		f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
		# fields after the command: state is 1, utime 12, stime 13, cutime 14, cstime 15
		set -- $f
		total=$((total + ${12} + ${13} + ${14} + ${15}))
	done
	echo "$total"
}
pg_pids() {
	$usepg || return 0
	local pm
	pm=$(head -1 "$pgdata/postmaster.pid")
	echo "$pm" $(pgrep -P "$pm")
}
hz=$(getconf CLK_TCK)
stats() { curl -sf http://127.0.0.62:8091/_load/stats; }
field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

FEDFORGE_POSTGRES_DSN=$ffdsn "$fedforge" local --listen 127.0.0.61:8080 --assets "$(hack/envtest-binaries.sh)" --data-dir "$dir/run" \
	--crds config/crd/bases --samples config/samples >"$dir/fedforge.log" 2>&1 &
ffpid=$!
(cd hack/fedify-peer && DATABASE_URL=$dsn exec "$node" inbox.mjs --reset \
	--listen 127.0.0.62:8090 --control 127.0.0.62:8091) >"$dir/fedify.out" 2>"$dir/fedify.log" &
fypid=$!
for _ in $(seq 180); do
	curl -sf -o /dev/null http://127.0.0.61:8080/healthz && stats >/dev/null && break
	kill -0 "$ffpid" 2>/dev/null || { log "fedforge stopped; see $dir/fedforge.log"; exit 1; }
	kill -0 "$fypid" 2>/dev/null || { log "the Fedify inbox stopped; see $dir/fedify.log"; exit 1; }
	sleep 1
done
stats >/dev/null || { log "the Fedify inbox did not answer; see $dir/fedify.log"; exit 1; }
sleep 10 # the control plane's start-up work settles before the first idle sample
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
# ff_received: rows of Fedforge's received log in PostgreSQL (what it committed before its 202s).
ff_received() { "$pgbin/psql" "$ffdsn" -tAc 'SELECT count(*) FROM received'; }
# pg_stats DB: transactions, rows inserted, updated, deleted, returned and fetched of DB so
# far (published by backends up to 10 s late, hence the waits around a round).
pgadmin=""
[[ $store == postgres ]] && pgadmin=$dsn
[[ $ffstore == postgres ]] && pgadmin=$ffdsn
pg_stats() {
	"$pgbin/psql" "${pgadmin%/*}/postgres" -tA -F ' ' -c "SELECT xact_commit + xact_rollback, tup_inserted, tup_updated,
		tup_deleted, tup_returned, tup_fetched FROM pg_stat_database WHERE datname = '$1'"
}
if [[ $ffstore == postgres ]]; then
	grep -q 'Store: PostgreSQL' "$dir/fedforge.log" || { log "fedforge is not on PostgreSQL; see $dir/fedforge.log"; exit 1; }
	ff_received >/dev/null
fi
version() { sed -n 's/^  "version": "\(.*\)",/\1/p' "hack/fedify-peer/node_modules/$1/package.json"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); node $("$node" --version)," \
	"fedforge store $ffstore; @fedify/fedify $(version @fedify/fedify), store $store: @fedify/postgres $(version @fedify/postgres) on $("$pgbin/postgres" --version)" \
	"or @fedify/sqlite $(version @fedify/sqlite)"
: >"$dir/results.txt"
for r in $(seq "$rounds"); do
	for side in $sides; do
		if [[ $side == fedforge ]]; then
			pid=$ffpid target=http://127.0.0.61:8080/inbox db=""
			if [[ $ffstore == postgres ]]; then db=$(pg_pids) before=$(ff_received); fi
		else
			pid=$fypid target=http://127.0.0.62:8090/inbox db=$(pg_pids)
			before=$(stats | field received)
		fi
		sdb="" s0=""
		[[ $side == fedforge && $ffstore == postgres ]] && sdb=fedforge
		[[ $side == fedify && $store == postgres ]] && sdb=fedify
		if [[ ${LOAD_PG_STATS:-} == 1 && -n $sdb ]]; then sleep 11; s0=$(pg_stats "$sdb"); fi
		ip=$(cpu_ticks "$pid") id=$(cpu_ticks $db) it=$(date +%s.%N)
		sleep 5
		it=$(echo "$(date +%s.%N) - $it" | bc -l)
		idlep=$(echo "($(cpu_ticks "$pid") - $ip) / $it" | bc -l) idled=$(echo "($(cpu_ticks $db) - $id) / $it" | bc -l) # ticks/s
		la=$(cut -d' ' -f1-3 /proc/loadavg)
		p0=$(cpu_ticks "$pid") d0=$(cpu_ticks $db)
		t0=$(date +%s.%N)
		out=$(.local/load/inboxload -pid "$pid" -target "$target" -label "$side-$r" "${load[@]}" 2>"$dir/inboxload.err") ||
			{ cat "$dir/inboxload.err" >&2; exit 1; }
		res=$(grep '^RESULT ' <<<"$out" | cut -c8-)
		echo "$res" >>"$dir/results.txt"
		drain=0 got=$((n + actors))
		if [[ $side == fedforge && $ffstore == postgres ]]; then
			got=$(($(ff_received) - before))
			db=$(pg_pids)
		fi
		if [[ $side == fedify ]]; then
			want=$((before + n + actors)) t1=$(date +%s.%N)
			for _ in $(seq 600); do
				s=$(stats)
				[[ $(field received <<<"$s") -ge $want && $(field queued <<<"$s") == 0 ]] && break
				sleep 1
			done
			drain=$(echo "$(date +%s.%N) - $t1" | bc)
			s=$(stats) got=$(($(field received <<<"$s") - before))
			[[ $(field received <<<"$s") -ge $want ]] || log "fedify-$r: only $(($(field received <<<"$s") - before)) of $((n + actors)) recorded after 600 s"
			db=$(pg_pids) # backends started meanwhile count from zero, ended ones are in cutime
		fi
		p1=$(cpu_ticks "$pid") d1=$(cpu_ticks $db)
		wall=$(echo "$(date +%s.%N) - $t0" | bc)
		acts=$((n + actors))
		printf '%s round %s: %6.0f POSTs/s; CPU/POST over the POSTs %5.0f µs (inboxload); raw verify %s µs; recorded %d of %d, the last %.1f s after the last answer;' \
			"$side" "$r" "$(field perSecond <<<"$res")" "$(field serverCpuMicrosPerPost <<<"$res")" "$(field rawVerifyCpuMicros <<<"$res")" "$got" "$acts" "$drain"
		printf ' CPU per activity over the round less idle (%.1f%% of a core): process %.0f µs, with database %.0f µs; load %s -> %s\n' \
			"$(echo "($idlep + $idled) * 100 / $hz" | bc -l)" \
			"$(echo "($p1 - $p0 - $idlep * $wall) * 1000000 / $hz / $acts" | bc -l)" \
			"$(echo "($p1 - $p0 + $d1 - $d0 - ($idlep + $idled) * $wall) * 1000000 / $hz / $acts" | bc -l)" \
			"$la" "$(cut -d' ' -f1-3 /proc/loadavg)"
		[[ $side == fedify ]] && echo "  fedify stats: $(stats); round $wall s"
		if [[ -n $s0 ]]; then
			sleep 11
			read -r -a a <<<"$s0"
			read -r -a b <<<"$(pg_stats "$sdb")"
			printf '  database %s per activity: %.2f transactions, rows %.2f inserted, %.2f updated, %.2f deleted, %.1f returned, %.1f fetched\n' "$sdb" \
				"$(echo "(${b[0]} - ${a[0]}) / $acts" | bc -l)" "$(echo "(${b[1]} - ${a[1]}) / $acts" | bc -l)" "$(echo "(${b[2]} - ${a[2]}) / $acts" | bc -l)" \
				"$(echo "(${b[3]} - ${a[3]}) / $acts" | bc -l)" "$(echo "(${b[4]} - ${a[4]}) / $acts" | bc -l)" "$(echo "(${b[5]} - ${a[5]}) / $acts" | bc -l)"
		fi
	done
done
# Node's own raw verify (Fedify verifies with WebCrypto), beside inboxload's Go figure.
echo "node raw RSA-2048 verify CPU (node:crypto, WebCrypto): $(cd hack/fedify-peer && "$node" rawverify.mjs 20000); load $(cut -d' ' -f1-3 /proc/loadavg)"
