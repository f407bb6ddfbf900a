#!/usr/bin/env bash
# Builds Gitea from the Go module proxy and runs throwaway instances of it on loopback, so
# that forge tests talk to a real forge instead of replaying recorded webhooks.
#
#   hack/gitea.sh build                 # builds once, prints bin/gitea/<version>/gitea
#   hack/gitea.sh start <dir> <ip:port> # new (or restarted) instance; prints its JSON
#   hack/gitea.sh stop <dir>            # stops the instance whose state is in <dir>
#
# The build goes through the wrapper module hack/gitea/ (go.mod pins the version and
# Gitea's own replace lines, go.sum is committed), CGO_ENABLED=0 with the pure-Go SQLite
# driver. It is cached by version under bin/gitea/<version>/ together with Gitea's options/,
# templates/ and public/ (read through STATIC_ROOT_PATH, since the binary is built without
# the bindata tag); a second run does nothing. Repositories' git hooks bake in the binary's
# path: never move bin/gitea/<version>/ while instances that made repositories are kept.
#
# `start` writes <dir>/custom/conf/app.ini (SQLite, no SSH, offline, webhooks allowed to
# loopback and private addresses), migrates, creates an admin user and an access token with
# every scope, runs `gitea web` in the background and waits until /api/v1/user answers as that user (so a
# stranger on the port is never taken for it). It prints
# one line of JSON: {"url","user","password","token","pid","dir"} (also in <dir>/instance.json).
# With GITEA_WATCH_PID=<pid>, the instance is stopped as soon as that process is gone.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
wrapper="$root/hack/gitea"

log() { echo "gitea: $*" >&2; }
die() { log "$*"; exit 1; }

# version is the Gitea release the wrapper module requires (as gitea.dev).
version=$(awk '$1=="require" && $2=="gitea.dev" {print $3; exit}' "$wrapper/go.mod")
[ -n "$version" ] || die "gitea.dev not required in $wrapper/go.mod"
cache="$root/bin/gitea/$version"
binary="$cache/gitea"

# ensure_git installs Debian's git when it is missing: Gitea runs it for every repository
# operation (it needs >= 2.13) and the tests push with it.
ensure_git() {
	command -v git >/dev/null 2>&1 && return 0
	log "installing git from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >&2 ||
		{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git >&2; } ||
		die "git is missing and apt-get could not install it"
}

# build builds Gitea and copies its assets once per version; concurrent callers (several
# test packages at once) wait on a lock instead of building twice.
build() {
	if [ -x "$binary" ] && [ -f "$cache/.assets-complete" ]; then
		echo "$binary"
		return 0
	fi
	mkdir -p "$cache"
	exec 9>"$cache/.lock"
	flock 9
	if [ ! -x "$binary" ]; then
		local start=$SECONDS
		log "building Gitea $version into $cache (about 8 minutes cold on 2 cores)"
		(cd "$wrapper" && CGO_ENABLED=0 nice -n 10 go build -trimpath \
			-ldflags "-s -w -X main.Version=${version#v}" -o "$binary.tmp" gitea.dev)
		mv "$binary.tmp" "$binary"
		log "built Gitea in $((SECONDS - start))s"
	fi
	if [ ! -f "$cache/.assets-complete" ]; then
		local src
		src=$(cd "$wrapper" && go list -m -f '{{.Dir}}' gitea.dev)
		[ -d "$src/options" ] || die "Gitea's module source not found at $src"
		for d in options templates public; do
			rm -rf "${cache:?}/$d"
			cp -R "$src/$d" "$cache/$d"
		done
		chmod -R u+w "$cache/options" "$cache/templates" "$cache/public"
		touch "$cache/.assets-complete"
	fi
	flock -u 9
	echo "$binary"
}

# secret prints a fresh secret of the given kind (INTERNAL_TOKEN, SECRET_KEY, JWT_SECRET).
secret() { "$binary" generate secret "$1"; }

