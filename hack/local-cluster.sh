#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for `make test-e2e` and for trying
# Fedforge as a platform team would run it. No registry, no Docker, no traffic off the
# machine: Kubernetes (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy) and CoreDNS are built from the Go module proxy and cached under bin/;
# containerd, runc and the CNI plugins come from Debian; the pause and CoreDNS images are
# built locally by hack/image and imported with ctr. docs/cluster.md has the recipe and
# the pitfalls of this machine.
#
#   hack/local-cluster.sh up                 # build or reuse everything, start, wait until Ready
#   hack/local-cluster.sh load-image T.tar   # import an image tarball into the node
#   hack/local-cluster.sh tag-image REF NEW  # the imported image REF also under the name NEW
#   hack/local-cluster.sh status             # components, node and pods
#   hack/local-cluster.sh kubeconfig         # path of the admin kubeconfig
#   hack/local-cluster.sh recycle-volumes    # make Released PVs of the local pool Available
#   hack/local-cluster.sh down               # stop what `up` started and remove its state
#
# Must run as root (containerd, kubelet, bridge). `up` is idempotent: a running component is
# kept. `down` stops only processes whose PIDs it recorded and undoes only what it changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/lib/binaries.sh
source "$root/hack/lib/binaries.sh"

STATE=${FEDFORGE_CLUSTER_DIR:-$root/.local/cluster}
# Sockets and containerd's state live under /run: unix socket paths are short there.
RUNDIR=${FEDFORGE_CLUSTER_RUNDIR:-/run/fedforge-cluster}
NODE_NAME=fedforge-node
BRIDGE=ffbr0               # our own bridge; the node IP lives on it, never on eth0
NODE_IP=10.244.0.1
POD_SUBNET=10.244.0.0/24
ROUTE_TABLE=30244          # policy routing table (and rule priority) for traffic from pods
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
ETCD_PORT=2479              # not 2379, so that a developer's own etcd does not clash
API_PORT=6443
PAUSE_IMAGE=fedforge.local/pause:3.10
COREDNS_IMAGE=fedforge.local/coredns:${COREDNS_VERSION}
VOLUME_POOL=${FEDFORGE_CLUSTER_VOLUMES:-16}
# Kernel settings the kubelet insists on (it would rewrite them itself otherwise); `up`
# records the old values and `down` puts them back.
KUBELET_SYSCTLS="vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1 kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000"

PKI=$STATE/pki
LOGS=$STATE/logs
PIDS=$STATE/pids
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
CONTAINERD_SOCK=$RUNDIR/containerd.sock

