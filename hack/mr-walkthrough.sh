#!/usr/bin/env bash
# Runs the README's merge-request walkthrough ("### Send a merge request to another
# instance": two Gitea from hack/gitea.sh, Bob's and Alice's Repository actors, the five
# steps and the migrated fork) as written, against the two running instances of the
# README (`make run`, and the second instance on 127.0.0.2:8080), and prints how long each
# step took, from the action to what `waitfor` saw. The commands are read from README.md,
# not copied: what runs is what a reader pastes, so a README change that breaks the
# walkthrough fails here.
#
#   hack/mr-walkthrough.sh          # runs it on fresh instances; stops at the first waitfor that runs out
#   hack/mr-walkthrough.sh clean    # the README's cleanup block: stops the two Gitea, removes their state
#
# The full trace (commands with timestamps, tokens masked, and their output) is kept in
# .local/mr-walkthrough.log; after a failure everything is left running for a look.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
section='### Send a merge request to another instance'
log=.local/mr-walkthrough.log

die() { echo "mr-walkthrough: $*" >&2; exit 1; }

# block prints the n-th ```sh block of the README section.
block() {
	python3 - "$section" "$1" <<'PY'
import re, sys
section, n = sys.argv[1], int(sys.argv[2])
text = open("README.md").read()
start = text.index(section + "\n")
end = text.find("\n### ", start + 1)
blocks = re.findall(r"```sh\n(.*?)```", text[start:end if end > 0 else None], re.S)
print(blocks[n], end="")
PY
}

# summary reads the trace: for each waitfor, the last action before it and when the
# waitfor succeeded.
summary() {
	python3 - "$1" <<'PY'
import re, sys
from datetime import datetime
act = re.compile(r"(curl -X (POST|PATCH)|git -C \S+ push|kubectl apply)")
action, waiting = None, ""

def describe(cmd):
    """The action in a few words: a curl's method and URL, a git push's branch."""
    if cmd.startswith("curl"):
        url = re.search(r"http://\S+", cmd)
        method = re.search(r"-X (\w+)", cmd)
        return f"{method.group(1) if method else 'GET'} {url.group(0) if url else ''}"
    if " push " in cmd:
        return "git push of " + cmd.split()[-1]
    return cmd[:60]

def until(cmd):
    """What a waitfor waited for: the URL it read and the text it looked for."""
    cmd = cmd.replace("'\\''", "'")
    url = re.search(r"http://[^\s']+", cmd)
    grep = re.search(r"grep -q ('([^']*)'|(\S+?))'?$", cmd)
    shown = grep and (grep.group(2) or grep.group(3))
    return (url.group(0) if url else cmd[:60]) + (f" shows {shown}" if shown else " answers")
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"^\+ (\d\d:\d\d:\d\d\.\d+) (.*)$", line.rstrip("\n"))
    if not m:
        if waiting.endswith("|"):  # a waitfor's command continued on the next line
            waiting += " " + line.strip()
        continue
    t, cmd = datetime.strptime(m.group(1)[:12], "%H:%M:%S.%f"), m.group(2)
    if cmd.startswith("waitfor "):
        waiting = cmd[len("waitfor "):]
    elif cmd.startswith("echo 'after ") and action:
        print(f"{(t - action[0]).total_seconds():6.1f} s  from {describe(action[1])}\n          until {until(waiting)}")
    elif act.search(cmd):
        action = (t, cmd)
PY
}

case "${1:-run}" in
clean)
	bash -c "$(block 2)"
	exit 0
	;;
run) ;;
*) die "usage: hack/mr-walkthrough.sh [run|clean]" ;;
esac

for addr in 127.0.0.1:8080 127.0.0.2:8080; do
	curl -fsS --max-time 5 -o /dev/null "http://$addr/healthz" ||
		die "no Fedforge answers on $addr: start \`make run\` and the README's second instance first"
done
for d in .local/gitea-bob .local/gitea-alice .local/alice-work; do
	[ ! -e "$d" ] || die "$d is left from an earlier run: hack/mr-walkthrough.sh clean"
done
# The instances' stores remember the pull requests offered and merged: a new Gitea's pull
# request #1 behind the same actors would not be offered again.
if KUBECONFIG=.local/run/kubeconfig kubectl get federatedactor bobs-rocket >/dev/null 2>&1; then
	die "these instances ran the walkthrough already: stop them, rm -rf .local/run .local/peer, start them again"
fi
mkdir -p .local
script=$(mktemp)
trap 'rm -f "$script"' EXIT
{
	echo "PS4='+ \$(date +%T.%N) '"
	echo 'set -e -o pipefail -x'
	block 0
	block 1
} >"$script"
echo "mr-walkthrough: running the README's walkthrough; trace in $log" >&2
status=0
bash "$script" >"$log" 2>&1 || status=$?
# The throwaway Gitea's tokens and passwords are masked in the log all the same.
python3 - "$log" .local/gitea-bob/instance.json .local/gitea-alice/instance.json <<'PY'
import json, os, sys
log = open(sys.argv[1], errors="replace").read()
for f in sys.argv[2:]:
    if os.path.exists(f):
        inst = json.load(open(f))
        for k in ("token", "password"):
            if inst.get(k):
                log = log.replace(inst[k], "…")
open(sys.argv[1], "w").write(log)
PY
summary "$log"
[ "$status" = 0 ] || die "a command failed (exit $status): see the end of $log; everything is left running"
echo "mr-walkthrough: done; hack/mr-walkthrough.sh clean stops the two Gitea and removes their state" >&2
