#!/usr/bin/env bash
# Regression check for a newcomer's clone in a private directory (issue 18): root's home is
# 0700, and `make run` makes .local 0700 because it holds the local control plane's keys.
# The throwaway PostgreSQL of `make test` runs as the `postgres` user, so it must not keep its
# files where that user cannot reach them. This copies hack/ into a clone-shaped tree under
# a fresh 0700 directory, creates the data directory `make run` would (.local/run/etcd, 0700),
# starts the suite's PostgreSQL from there, runs a query through the DSN it printed, and
# removes it again. `make test` runs it (hack/test.sh) before the Go tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

private=$(mktemp -d /tmp/fedforge-private.XXXXXX) # mktemp makes it 0700
clone="$private/fedforge"
cleanup() {
	"$clone/hack/test-postgres.sh" destroy >/dev/null 2>&1 || true
	rm -rf "$private"
}
trap cleanup EXIT

mkdir -p "$clone"
cp -r "$root/hack" "$clone/hack"
mkdir -p "$clone/.local/run/etcd"
chmod 700 "$private" "$clone/.local" "$clone/.local/run" "$clone/.local/run/etcd"

# From inside the clone, as a user runs it.
if ! dsn=$(cd "$clone" && hack/test-postgres.sh 2>"$private.log"); then
	echo "check-private-clone: the suite's PostgreSQL did not start from a clone under a 0700 directory:" >&2
	cat "$private.log" >&2
	rm -f "$private.log"
	exit 1
fi
if grep -q "Permission denied" "$private.log"; then
	echo "check-private-clone: the suite's PostgreSQL started, but said:" >&2
	cat "$private.log" >&2
	rm -f "$private.log"
	exit 1
fi
rm -f "$private.log"
psql=$(ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
got=$("$psql" "$dsn" -tAc 'SELECT 41 + 1')
if [ "$got" != 42 ]; then
	echo "check-private-clone: query through $dsn returned '$got'" >&2
	exit 1
fi
echo "check-private-clone: PostgreSQL works from a clone under a 0700 directory after make run's data directory exists" >&2