log() { echo "local-cluster: $*" >&2; }
die() { log "$*"; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (containerd, kubelet and the bridge need it)"; }

# ---------------------------------------------------------------------------- preflight

# preflight installs the Debian packages the node needs and refuses hosts where a kubelet
# cannot run, with the reason.
preflight() {
	local missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v conntrack >/dev/null || missing+=(conntrack)
	command -v openssl >/dev/null || missing+=(openssl)
	[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing from Debian: ${missing[*]}"
		apt-get update -qq >&2
		# Where systemd runs, Debian also starts its own containerd service; ours is apart
		# from it (own socket, root and state directories).
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	fi
	grep -qw overlay /proc/filesystems || die "the kernel has no overlayfs; containerd's snapshotter needs it"
	[ -d /proc/sys/net/bridge ] || die "br_netfilter is not available (no /proc/sys/net/bridge); Service traffic between pods on the bridge would not be NATed"
	if [ ! -f /sys/fs/cgroup/cgroup.controllers ] && [ ! -d /sys/fs/cgroup/memory ]; then
		die "neither cgroup v2 nor a cgroup v1 memory hierarchy is mounted under /sys/fs/cgroup"
	fi
	has_cap 21 || die "CAP_SYS_ADMIN is missing: containers cannot be created (mount, namespaces)"
	has_cap 12 || die "CAP_NET_ADMIN is missing: the bridge and Service rules cannot be set up"
	has_cap 24 || log "CAP_SYS_RESOURCE is missing: containerd clamps oom_score_adj (restrict_oom_score_adj)"
	if [ -n "$(swapon --show=NAME --noheadings 2>/dev/null)" ]; then
		log "swap is on; the kubelet runs with failSwapOn=false"
	fi
}

# has_cap N succeeds when this process has capability number N in its effective set.
has_cap() {
	local eff
	eff=$(awk '/^CapEff:/ {print $2}' /proc/self/status)
	(( (16#$eff >> $1) & 1 ))
}

# cgroup_version prints 2 on a unified hierarchy and 1 otherwise (hybrid or legacy).
cgroup_version() { [ -f /sys/fs/cgroup/cgroup.controllers ] && echo 2 || echo 1; }

# ---------------------------------------------------------------------------- processes

# alive NAME succeeds when the process recorded for NAME runs the binary it was started as.
alive() {
	local f="$PIDS/$1" pid exe
	[ -f "$f" ] || return 1
	read -r pid exe <"$f"
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	# " (deleted)": the binary was replaced on disk since (hack/envtest-binaries.sh
	# rewrites its copy of etcd); the process is still ours.
	local now; now=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[ "${now% (deleted)}" = "$exe" ]
}

# start NAME BINARY ARGS... starts one component in its own session (so that an interrupted
# make does not kill it), logs to $LOGS/NAME.log and records its PID.
start() {
	local name=$1 bin=$2; shift 2
	if alive "$name"; then return 0; fi
	mkdir -p "$LOGS" "$PIDS"
	setsid "$bin" "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
	echo "$! $(readlink -f "$bin")" >"$PIDS/$name"
	log "started $name (pid $!, log $LOGS/$name.log)"
}

# stop NAME sends SIGTERM to the recorded process, then SIGKILL after a grace period.
stop() {
	local name=$1 pid exe i
	[ -f "$PIDS/$name" ] || return 0
	if alive "$name"; then
		read -r pid exe <"$PIDS/$name"
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do alive "$name" || break; sleep 0.2; done
		if alive "$name"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
		log "stopped $name (pid $pid)"
	fi
	rm -f "$PIDS/$name"
}

# wait_for SECONDS WHAT COMMAND... polls COMMAND until it succeeds.
wait_for() {
	local timeout=$1 what=$2 start=$SECONDS; shift 2
	until "$@" >/dev/null 2>&1; do
		if [ $((SECONDS - start)) -ge "$timeout" ]; then
			die "timed out after ${timeout}s waiting for $what (logs in $LOGS)"
		fi
		sleep 1
	done
}

kubectl_() { "$ASSETS/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
crictl_() { "$CRICTL" --runtime-endpoint "unix://$CONTAINERD_SOCK" --image-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s "$@"; }

# ---------------------------------------------------------------------------- build

# build_all builds or reuses every binary and image, and sets ASSETS, CRICTL, COREDNS.
build_all() {
	ASSETS=$(build_node_binaries)
	COREDNS=$(build_coredns)
	CRICTL=$(build_crictl)
	build_images
}

# image_tool builds hack/image (a module of its own, see docs/cluster.md) into bin/.
image_tool() {
	(cd "$root/hack/image" && CGO_ENABLED=0 go build -trimpath -o "$root/bin/image" .)
	echo "$root/bin/image"
}

# build_images writes the pause and CoreDNS image tarballs under bin/images/.
build_images() {
	local dir="$root/bin/images" tool
	mkdir -p "$dir"
	if [ -f "$dir/pause.tar" ] && [ -f "$dir/coredns-${COREDNS_VERSION}.tar" ]; then return 0; fi
	tool=$(image_tool)
	(cd "$root/hack/image" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/pause" ./pause)
	"$tool" -o "$dir/pause.tar" -tag "$PAUSE_IMAGE" -entrypoint /pause -user 65535:65535 -no-passwd \
		-file "$dir/pause:/pause:0755" >&2
	"$tool" -o "$dir/coredns-${COREDNS_VERSION}.tar" -tag "$COREDNS_IMAGE" -entrypoint /coredns \
		-user 65532:65532 -file "$COREDNS:/coredns:0755" >&2
}

# ---------------------------------------------------------------------------- PKI

# issue NAME CN ORG EXT signs a P-256 key pair with the cluster CA (or $CA). EXT is the
# extension section body (extendedKeyUsage, subjectAltName).
issue() {
	local name=$1 cn=$2 org=$3 ext=$4 subj ca=${CA:-ca}
	[ -f "$PKI/$name.crt" ] && return 0
	subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org$subj"
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$PKI/$name.key" \
		-out "$PKI/$name.csr" -subj "$subj" 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$ext" >"$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
		-days 365 -out "$PKI/$name.crt" -extfile "$PKI/$name.ext" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
	chmod 600 "$PKI/$name.key"
}

# kubeconfig NAME USER writes $STATE/NAME.kubeconfig for the client certificate USER.
kubeconfig() {
	local f="$STATE/$1.kubeconfig" k="$ASSETS/kubectl"
	[ -f "$f" ] && return 0
	"$k" config --kubeconfig="$f.tmp" set-cluster fedforge-local --server="https://$NODE_IP:$API_PORT" \
		--certificate-authority="$PKI/ca.crt" --embed-certs=true >/dev/null
	"$k" config --kubeconfig="$f.tmp" set-credentials "$2" --client-certificate="$PKI/$2.crt" \
		--client-key="$PKI/$2.key" --embed-certs=true >/dev/null
	"$k" config --kubeconfig="$f.tmp" set-context fedforge-local --cluster=fedforge-local --user="$2" >/dev/null
	"$k" config --kubeconfig="$f.tmp" use-context fedforge-local >/dev/null
	chmod 600 "$f.tmp"; mv "$f.tmp" "$f"
}

pki() {
	mkdir -p "$PKI"; chmod 700 "$PKI"
	if [ ! -f "$PKI/ca.crt" ]; then
		log "generating the cluster CA and certificates in $PKI"
		openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650 \
			-keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=fedforge-local-ca" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
		chmod 600 "$PKI/ca.key"
	fi
	# The front-proxy CA signs the aggregation layer's client; without it the API server
	# publishes no requestheader CA, and controller-manager and scheduler log an error
	# every few seconds.
	if [ ! -f "$PKI/front-proxy-ca.crt" ]; then
		openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650 \
			-keyout "$PKI/front-proxy-ca.key" -out "$PKI/front-proxy-ca.crt" -subj "/CN=fedforge-local-front-proxy-ca" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
		chmod 600 "$PKI/front-proxy-ca.key"
	fi
	local client="extendedKeyUsage=clientAuth"
	CA=front-proxy-ca issue front-proxy-client front-proxy-client "" "$client"
	issue apiserver kube-apiserver "" "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	issue apiserver-kubelet-client kube-apiserver-kubelet-client system:masters "$client"
	issue admin fedforge-local-admin system:masters "$client"
	issue controller-manager system:kube-controller-manager "" "$client"
	issue scheduler system:kube-scheduler "" "$client"
	issue kube-proxy system:kube-proxy "" "$client"
	issue kubelet-client "system:node:$NODE_NAME" system:nodes "$client"
	issue kubelet "$NODE_NAME" "" "extendedKeyUsage=serverAuth
subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
	if [ ! -f "$PKI/sa.key" ]; then
		openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
		openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
		chmod 600 "$PKI/sa.key"
	fi
	kubeconfig admin admin
	kubeconfig controller-manager controller-manager
	kubeconfig scheduler scheduler
	kubeconfig kube-proxy kube-proxy
	kubeconfig kubelet kubelet-client
}

# ---------------------------------------------------------------------------- host network

# sysctl_set KEY=VALUE sets a kernel parameter, remembering the first value it replaced.
sysctl_set() {
	local key=${1%%=*} want=${1#*=} path have
	path=/proc/sys/${key//./\/}
	have=$(tr -s '\t' ' ' <"$path")
	[ "$have" = "$want" ] && return 0
	grep -q "^$key=" "$STATE/sysctl.orig" 2>/dev/null || echo "$key=$have" >>"$STATE/sysctl.orig"
	echo "$want" >"$path"
	log "sysctl $key: $have -> $want (restored by down)"
}

host_network() {
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
		log "created bridge $BRIDGE ($NODE_IP)"
	fi
	ip addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/24" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	# Service IPs never leave through eth0, even before kube-proxy has programmed them.
	ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"
	# Forward only what arrives on our bridge (pod -> Service -> pod); the host-wide
	# net.ipv4.ip_forward stays as it is. The setting goes away with the bridge.
	echo 1 >"/proc/sys/net/ipv4/conf/$BRIDGE/forwarding"
	# ...and only back into the bridge: packets from pods are routed with a table that
	# knows the pod subnet and nothing else, so nothing a pod sends leaves the machine
	# (the host's own addresses still answer: the local table comes first).
	ip route replace "$POD_SUBNET" dev "$BRIDGE" table "$ROUTE_TABLE"
	ip route replace unreachable default table "$ROUTE_TABLE"
	ip rule show | grep -q "iif $BRIDGE lookup $ROUTE_TABLE" ||
		ip rule add iif "$BRIDGE" lookup "$ROUTE_TABLE" priority "$ROUTE_TABLE"
	sysctl_set net.bridge.bridge-nf-call-iptables=1
	local s
	for s in $KUBELET_SYSCTLS; do sysctl_set "$s"; done
}

# ---------------------------------------------------------------------------- components

# write_if_changed FILE replaces FILE with stdin only when the content differs: kube-proxy
# exits when its configuration file changes, even to the same bytes, and a running
# component must survive a second `up`.
write_if_changed() {
	local f=$1
	cat >"$f.new"
	if cmp -s "$f.new" "$f"; then rm -f "$f.new"; else mv "$f.new" "$f"; fi
}

write_configs() {
	local RESTRICT_OOM=false
	has_cap 24 || RESTRICT_OOM=true   # CAP_SYS_RESOURCE
	mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/containerd" "$STATE/kubelet" "$RUNDIR"
	# Bridge CNI with host-local IPAM. isGateway is false on purpose: with it the bridge
	# plugin would turn on net.ipv4.ip_forward for the whole host. The bridge already has
	# the gateway address; routes send pods to it. No ipMasq: nothing leaves the machine.
	write_if_changed "$STATE/cni/net.d/10-fedforge.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "fedforge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0", "gw": "$NODE_IP"}]
      }
    }
  ]
}
EOF
	write_if_changed "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUNDIR/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  netns_mounts_under_state_dir = true
  # CAP_SYS_RESOURCE may be missing (it is on our build VMs): the kubelet asks for
  # oom_score_adj -998 on every sandbox, and lowering it needs that capability. This
  # clamps it to containerd's own value instead of failing every pod.
  restrict_oom_score_adj = $RESTRICT_OOM
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUNDIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
	write_if_changed "$STATE/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
healthzBindAddress: 127.0.0.1
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
# systemd is not PID 1 here; the host has cgroup v$(cgroup_version).
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
# up sets the kernel parameters the kubelet wants (and down restores them); with this the
# kubelet checks them instead of rewriting them behind our back.
protectKernelDefaults: true
clusterDomain: cluster.local
clusterDNS: [$DNS_SERVICE_IP]
# No host resolver in pods: nothing resolves or leaves the machine but cluster names.
resolvConf: ""
# Images are imported, never pulled: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
serializeImagePulls: false
podLogsDir: $STATE/pod-logs
EOF
	write_if_changed "$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_SUBNET
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
iptables:
  # true would set net.ipv4.conf.all.route_localnet for the whole host.
  localhostNodePorts: false
conntrack:
  # Zero leaves the host's conntrack table size and timeouts as they are.
  maxPerCore: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

start_control_plane() {
	start etcd "$ASSETS/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
		--initial-cluster "$NODE_NAME=http://127.0.0.1:$((ETCD_PORT + 1))" --log-level warn
	wait_for 60 etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

	start kube-apiserver "$ASSETS/kube-apiserver" \
		--etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
		--service-cluster-ip-range "$SERVICE_CIDR" \
		--client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
		--kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
		--service-account-issuer https://kubernetes.default.svc.cluster.local \
		--service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
		--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
		--requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
		--requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
		--requestheader-extra-headers-prefix X-Remote-Extra- \
		--proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
		--allow-privileged=true --profiling=false
	wait_for 120 kube-apiserver curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		"https://$NODE_IP:$API_PORT/readyz"

	start kube-controller-manager "$ASSETS/kube-controller-manager" \
		--kubeconfig "$STATE/controller-manager.kubeconfig" \
		--authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
		--authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
		--cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
		--root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
		--service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false \
		--profiling=false
	start kube-scheduler "$ASSETS/kube-scheduler" \
		--kubeconfig "$STATE/scheduler.kubeconfig" \
		--authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
		--authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
		--bind-address 127.0.0.1 --leader-elect=false --profiling=false
}

start_node() {
	# Paths the components use whatever their configuration says: libcni's result cache,
	# the kubelet's device-plugin socket and container-log symlinks, the shim sockets of
	# containerd 1.6. Remember which ones we create, so that `down` removes only those.
	local p
	for p in /var/lib/cni /var/lib/kubelet /var/log/containers /run/containerd; do
		[ -e "$p" ] || echo "$p" >>"$STATE/created-paths"
	done
	start containerd "$(command -v containerd)" --config "$STATE/containerd/config.toml"
	wait_for 60 containerd ctr --address "$CONTAINERD_SOCK" version
	import_images "$root/bin/images/pause.tar" "$root/bin/images/coredns-${COREDNS_VERSION}.tar"

	start kubelet "$ASSETS/kubelet" --config "$STATE/kubelet/config.yaml" \
		--kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet/root" \
		--cert-dir "$STATE/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
	start kube-proxy "$ASSETS/kube-proxy" --config "$STATE/kube-proxy.yaml"
	wait_for 120 "node $NODE_NAME Ready" kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
}

# import_images imports docker-archive or OCI tarballs into containerd's k8s.io namespace,
# where the kubelet looks for images.
import_images() {
	local t
	for t in "$@"; do
		[ -f "$t" ] || die "no such image tarball: $t"
		ctr_ images import --no-unpack=false "$t" >&2
	done
}

# ---------------------------------------------------------------------------- add-ons

addons() {
	sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|g" -e "s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|g" \
		"$root/hack/lib/cluster-addons.yaml" | kubectl_ apply --server-side --force-conflicts -f - >/dev/null
	# The hosts key is left alone on reapply, so that names a test added survive `up`.
	if [ -z "$(kubectl_ -n kube-system get configmap coredns -o go-template='{{if .data.hosts}}x{{end}}')" ]; then
		kubectl_ -n kube-system patch configmap coredns --type merge \
			-p '{"data":{"hosts":"# IP NAME... lines for tests; CoreDNS rereads them.\n"}}' >/dev/null
	fi
	volume_pool
	wait_for 120 CoreDNS kubectl_ -n kube-system rollout status deployment/coredns --timeout=5s
}

# volume_pool keeps VOLUME_POOL hostPath PersistentVolumes of the default StorageClass
# "local". No provisioner is needed, and the directories are world-writable because
# Kubernetes does not apply fsGroup to hostPath volumes and the servers run as uid 65532.
volume_pool() {
	local i name dir manifest=""
	for i in $(seq -w 1 "$VOLUME_POOL"); do
		name=local-pv-$i dir=$STATE/volumes/$name
		mkdir -p "$dir"; chmod 0777 "$dir"
		manifest+="---
apiVersion: v1
kind: PersistentVolume
metadata: {name: $name, labels: {fedforge.dev/local-pool: \"true\"}}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local
  hostPath: {path: $dir, type: Directory}
"
	done
	# Server-side apply of unchanged fields leaves bound volumes alone.
	echo "$manifest" | kubectl_ apply --server-side -f - >/dev/null
	recycle_volumes
}

# recycle_volumes wipes Released volumes of the pool and makes them Available again.
recycle_volumes() {
	local name
	for name in $(kubectl_ get pv -l fedforge.dev/local-pool=true \
		-o jsonpath='{range .items[?(@.status.phase=="Released")]}{.metadata.name}{"\n"}{end}'); do
		find "$STATE/volumes/$name" -mindepth 1 -delete
		kubectl_ patch pv "$name" --type json -p '[{"op":"remove","path":"/spec/claimRef"}]' >/dev/null
		log "recycled $name"
	done
}

# ---------------------------------------------------------------------------- commands

cmd_up() {
	need_root
	local t0=$SECONDS
	preflight
	if foreign_kube_chains; then
		die "KUBE-* iptables chains exist but no component of this cluster runs: another Kubernetes on this host? (a stale one from a crash: run down first)"
	fi
	build_all
	mkdir -p "$STATE"
	pki
	host_network
	write_configs
	start_control_plane
	start_node
	addons
	log "cluster up in $((SECONDS - t0))s; export KUBECONFIG=$ADMIN_KUBECONFIG"
}

# iptables_cleanup removes the KUBE-* chains that the kubelet (KUBE-FIREWALL, canaries) and
# kube-proxy left, and the rules that jump to them, for IPv4 and IPv6. `up` refuses to start
# when such chains exist before it, so they are ours.
iptables_cleanup() {
	local ipt t rule c
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null || continue
		for t in filter nat mangle; do
			{ "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [^ ]+ .*-j KUBE-' | grep -v '^-A KUBE-' || true; } |
				while IFS= read -r rule; do eval "$ipt -t $t -D ${rule#-A }" || true; done
			for c in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
				"$ipt" -t "$t" -F "$c" 2>/dev/null || true
			done
			for c in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
				"$ipt" -t "$t" -X "$c" 2>/dev/null || true
			done
		done
	done
}

# foreign_kube_chains succeeds when KUBE-* iptables chains exist although none of our
# components runs: another Kubernetes on this host, whose rules `down` must not touch.
foreign_kube_chains() {
	alive kubelet || alive kube-proxy && return 1
	iptables-save 2>/dev/null | grep -q '^:KUBE-'
}

cmd_down() {
	need_root
	[ -d "$STATE" ] || [ -d "$RUNDIR" ] || { log "nothing to stop"; return 0; }
	ASSETS=$(k8s_assets 2>/dev/null) || true
	CRICTL=$root/bin/crictl/$CRICTL_VERSION/crictl
	stop kubelet
	# Stop pods through the CRI while containerd still runs, so that the CNI plugins
	# release addresses and veths, and containerd unmounts rootfs and network namespaces.
	if alive containerd && [ -x "$CRICTL" ]; then
		# rmp --force stops each pod (CNI DEL included) before removing it.
		crictl_ rmp --all --force >/dev/null 2>&1 || true
	fi
	stop kube-proxy
	if [ -x "$ASSETS/kube-proxy" ] && [ -f "$STATE/kube-proxy.yaml" ]; then
		"$ASSETS/kube-proxy" --cleanup --config "$STATE/kube-proxy.yaml" >>"$LOGS/kube-proxy.log" 2>&1 || true
	fi
	stop kube-scheduler
	stop kube-controller-manager
	stop kube-apiserver
	stop etcd
	stop containerd
	# Shims of our containerd (they outlive it by design) are ours: their -address is our socket.
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}; pid=${pid%/cmdline}
		[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == containerd-shim* ]] || continue
		[[ "$(tr '\0' ' ' <"$f" 2>/dev/null)" == *"-address $CONTAINERD_SOCK "* ]] || continue
		if kill -KILL "$pid" 2>/dev/null; then log "killed leftover shim $pid"; fi
	done
	iptables_cleanup
	# Mounts the kubelet and containerd left under our directories, deepest first.
	local m
	for m in $(awk -v s="$STATE" -v r="$RUNDIR" '$2 ~ "^"s"/" || $2 ~ "^"r"/" || $2 == r {print $2}' /proc/self/mounts | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE"; log "deleted bridge $BRIDGE"; fi
	while ip rule del iif "$BRIDGE" lookup "$ROUTE_TABLE" 2>/dev/null; do :; done
	ip route flush table "$ROUTE_TABLE" 2>/dev/null || true
	# Container-log symlinks pointing into our state, then the paths `up` created.
	local p
	find /var/log/containers -maxdepth 1 -type l -lname "$STATE/*" -delete 2>/dev/null || true
	if [ -f "$STATE/created-paths" ]; then
		while IFS= read -r p; do
			case $p in
			/var/lib/cni | /var/log/containers) rmdir "$p/results" "$p" 2>/dev/null || true ;;
			# The kubelet's socket there, and containerd's shim sockets, are ours; keep
			# /run/containerd if a containerd of its own uses it now.
			/var/lib/kubelet) rm -rf --one-file-system "$p" ;;
			/run/containerd) [ -e /run/containerd/containerd.sock ] || rm -rf --one-file-system "$p" ;;
			esac
			if [ -e "$p" ]; then log "$p is in use or not empty; left in place"; fi
		done <"$STATE/created-paths"
	fi
	if [ -f "$STATE/sysctl.orig" ]; then
		local kv
		while IFS= read -r kv; do
			echo "${kv#*=}" >"/proc/sys/$(echo "${kv%%=*}" | tr . /)" && log "sysctl restored: $kv"
		done <"$STATE/sysctl.orig"
		rm -f "$STATE/sysctl.orig"
	fi
	if awk -v s="$STATE" -v r="$RUNDIR" '$2 ~ "^"s || $2 ~ "^"r {f=1} END {exit !f}' /proc/self/mounts; then
		die "mounts remain under $STATE or $RUNDIR; not deleting them (see /proc/self/mounts)"
	fi
	rm -rf --one-file-system "$STATE" "$RUNDIR"
	log "down: cluster stopped and its state removed (cached binaries in bin/ kept)"
}

cmd_load_image() {
	need_root
	[ $# -gt 0 ] || die "usage: $0 load-image IMAGE.tar..."
	alive containerd || die "the cluster is not up"
	import_images "$@"
}

# cmd_tag_image gives an imported image a second name (the e2e's "new image tag" rollout),
# replacing an older image of that name.
cmd_tag_image() {
	[ $# -eq 2 ] || die "usage: $0 tag-image REF NEW"
	alive containerd || die "the cluster is not up"
	local src=$1 dst=$2
	# containerd stores short names fully qualified, as the kubelet asks for them.
	[[ "$src" == */* ]] || src="docker.io/library/$src"
	[[ "$dst" == */* ]] || dst="docker.io/library/$dst"
	ctr_ images tag --force "$src" "$dst" >&2
}

cmd_status() {
	local name state
	for name in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy; do
		if alive "$name"; then state="running (pid $(cut -d' ' -f1 "$PIDS/$name"))"; else state="stopped"; fi
		printf '%-24s %s\n' "$name" "$state"
	done
	if alive kube-apiserver; then
		ASSETS=$(k8s_assets)
		kubectl_ get nodes -o wide
		kubectl_ get pods -A -o wide
	fi
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
load-image) shift; cmd_load_image "$@" ;;
tag-image) shift; cmd_tag_image "$@" ;;
status) cmd_status ;;
kubeconfig) echo "$ADMIN_KUBECONFIG" ;;
recycle-volumes) ASSETS=$(k8s_assets); recycle_volumes ;;
*) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 2 ;;
esac
