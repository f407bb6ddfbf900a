#!/usr/bin/env bash
# Start (idempotently) a throwaway PostgreSQL cluster for the store tests and print
# its DSN on stdout:
#
#   export FEDFORGE_TEST_POSTGRES_DSN="$(hack/test-postgres.sh)"
#   go test ./internal/store/
#   hack/test-postgres.sh stop
#
#   hack/test-postgres.sh status     # exit 0 when this clone's cluster is running
#   hack/test-postgres.sh destroy    # stop it and remove its data (CI does at the end)
#
# It installs PostgreSQL from Debian when missing, runs it as the non-root `postgres` user,
# listens on a free 127.0.0.1 port with unix sockets in its own directory, and requires a
# random password over TCP. The cluster trades durability for speed (fsync off): it holds
# test data only. Everything but the DSN goes to stderr.
#
# Where the cluster lives: as root, the server runs as `postgres`, which must reach its data
# directory and password file. A clone may sit under a directory that user cannot traverse
# (root's home is 0700, and `make run` makes .local 0700 because it holds the local control
# plane's keys), so the cluster lives outside the clone, in a directory owned by `postgres`
# under /var/lib/postgresql/fedforge-test/, keyed by a hash of the clone's path so that two
# clones never share one. As another user, the server runs as that user and the cluster
# stays in the clone's .local/postgres. FEDFORGE_PG_DIR overrides both.
#
# FEDFORGE_PG_LISTEN=ip also listens on ip and lets FEDFORGE_PG_CIDR (password required)
# connect, and the DSN names ip: hack/cluster-postgres.sh uses it to serve the local
# cluster's pods from the node's bridge address.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -n "${FEDFORGE_PG_DIR:-}" ]]; then
	BASE="$FEDFORGE_PG_DIR"
elif [[ "$(id -u)" == 0 ]]; then
	BASE="/var/lib/postgresql/fedforge-test/$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)"
else
	BASE="$ROOT/.local/postgres"
fi
DATA="$BASE/data"
SOCK="$BASE"
PORT_FILE="$BASE/port"
PASS_FILE="$BASE/password"
DB="fedforge_test"
RUN_USER="postgres"

log() { echo "test-postgres: $*" >&2; }

find_bin() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

as_user() {
	if [[ "$(id -u)" == 0 ]]; then
		# From /: the caller's directory (a clone in root's home) may be closed to it.
		(cd / && runuser -u "$RUN_USER" -- "$@")
	else
		"$@"
	fi
}

running() {
	[[ -f "$DATA/postmaster.pid" ]] && as_user "$PGBIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

LISTEN_EXTRA="${FEDFORGE_PG_LISTEN:-}"

dsn() {
	printf 'postgres://postgres:%s@%s:%s/%s?sslmode=disable\n' "$(cat "$PASS_FILE")" "${LISTEN_EXTRA:-127.0.0.1}" "$(cat "$PORT_FILE")" "$DB"
}

if ! PGBIN="$(find_bin)"; then
	case "${1:-}" in
	stop | destroy) exit 0 ;;
	status) exit 1 ;;
	esac
	if [[ "$(id -u)" != 0 ]]; then
		log "PostgreSQL is not installed and we are not root: apt-get install postgresql"
		exit 1
	fi
	log "installing PostgreSQL from Debian"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
	PGBIN="$(find_bin)"
fi

case "${1:-}" in
status)
	running
	exit
	;;
stop | destroy)
	if running; then
		as_user "$PGBIN/pg_ctl" -D "$DATA" -m fast -w stop >&2
	fi
	if [[ "$1" == destroy && -d "$BASE" ]]; then
		log "removing $BASE"
		rm -rf "$BASE"
	fi
	exit 0
	;;
esac

if [[ "$(id -u)" == 0 ]]; then
	if ! id "$RUN_USER" >/dev/null 2>&1; then
		log "creating system user $RUN_USER"
		useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
	fi
else
	RUN_USER="$(id -un)"
fi

if [[ "$(id -u)" == 0 ]]; then
	# RUN_USER must traverse every directory down to BASE; BASE itself stays 0700.
	if [[ -z "${FEDFORGE_PG_DIR:-}" ]]; then
		install -d -o "$RUN_USER" -m 0755 /var/lib/postgresql /var/lib/postgresql/fedforge-test
	fi
	mkdir -p "$(dirname "$BASE")"
	if ! runuser -u "$RUN_USER" -- test -x "$(dirname "$BASE")"; then
		log "user $RUN_USER cannot reach $(dirname "$BASE"); choose FEDFORGE_PG_DIR where it can"
		exit 1
	fi
fi
mkdir -p "$BASE"
if [[ "$(id -u)" == 0 ]]; then
	chown "$RUN_USER" "$BASE"
fi
chmod 700 "$BASE"

if [[ ! -f "$DATA/PG_VERSION" ]]; then
	log "initdb in $DATA"
	rm -rf "$DATA"
	umask 077
	head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$PASS_FILE"
	[[ "$(id -u)" == 0 ]] && chown "$RUN_USER" "$PASS_FILE"
	as_user "$PGBIN/initdb" -D "$DATA" -U postgres --pwfile="$PASS_FILE" \
		--auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >&2
fi

if ! running; then
	port=""
	if [[ -f "$PORT_FILE" ]] && port_free "$(cat "$PORT_FILE")"; then
		port="$(cat "$PORT_FILE")"
	else
		for _ in $(seq 1 200); do
			p=$((20000 + RANDOM % 40000))
			if port_free "$p"; then
				port="$p"
				break
			fi
		done
	fi
	[[ -n "$port" ]] || { log "no free port found"; exit 1; }
	echo "$port" >"$PORT_FILE"
	listen=127.0.0.1
	if [[ -n "$LISTEN_EXTRA" ]]; then
		listen="127.0.0.1,$LISTEN_EXTRA"
		line="host all all ${FEDFORGE_PG_CIDR:?FEDFORGE_PG_CIDR must name who may connect on $LISTEN_EXTRA} scram-sha-256"
		grep -qxF "$line" "$DATA/pg_hba.conf" || as_user sh -c "echo '$line' >>'$DATA/pg_hba.conf'"
	fi
	log "starting on $listen port $port"
	as_user "$PGBIN/pg_ctl" -D "$DATA" -l "$BASE/postgres.log" -w -t 60 \
		-o "-p $port -k $SOCK -c listen_addresses=$listen -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >&2
fi

port="$(cat "$PORT_FILE")"
if [[ "$(as_user "$PGBIN/psql" -h "$SOCK" -p "$port" -U postgres -d postgres -tAc \
	"SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]]; then
	log "creating database $DB"
	as_user "$PGBIN/createdb" -h "$SOCK" -p "$port" -U postgres "$DB" >&2
fi
dsn