# write_config writes a fresh app.ini for an instance in $dir listening on $ip:$port.
write_config() {
	local dir=$1 ip=$2 port=$3 conf=$4
	local root_line=""
	[ "$(id -u)" = 0 ] && root_line="I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true"
	mkdir -p "$(dirname "$conf")" "$dir/data" "$dir/log" "$dir/repos"
	cat >"$conf" <<EOF
; Throwaway Gitea written by hack/gitea.sh; deleted with its directory.
APP_NAME = Fedforge test Gitea
RUN_MODE = prod
RUN_USER = $(id -un)
WORK_PATH = $dir
$root_line

[server]
PROTOCOL = http
HTTP_ADDR = $ip
HTTP_PORT = $port
DOMAIN = $ip
ROOT_URL = http://$ip:$port/
APP_DATA_PATH = $dir/data
STATIC_ROOT_PATH = $cache
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = $dir/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = $dir/repos

[security]
INSTALL_LOCK = true
SECRET_KEY = $(secret SECRET_KEY)
INTERNAL_TOKEN = $(secret INTERNAL_TOKEN)
; Webhooks may call Fedforge on loopback and private addresses (tests run on 127.0.0.0/8).
ALLOWED_HOST_LIST = loopback,private

[webhook]
; Gitea's default: a delivery gets 5 s and one that timed out is never retried. Tests run
; what users run; Fedforge answers a webhook once the event is queued in its store and
; processes it afterwards (docs/sources.md), well within 5 s on a busy machine.
DELIVER_TIMEOUT = 5

[migrations]
; Migrations may clone from loopback (a repository migrated from another test Gitea, whose
; original_url Fedforge matches against an upstream's cloneUri, issue 14).
ALLOW_LOCALNETWORKS = true

[oauth2]
JWT_SECRET = $(secret JWT_SECRET)

[service]
DISABLE_REGISTRATION = true

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[mailer]
ENABLED = false

[cron.update_checker]
ENABLED = false

[actions]
ENABLED = false

[log]
MODE = file
LEVEL = Info
ROOT_PATH = $dir/log
EOF
}

# start prepares (first time) and runs an instance, then prints its JSON.
start() {
	local dir=${1:?usage: hack/gitea.sh start <dir> <ip:port>} addr=${2:?usage: hack/gitea.sh start <dir> <ip:port>}
	local ip=${addr%:*} port=${addr##*:}
	[ -n "$ip" ] && [ -n "$port" ] && [ "$ip" != "$addr" ] || die "address must be ip:port, got $addr"
	ensure_git
	build >/dev/null
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local conf="$dir/custom/conf/app.ini" pidfile="$dir/gitea.pid"
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		die "an instance already runs from $dir (pid $(cat "$pidfile"))"
	fi
	local g=("$binary" --config "$conf" --work-path "$dir")
	if [ ! -f "$dir/instance.json" ]; then
		write_config "$dir" "$ip" "$port" "$conf"
		"${g[@]}" migrate >"$dir/log/setup.log" 2>&1 || { tail -20 "$dir/log/setup.log" >&2; die "migrate failed in $dir"; }
		local user=fedforge-admin password token
		password=$(secret SECRET_KEY); password=${password:0:32}
		"${g[@]}" admin user create --admin --username "$user" --password "$password" \
			--email "$user@example.invalid" --must-change-password=false >>"$dir/log/setup.log" 2>&1 ||
			{ tail -20 "$dir/log/setup.log" >&2; die "admin user creation failed in $dir"; }
		token=$("${g[@]}" admin user generate-access-token --username "$user" --token-name fedforge-test \
			--scopes all --raw 2>>"$dir/log/setup.log") || { tail -20 "$dir/log/setup.log" >&2; die "token creation failed in $dir"; }
		printf '{"url":"http://%s/","user":"%s","password":"%s","token":"%s","dir":"%s"}\n' \
			"$addr" "$user" "$password" "$token" "$dir" >"$dir/instance.json"
		chmod 600 "$dir/instance.json"
	elif ! grep -q "\"url\":\"http://$addr/\"" "$dir/instance.json"; then
		die "$dir was set up for another address: $(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$dir/instance.json")"
	fi
	# setsid: the instance outlives this script and is stopped by pid (hack/gitea.sh stop).
	setsid "${g[@]}" web --pid "$pidfile" >>"$dir/log/web.log" 2>&1 </dev/null &
	local pid=$! url
	# GITEA_WATCH_PID (set by internal/forge/giteatest to the test binary's pid): stop the
	# instance when that process is gone, even if it died before its cleanup ran.
	if [ -n "${GITEA_WATCH_PID:-}" ]; then
		setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill "$2" 2>/dev/null' \
			watch "$GITEA_WATCH_PID" "$pid" >/dev/null 2>&1 </dev/null &
	fi
	url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$dir/instance.json")
	local token user
	token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$dir/instance.json")
	user=$(sed -n 's/.*"user":"\([^"]*\)".*/\1/p' "$dir/instance.json")
	# Ready when this instance answers as itself: the token's user, not just any server on
	# the port (another test's server can take a free port between the caller's probe and
	# Gitea's listen; Gitea then exits and a bare version check passed on the stranger).
	for _ in $(seq 1 300); do
		if curl -fsS --max-time 2 -H "Authorization: token $token" "${url}api/v1/user" 2>/dev/null | grep -q "\"login\":\"$user\""; then
			sed "s/}\$/,\"pid\":$pid}/" "$dir/instance.json"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || { tail -30 "$dir/log/web.log" >&2; die "gitea web exited during start (logs in $dir/log)"; }
		# Gitea logs a taken port and keeps running without a listener: give up at once.
		if grep -qs "bind: address already in use" "$dir/log/web.log" "$dir/log/gitea.log"; then
			halt "$pid" "$pidfile"
			die "$addr is taken by another process (logs in $dir/log)"
		fi
		sleep 0.2
	done
	halt "$pid" "$pidfile"
	die "no answer as $user from ${url}api/v1/user within 60s (logs in $dir/log)"
}

# halt ends process <pid> and waits until it is gone (SIGKILL after 10 s), then removes
# <pidfile>: a start that gives up leaves nothing running behind it.
halt() {
	local pid=$1 pidfile=$2
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$pidfile"
}

# stop ends the instance of <dir> by its pid and waits until it is gone.
stop() {
	local dir=${1:?usage: hack/gitea.sh stop <dir>}
	local pidfile="$dir/gitea.pid" pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	halt "$pid" "$pidfile"
}

case "${1:-}" in
build) ensure_git; build ;; # the forge tests and internal/gitsync run git too
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*) die "usage: hack/gitea.sh build | start <dir> <ip:port> | stop <dir>" ;;
esac
