# shellcheck shell=bash
# Builds binaries from the Go module proxy in throwaway modules, cached under bin/ by
# version (a second call with the same versions does nothing). Sourced by
# hack/envtest-binaries.sh (kube-apiserver, kubectl, etcd) and hack/local-cluster.sh
# (kubelet, kube-controller-manager, kube-scheduler and kube-proxy from k8s.io/kubernetes,
# CoreDNS from github.com/coredns/coredns, crictl from sigs.k8s.io/cri-tools). Needs $root;
# BINARIES_LOG names the caller in log lines.
# shellcheck disable=SC2154 # root is set by the script that sources this file

COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}

binaries_log() { echo "${BINARIES_LOG:-local-cluster}: $*" >&2; }

# k8s_assets prints the directory holding kube-apiserver, etcd and kubectl (built or reused
# by hack/envtest-binaries.sh); the node binaries go into the same versioned directory.
k8s_assets() {
	"$root/hack/envtest-binaries.sh"
}

# build_k8s_cmd builds one command of k8s.io/kubernetes into the versioned assets directory
# (bin/k8s/<version>-<os>-<arch>). k8s.io/kubernetes replaces its staging modules with
# ./staging paths that do not exist in the module proxy's copy, so the throwaway module
# replaces each of them with its published v0.X.Y release. Each set of commands has its own
# module directory (bin/.build/kubernetes-<version><suffix>), prepared once with every
# command of the set, so that envtest's and the node's builds never touch each other.
#   build_k8s_cmd <assets> <suffix> <cmd> <every cmd of the set...>
build_k8s_cmd() {
	local assets=$1 suffix=$2 cmd=$3
	shift 3
	local out="$assets/$cmd"
	[ -x "$out" ] && return 0
	local version staging
	version=$(basename "$assets"); version=${version%%-*}
	staging="v0${version#v1}"
	local work="$root/bin/.build/kubernetes-${version}${suffix}"
	mkdir -p "$work"
	# One build of a module directory at a time: a second caller (make run beside make
	# test, two test packages) waits for the first and then finds the binary built.
	exec {lock}>"$work.lock"
	flock "$lock"
	if [ -x "$out" ]; then
		exec {lock}>&-
		return 0
	fi
	if [ ! -f "$work/go.sum" ]; then
		binaries_log "preparing k8s.io/kubernetes@${version} build module in $work"
		(
			cd "$work" || exit 1
			rm -f go.mod go.sum
			go mod init "fedforge.local/build-kubernetes${suffix}" >/dev/null 2>&1
			go mod edit -require="k8s.io/kubernetes@${version}"
			kmod=$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
			for m in $(awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$kmod"); do
				go mod edit -replace="$m=$m@${staging}"
			done
			{
				printf '//go:build tools\n\npackage tools\n\nimport (\n'
				for c in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
				printf ')\n'
			} > tools.go
			go mod tidy >/dev/null
		)
	fi
	binaries_log "building $cmd ${version} (several minutes cold)"
	local minor ldflags="-s -w" start=$SECONDS
	minor=$(echo "$version" | cut -d. -f2)
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $p.gitVersion=${version} -X $p.gitMajor=1 -X $p.gitMinor=${minor}"
		ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	(cd "$work" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "k8s.io/kubernetes/cmd/$cmd")
	mv "$out.tmp" "$out"
	exec {lock}>&-
	binaries_log "built $cmd in $((SECONDS - start))s"
}

# The node's commands, built by hack/local-cluster.sh.
K8S_NODE_CMDS=(kube-controller-manager kube-proxy kube-scheduler kubelet)

# build_coredns builds CoreDNS (the root package of github.com/coredns/coredns is the
# binary, with the default plugin set) and prints the path.
build_coredns() {
	build_go_tool coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
}

# build_go_tool builds one main package of a published module in a throwaway module and
# caches it as bin/<name>/<version>/<name>; it prints the path. An optional fifth argument
# adds linker flags (e.g. the -X version stamps of the tool's own Makefile).
#   build_go_tool <name> <module> <version> <package> [extra ldflags]
build_go_tool() {
	local name=$1 module=$2 version=$3 pkg=$4 ldflags="-s -w ${5:-}"
	local out="$root/bin/$name/$version/$name"
	if [ ! -x "$out" ]; then
		local work="$root/bin/.build/$name-$version" start=$SECONDS
		mkdir -p "$work" "$(dirname "$out")"
		binaries_log "building $name $version (a few minutes cold)"
		(
			cd "$work" || exit 1
			[ -f go.mod ] || go mod init "fedforge.local/build-$name" >/dev/null 2>&1
			printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > tools.go
			go mod edit -require="$module@$version"
			go mod tidy >/dev/null
			CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg"
			mv "$out.tmp" "$out"
		)
		binaries_log "built $name in $((SECONDS - start))s"
	fi
	echo "$out"
}

# build_crictl builds crictl, which `down` uses to stop pods through the CRI (so that the
# CNI plugins release their addresses) and which is handy to look at containers.
build_crictl() {
	build_go_tool crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl
}

# build_node_binaries builds (or reuses) every Kubernetes binary the cluster runs and prints
# the directory that holds them.
build_node_binaries() {
	local assets cmd
	assets=$(k8s_assets)
	for cmd in "${K8S_NODE_CMDS[@]}"; do
		build_k8s_cmd "$assets" -node "$cmd" "${K8S_NODE_CMDS[@]}"
	done
	echo "$assets"
}
