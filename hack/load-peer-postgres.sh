#!/usr/bin/env bash
# Starts (idempotently) the PostgreSQL that hack/load-peer-fedify.sh gives Fedify, and
# prints its DSN on stdout; `stop` stops it, `destroy` also removes its data.
#
# The same recipe as hack/test-postgres.sh (Debian's PostgreSQL run as `postgres`, a free
# 127.0.0.1 port, a random password over TCP, its own directory under
# /var/lib/postgresql/), with one difference: PostgreSQL's durable defaults (fsync on,
# synchronous_commit on, full_page_writes on). test-postgres.sh turns them off because it
# holds test data; a peer measured "in its production setup" must not run faster by
# giving up the guarantee it documents, so this cluster commits to disk before answering.
# As root only (the server runs as the `postgres` user). Everything but the DSN goes to stderr.
#
# FEDFORGE_LOAD_PG_DB names the database (default fedify: Fedify's); hack/load-peer-fedify.sh
# asks for a second one, fedforge, on the same cluster when FEDFORGE_STORE=postgres.
# FEDFORGE_LOAD_PG_FRESH=1 drops the database first, so that a run starts from an empty one.
set -euo pipefail

BASE=${FEDFORGE_LOAD_PG_DIR:-/var/lib/postgresql/fedforge-load-peer}
DATA="$BASE/data" PORT_FILE="$BASE/port" PASS_FILE="$BASE/password" DB=${FEDFORGE_LOAD_PG_DB:-fedify}
log() { echo "load-peer-postgres: $*" >&2; }
[[ "$(id -u)" == 0 ]] || { log "run as root (the server runs as the postgres user)"; exit 1; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r | head -1)
if [[ -z "$PGBIN" ]]; then
	log "installing PostgreSQL from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql </dev/null >&2
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V -r | head -1)
fi
as_pg() { (cd / && runuser -u postgres -- "$@"); }
running() { [[ -f "$DATA/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

case "${1:-}" in
stop | destroy)
	running && as_pg "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
	[[ "$1" == destroy ]] && rm -rf "$BASE"
	exit 0
	;;
esac

install -d -o postgres -m 0755 /var/lib/postgresql
install -d -o postgres -m 0700 "$BASE"
if [[ ! -f "$DATA/PG_VERSION" ]]; then
	log "initdb in $DATA"
	(umask 077 && head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$PASS_FILE")
	chown postgres "$PASS_FILE"
	as_pg "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$PASS_FILE" \
		--auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
fi
if ! running; then
	port=""
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		port_free "$p" && { port=$p; break; }
	done
	[[ -n "$port" ]] || { log "no free port found"; exit 1; }
	echo "$port" >"$PORT_FILE"
	log "starting on 127.0.0.1 port $port (durable defaults)"
	as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$BASE/postgres.log" -w -t 60 \
		-o "-p $port -k $BASE -c listen_addresses=127.0.0.1 -c max_connections=100" start >&2
fi
port=$(cat "$PORT_FILE")
[[ "$DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { log "FEDFORGE_LOAD_PG_DB=$DB: want a plain lower-case name"; exit 1; }
if [[ "${FEDFORGE_LOAD_PG_FRESH:-}" == 1 ]]; then
	as_pg "$PGBIN/dropdb" -h "$BASE" -p "$port" -U postgres --if-exists --force "$DB" >&2
fi
if [[ "$(as_pg "$PGBIN/psql" -h "$BASE" -p "$port" -U postgres -d postgres -tAc \
	"SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
	as_pg "$PGBIN/createdb" -h "$BASE" -p "$port" -U postgres "$DB" >&2
fi
printf 'postgres://postgres:%s@127.0.0.1:%s/%s\n' "$(cat "$PASS_FILE")" "$port" "$DB"
