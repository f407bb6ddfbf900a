#!/usr/bin/env bash
# hack/image-git.sh prints the -file arguments of hack/image that put Debian's git into the
# server image (`make image`): /usr/bin/git, its exec-path copy, the http(s) remote helper
# and every shared library they load (ldd), with the dynamic loader, taken from the build
# host's Debian 12 packages (git is installed from Debian when missing, as hack/gitea.sh
# does). internal/gitsync runs that git to mirror federated branches (issue 14). The
# Dockerfile does the same from debian:bookworm-slim; this is the engine-less path, for a
# machine that has no Docker and reaches no image registry. docs/decisions.md ("The server
# image carries Debian's git") says why.
set -euo pipefail

if ! command -v git >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q git >/dev/null
fi
bins=(/usr/bin/git /usr/lib/git-core/git /usr/lib/git-core/git-remote-http)
declare -A seen=()
args=()
add() { # add SRC DST once per DST, with the mode Debian installed it with
	[[ -n ${seen[$2]:-} ]] && return
	seen[$2]=1
	local src
	src=$(readlink -f "$1")
	args+=("-file" "$src:$2:$(stat -c %a "$src")")
}
for b in "${bins[@]}"; do
	add "$b" "$b"
done
# git looks up the https helper by its own name; Debian links it to git-remote-http.
add /usr/lib/git-core/git-remote-http /usr/lib/git-core/git-remote-https
while read -r lib; do
	add "$lib" "$lib"
done < <(ldd "${bins[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u)
printf '%s\n' "${args[@]}"
