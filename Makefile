# Fedforge Makefile (kubebuilder v4 layout).
# The two commands a newcomer needs: `make run` and `make test`.

IMG ?= fedforge:dev
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

LOCALBIN ?= $(shell pwd)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
KUSTOMIZE_VERSION ?= v5.8.1
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
KUSTOMIZE ?= $(LOCALBIN)/kustomize-$(KUSTOMIZE_VERSION)
HELM_VERSION ?= v3.22.0
HELM ?= $(LOCALBIN)/helm-$(HELM_VERSION)
GINKGO_VERSION ?= $(shell awk '$$1=="github.com/onsi/ginkgo/v2"{print $$2}' go.mod)

GOFLAGS_BUILD = -trimpath -ldflags "-s -w -X github.com/fedforge/fedforge/internal/version.Version=$(VERSION)"

SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Display this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the API types and kubebuilder markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: controller-gen ## Generate DeepCopy methods.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify-generated
verify-generated: controller-gen ## Fail when CRDs, RBAC or deepcopy are stale.
	hack/verify-generated.sh $(CONTROLLER_GEN)

.PHONY: helm-chart
helm-chart: manifests ## Copy the generated CRDs and the manager's RBAC rules into charts/fedforge.
	rm -f charts/fedforge/crds/*.yaml
	cp config/crd/bases/*.yaml charts/fedforge/crds/
	cp config/rbac/role.yaml charts/fedforge/files/manager-role.yaml

.PHONY: check-helm
check-helm: kustomize helm ## Fail when charts/fedforge is stale or disagrees with config/default; helm lint.
	hack/check-helm.sh $(KUSTOMIZE) $(HELM)

.PHONY: fmt
fmt: ## Run gofmt.
	gofmt -w $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: envtest
envtest: ## Build (or reuse) kube-apiserver and etcd for envtest under bin/k8s.
	@hack/envtest-binaries.sh >/dev/null

.PHONY: test
test: verify-generated check-helm vet envtest ## Everything a contributor must pass: unit tests, store on SQLite and PostgreSQL, envtest suites (race detector).
	hack/test.sh

##@ Build

.PHONY: build
build: ## Build the fedforge binary into bin/fedforge.
	CGO_ENABLED=0 go build $(GOFLAGS_BUILD) -o bin/fedforge ./cmd/manager

.PHONY: run
run: build envtest ## Run everything locally: embedded etcd + kube-apiserver, CRDs, manager, server on 127.0.0.1:8080, samples.
	bin/fedforge local --assets "$$(hack/envtest-binaries.sh)" --data-dir .local/run --crds config/crd/bases --samples config/samples

##@ Deployment

.PHONY: install
install: manifests kustomize ## Install CRDs into the cluster of the current kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests kustomize ## Remove the CRDs.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests kustomize ## Deploy the operator with IMG into the cluster of the current kubeconfig.
	@# The image is set in a scratch copy of config/, so that the tree stays clean.
	rm -rf $(LOCALBIN)/.deploy && mkdir -p $(LOCALBIN)/.deploy && cp -r config $(LOCALBIN)/.deploy/
	cd $(LOCALBIN)/.deploy/config/manager && $(KUSTOMIZE) edit set image controller=$(IMG)
	$(KUSTOMIZE) build $(LOCALBIN)/.deploy/config/default | $(KUBECTL) apply --server-side --force-conflicts -f -

.PHONY: undeploy
undeploy: kustomize ## Remove the operator (and its CRDs, with every object of their kinds).
	@# Fedforge objects first, while the manager still runs their finalizers; otherwise
	@# the CRDs would wait forever for objects nobody finalizes.
	$(KUBECTL) delete federation --all --all-namespaces --ignore-not-found --timeout=3m 2>/dev/null || true
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found --wait=true -f -

##@ Tools

.PHONY: controller-gen
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/controller-gen $@
	ln -sf $(notdir $@) $(LOCALBIN)/controller-gen

.PHONY: kustomize
kustomize: $(KUSTOMIZE)
$(KUSTOMIZE):
	@mkdir -p $(LOCALBIN)
	GOBIN=$(LOCALBIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
	mv $(LOCALBIN)/kustomize $@
	ln -sf $(notdir $@) $(LOCALBIN)/kustomize

.PHONY: helm
helm: ## Build (or reuse) helm HELM_VERSION from the Go module proxy into bin/helm-<version>.
	@HELM_VERSION=$(HELM_VERSION) hack/helm.sh >/dev/null

##@ Image and local cluster (docs/cluster.md)

# The kubectl that hack/envtest-binaries.sh builds (same version as the cluster) when it
# exists, else kubectl from PATH.
K8S_KUBECTL = $(LOCALBIN)/k8s/v1$(patsubst v0%,%,$(shell awk '$$1=="k8s.io/api"{print $$2; exit}' go.mod))-linux-amd64/kubectl
KUBECTL ?= $(if $(wildcard $(K8S_KUBECTL)),$(K8S_KUBECTL),kubectl)
IMAGE_TAR ?= $(LOCALBIN)/fedforge-image.tar
# Every timestamp in the image; the last commit's time keeps it reproducible.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
CLUSTER ?= hack/local-cluster.sh

# The image's binary: -tags nolocal leaves `fedforge local` (and controller-runtime's envtest,
# whose package init writes under /tmp) out, so it runs on a read-only root file system.
# A separate output, so that `make build` and `make run` keep the local command.
IMAGE_BIN ?= $(LOCALBIN)/fedforge-image-bin

.PHONY: image-bin
image-bin: ## Build the image's binary IMAGE_BIN (-tags nolocal: no `fedforge local`).
	CGO_ENABLED=0 go build -tags nolocal $(GOFLAGS_BUILD) -o $(IMAGE_BIN) ./cmd/manager

.PHONY: image
image: image-bin ## Build the image tarball IMAGE_TAR (tag IMG) without a Docker engine: static fedforge and Debian's git, uid 65532, reproducible.
	cd hack/image && CGO_ENABLED=0 go build -trimpath -o $(LOCALBIN)/image .
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(LOCALBIN)/image -o $(IMAGE_TAR) -tag $(IMG) \
		-entrypoint /fedforge -cmd manager -user 65532:65532 -dir /tmp:1777 \
		-file $(IMAGE_BIN):/fedforge:0755 \
		$$(hack/image-git.sh) \
		-file /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:0644 \
		-label org.opencontainers.image.title=fedforge \
		-label org.opencontainers.image.version=$(VERSION) \
		-label org.opencontainers.image.source=https://github.com/fedforge/fedforge

.PHONY: cluster-up
cluster-up: ## Start (or reuse) the single-node cluster of hack/local-cluster.sh; needs root.
	$(CLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove its state (cached binaries stay in bin/).
	$(CLUSTER) down

.PHONY: load-image
load-image: image ## Build the image and import it into the local cluster's containerd.
	$(CLUSTER) load-image $(IMAGE_TAR)

.PHONY: test-e2e
test-e2e: ## End to end on the local cluster: up (or reuse), image, deploy, scenarios, tear down.
	test/e2e/run.sh
