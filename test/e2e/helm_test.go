//go:build e2e

/*
Copyright 2026 The Fedforge Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// The chart's release: its own name and namespace, so that none of its objects (cluster
// scoped ones included: <release>-manager-role) is one of `make deploy`'s.
const (
	helmRelease    = "fedforge-helm"
	helmNamespace  = "fedforge-helm"
	helmDeployment = helmRelease + "-controller-manager"
	helmChart      = "charts/fedforge"
)

// helm runs the helm that run.sh built (E2E_HELM, else hack/helm.sh builds or reuses it) with
// its state under home, and returns its standard output.
func helm(ctx context.Context, home string, args ...string) (string, error) {
	bin := os.Getenv("E2E_HELM")
	if bin == "" {
		out, err := exec.CommandContext(ctx, filepath.Join(root, "hack", "helm.sh")).Output()
		if err != nil {
			return "", fmt.Errorf("hack/helm.sh: %w", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	fmt.Fprintf(GinkgoWriter, "$ helm %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// scaleKustomizeManager sets the replicas of the manager `make deploy` installed and waits
// until that many pods run (0: none is left), so that only one operator reconciles.
func scaleKustomizeManager(ctx context.Context, replicas int) {
	GinkgoHelper()
	_, err := kubectl(ctx, "", "-n", managerNamespace, "scale", "deployment/"+managerDeployment, fmt.Sprintf("--replicas=%d", replicas))
	Expect(err).NotTo(HaveOccurred())
	Eventually(func(g Gomega) {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: managerDeployment}, dep)).To(Succeed())
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(managerNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
		g.Expect(pods.Items).To(HaveLen(replicas), "manager pods of make deploy")
		if replicas > 0 {
			g.Expect(deploymentAvailable(dep)).To(BeTrue())
		}
	}).WithContext(ctx).Should(Succeed())
}

// leaseHolder is the pod holding the manager's leader election lease in a namespace.
func leaseHolder(ctx context.Context, g Gomega, namespace string) string {
	lease := &coordinationv1.Lease{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "manager.federation.fedforge.dev"}, lease)).To(Succeed())
	g.Expect(lease.Spec.HolderIdentity).NotTo(BeNil())
	return strings.SplitN(*lease.Spec.HolderIdentity, "_", 2)[0]
}

// expectLeaderRunning waits until the manager Deployment's leader is one of its running pods.
func expectLeaderRunning(ctx context.Context, namespace, deployment string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		holder := leaseHolder(ctx, g, namespace)
		pod := &corev1.Pod{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: holder}, pod)).To(Succeed())
		g.Expect(pod.Name).To(HavePrefix(deployment))
		g.Expect(pod.DeletionTimestamp).To(BeNil(), "the lease is held by a pod going away")
		g.Expect(pod.Status.Phase).To(Equal(corev1.PodRunning))
	}).WithContext(ctx).Should(Succeed())
}

// The chart in charts/fedforge, installed, upgraded and uninstalled with helm as a platform
// team would, while the operator of `make deploy` (BeforeSuite) is scaled to zero: both
// would reconcile every Fedforge object otherwise. Serial, so no other spec runs meanwhile.
var _ = Describe("The Helm chart", Ordered, Serial, func() {
	const ns = "e2e-helm"
	var home string // helm's cache and config
	var setImage []string

	BeforeAll(func(ctx SpecContext) {
		home = GinkgoT().TempDir()
		i := strings.LastIndex(image, ":")
		Expect(i).To(BeNumerically(">", strings.LastIndex(image, "/")), "E2E_IMG %q has no tag", image)
		setImage = []string{"--set", "image.repository=" + image[:i], "--set", "image.tag=" + image[i+1:]}

		// Cleanups run last first: helm uninstall, then the operator of make deploy back,
		// then the scenario's namespace (whose finalizers need a running operator).
		createNamespace(ctx, ns)
		By("scaling the manager of make deploy to zero")
		scaleKustomizeManager(ctx, 0)
		DeferCleanup(func(ctx SpecContext) {
			By("scaling the manager of make deploy back to one")
			scaleKustomizeManager(ctx, 1)
			expectLeaderRunning(ctx, managerNamespace, managerDeployment)
		}, NodeTimeout(4*time.Minute))

		// The release namespace, labelled as docs/cluster.md says (Helm does not own it).
		Expect(client.IgnoreAlreadyExists(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: helmNamespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
		}}))).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			out, err := helm(ctx, home, "uninstall", helmRelease, "-n", helmNamespace, "--ignore-not-found", "--wait")
			fmt.Fprint(GinkgoWriter, out)
			Expect(err).NotTo(HaveOccurred())
			_, err = kubectl(ctx, "", "delete", "namespace", helmNamespace, "--ignore-not-found", "--wait=true")
			Expect(err).NotTo(HaveOccurred())
		}, NodeTimeout(4*time.Minute))
	})

	AfterEach(func(ctx SpecContext) {
		if !CurrentSpecReport().Failed() {
			return
		}
		for _, args := range [][]string{
			{"-n", helmNamespace, "get", "all,roles,rolebindings,leases,events", "-o", "wide"},
			{"-n", helmNamespace, "logs", "deployment/" + helmDeployment, "--tail=200"},
		} {
			out, err := kubectl(context.WithoutCancel(ctx), "", args...)
			fmt.Fprintf(GinkgoWriter, "\n### kubectl %s\n%s%v\n", strings.Join(args, " "), out, err)
		}
	})

	It("renders manifests the cluster's API accepts (helm template | kubectl apply --dry-run=server)", func(ctx SpecContext) {
		installServiceMonitorCRD(ctx)
		rendered, err := helm(ctx, home, append([]string{"template", helmRelease, helmChart, "-n", helmNamespace,
			"--include-crds", "--set", "serviceMonitor.enabled=true"}, setImage...)...)
		Expect(err).NotTo(HaveOccurred())
		// Server-side, as make deploy applies: the CRDs exist already, and an apply of equal
		// values under another field manager must pass.
		out, err := kubectl(ctx, rendered, "apply", "--server-side", "--dry-run=server", "--field-manager=helm-e2e", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprint(GinkgoWriter, out)
		// Four CRDs, ServiceAccount, ClusterRole and its binding, Role and its binding,
		// Deployment, Service, ServiceMonitor.
		Expect(strings.Count(out, "(server dry run)")).To(Equal(12), out)
		Expect(out).To(ContainSubstring("deployment.apps/" + helmDeployment))
		Expect(out).To(ContainSubstring("servicemonitor.monitoring.coreos.com/" + helmDeployment + "-metrics"))
		By("creating nothing")
		err = k8s.Get(ctx, client.ObjectKey{Namespace: helmNamespace, Name: helmDeployment}, &appsv1.Deployment{})
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a dry run created the Deployment: %v", err)
	})

	It("installs: the manager becomes ready and holds its own leader election lease", func(ctx SpecContext) {
		out, err := helm(ctx, home, append([]string{"install", helmRelease, helmChart, "-n", helmNamespace, "--wait", "--timeout", "3m"}, setImage...)...)
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprint(GinkgoWriter, out)
		Expect(out).To(ContainSubstring("STATUS: deployed"))

		dep := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: helmNamespace, Name: helmDeployment}, dep)).To(Succeed())
		Expect(deploymentAvailable(dep)).To(BeTrue())
		Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(image))
		Expect(dep.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "Helm"))
		expectLeaderRunning(ctx, helmNamespace, helmDeployment)

		By("binding the release's ClusterRole to the release's ServiceAccount")
		crb := &rbacv1.ClusterRoleBinding{}
		Expect(k8s.Get(ctx, client.ObjectKey{Name: helmRelease + "-manager-rolebinding"}, crb)).To(Succeed())
		Expect(crb.RoleRef.Name).To(Equal(helmRelease + "-manager-role"))
		Expect(crb.Subjects).To(ConsistOf(HaveField("Namespace", helmNamespace)))

		By("serving metrics through the release's Service")
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: helmNamespace, Name: helmDeployment + "-metrics"}, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			status, body, err := get(ctx, serviceURL(svc)+"/metrics", "", "")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(status).To(Equal(http.StatusOK))
			g.Expect(string(body)).To(ContainSubstring("leader_election_master_status"))
		}).WithContext(ctx).Should(Succeed())
	})

	It("reconciles a FederationServer and an actor", func(ctx SpecContext) {
		apply(ctx, ns, instanceManifests("helm.fedforge.test"))
		expectInstanceReady(ctx, ns, "releases-myproject")
	})

	It("upgrades: a changed value rolls the manager out, which still reconciles", func(ctx SpecContext) {
		before := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: helmNamespace, Name: helmDeployment}, before)).To(Succeed())

		out, err := helm(ctx, home, "upgrade", helmRelease, helmChart, "-n", helmNamespace, "--reuse-values",
			"--set", "logLevel=debug", "--set", "resources.requests.cpu=100m", "--wait", "--timeout", "3m")
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprint(GinkgoWriter, out)
		Expect(out).To(ContainSubstring("REVISION: 2"))

		dep := &appsv1.Deployment{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: helmNamespace, Name: helmDeployment}, dep)).To(Succeed())
		Expect(dep.Generation).To(BeNumerically(">", before.Generation))
		c := dep.Spec.Template.Spec.Containers[0]
		Expect(c.Image).To(Equal(image), "--reuse-values keeps the image")
		Expect(c.Args).To(ContainElement("--zap-log-level=debug"))
		Expect(c.Resources.Requests.Cpu().String()).To(Equal("100m"))

		By("running only pods of the new template")
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), dep)).To(Succeed())
			g.Expect(deploymentAvailable(dep)).To(BeTrue())
			g.Expect(dep.Status.Replicas).To(Equal(dep.Status.UpdatedReplicas), "old pods left")
			pods := &corev1.PodList{}
			g.Expect(k8s.List(ctx, pods, client.InNamespace(helmNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels))).To(Succeed())
			g.Expect(pods.Items).To(HaveLen(1))
			g.Expect(pods.Items[0].Spec.Containers[0].Args).To(ContainElement("--zap-log-level=debug"))
			g.Expect(pods.Items[0].Status.Phase).To(Equal(corev1.PodRunning))
		}).WithContext(ctx).Should(Succeed())
		expectLeaderRunning(ctx, helmNamespace, helmDeployment)

		By("reconciling an actor created after the upgrade")
		apply(ctx, ns, `
apiVersion: federation.fedforge.dev/v1alpha1
kind: FederatedActor
metadata:
  name: after-upgrade
spec:
  serverRef:
    name: forge
  type: Person
  preferredUsername: after-upgrade
`)
		expectInstanceReady(ctx, ns, "after-upgrade")
	})

	It("uninstalls: the release's objects go, the CRDs stay", func(ctx SpecContext) {
		By("deleting the Fedforge objects while the manager still runs their finalizers")
		_, err := kubectl(ctx, "", "-n", ns, "delete", "federation", "--all", "--wait=true", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())

		out, err := helm(ctx, home, "uninstall", helmRelease, "-n", helmNamespace, "--wait", "--timeout", "3m")
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprint(GinkgoWriter, out)

		gone := []client.Object{
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: helmNamespace, Name: helmDeployment}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: helmNamespace, Name: helmDeployment + "-metrics"}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: helmNamespace, Name: helmDeployment}},
			&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: helmNamespace, Name: helmRelease + "-leader-election-role"}},
			&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: helmNamespace, Name: helmRelease + "-leader-election-rolebinding"}},
			&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: helmRelease + "-manager-role"}},
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: helmRelease + "-manager-rolebinding"}},
		}
		Eventually(func(g Gomega) {
			for _, o := range gone {
				err := k8s.Get(ctx, client.ObjectKeyFromObject(o), o)
				g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%T %s still there (%v)", o, o.GetName(), err)
			}
			pods := &corev1.PodList{}
			g.Expect(k8s.List(ctx, pods, client.InNamespace(helmNamespace))).To(Succeed())
			g.Expect(pods.Items).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())

		out, err = helm(ctx, home, "list", "-n", helmNamespace, "-q")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(BeEmpty(), "helm list after uninstall")

		By("keeping the CRDs: Helm never deletes what crds/ installed")
		for _, plural := range []string{"federationservers", "federatedactors", "federationpolicies", "subscriptions"} {
			crd := &unstructured.Unstructured{}
			crd.SetAPIVersion("apiextensions.k8s.io/v1")
			crd.SetKind("CustomResourceDefinition")
			Expect(k8s.Get(ctx, client.ObjectKey{Name: plural + "." + fedv1.GroupVersion.Group}, crd)).To(Succeed())
			Expect(crd.GetDeletionTimestamp()).To(BeNil())
		}
		servers := &fedv1.FederationServerList{}
		Expect(k8s.List(ctx, servers, client.InNamespace(ns))).To(Succeed())
		Expect(servers.Items).To(BeEmpty())
	})
})

// prometheusOperatorVersion is the release whose ServiceMonitor CRD the dry run validates the
// chart's optional ServiceMonitor against (the local cluster has no Prometheus Operator).
const prometheusOperatorVersion = "v0.85.0"

// installServiceMonitorCRD creates the ServiceMonitor CRD from prometheus-operator's module
// (fetched from the Go module proxy into the module cache) unless the cluster has it, and
// removes it again after the spec.
func installServiceMonitorCRD(ctx context.Context) {
	GinkgoHelper()
	const name = "servicemonitors.monitoring.coreos.com"
	if _, err := kubectl(ctx, "", "get", "crd", name); err == nil {
		return
	}
	mod := "github.com/prometheus-operator/prometheus-operator@" + prometheusOperatorVersion
	download := exec.CommandContext(ctx, "go", "mod", "download", "-json", mod)
	download.Dir = GinkgoT().TempDir() // outside the repository: go.mod and go.sum stay as they are
	out, err := download.Output()
	Expect(err).NotTo(HaveOccurred(), "go mod download %s", mod)
	var info struct{ Dir string }
	Expect(json.Unmarshal(out, &info)).To(Succeed())
	crd, err := os.ReadFile(filepath.Join(info.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml"))
	Expect(err).NotTo(HaveOccurred())
	_, err = kubectl(ctx, string(crd), "apply", "--server-side", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		_, err := kubectl(ctx, "", "delete", "crd", name, "--ignore-not-found")
		Expect(err).NotTo(HaveOccurred())
	})
	// kubectl wait fails at once ("accessor error: <nil>") when the CRD has no conditions
	// yet, right after it was created: wait for Established with our own poll instead.
	Eventually(func(g Gomega) {
		out, err := kubectl(ctx, "", "get", "crd/"+name, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(strings.TrimSpace(out)).To(Equal("True"), "CRD %s not Established yet", name)
	}).WithContext(ctx).WithTimeout(60 * time.Second).Should(Succeed())
}

// expectInstanceReady waits until the FederationServer forge in namespace has an available
// server Deployment and it and the actor report Ready.
func expectInstanceReady(ctx context.Context, namespace, actor string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		deps := &appsv1.DeploymentList{}
		g.Expect(k8s.List(ctx, deps, client.InNamespace(namespace), client.MatchingLabels{fedv1.LabelServer: "forge"})).To(Succeed())
		g.Expect(deps.Items).To(HaveLen(1))
		g.Expect(deploymentAvailable(&deps.Items[0])).To(BeTrue(), "server Deployment not available yet")
		srv := &fedv1.FederationServer{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "forge"}, srv)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(srv.Status.Conditions, fedv1.ConditionReady)).To(BeTrue(), "server conditions: %v", srv.Status.Conditions)
		a := &fedv1.FederatedActor{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: namespace, Name: actor}, a)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(a.Status.Conditions, fedv1.ConditionReady)).To(BeTrue(), "actor conditions: %v", a.Status.Conditions)
	}).WithContext(ctx).Should(Succeed())
}
