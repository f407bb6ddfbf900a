#!/usr/bin/env bash
# Runs every test a contributor must pass (`make test`): unit tests, fuzz seed corpora,
# the store suite against real SQLite and a real throwaway PostgreSQL, and the envtest
# suites against a real kube-apiserver and etcd, all with the race detector.
# It installs what is missing (PostgreSQL and Chromium from Debian, envtest binaries from the
# Go module proxy) and stops the PostgreSQL cluster afterwards if it started it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

assets=$(hack/envtest-binaries.sh)
hack/check-private-clone.sh
FEDFORGE_GITEA=$(hack/gitea.sh build); export FEDFORGE_GITEA # real Gitea for internal/forge (docs/forges.md)
hack/chromium.sh >/dev/null # Debian's Chromium for the profile page's browser test (internal/app)
pg_was_running=0
if hack/test-postgres.sh status 2>/dev/null; then
	pg_was_running=1
fi
dsn=$(hack/test-postgres.sh)
if [ $pg_was_running = 0 ]; then
	trap 'hack/test-postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi

export KUBEBUILDER_ASSETS="$assets"
export FEDFORGE_TEST_POSTGRES_DSN="$dsn"
# -parallel 4: internal/app's tests (the longest package) call t.Parallel() and mostly wait
# (Gitea's webhooks, eventually-loops), using about half of a core each: on 2 cores 4 at a
# time cut the package from 848 s to 367 s, while 8 were no faster and timed out
# (docs/benchmarks.md, "make test: internal/app wall time"). The default is GOMAXPROCS.
# -timeout 30m: the limit is per package binary; internal/app took 1,157 s serially on a
# loaded machine, close to the old 20m, and grows with every test added to it.
go test -race -count=1 -timeout 30m -parallel "${FEDFORGE_TEST_PARALLEL:-4}" "$@" ./...
