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
# internal/app runs its parallel tests 4 at a time (its TestMain; FEDFORGE_TEST_PARALLEL
# overrides it): an explicit -parallel here would make Ginkgo fail the controllers suite.
# -timeout 30m: the limit is per package binary; internal/app took 1,157 s serially on a
# loaded machine, close to the old 20m, and grows with every test added to it.
go test -race -count=1 -timeout 30m "$@" ./...
