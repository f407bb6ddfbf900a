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

// Package e2e runs Fedforge as a platform team would: installed with `make deploy` into a
// real cluster (hack/local-cluster.sh), with server Deployments, Services and Secrets made
// by the operator. Run it with `make test-e2e`, which brings the cluster up, builds and
// imports the image and sets E2E_IMG; see README.md in this directory.
package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

const (
	// managerNamespace and managerDeployment are what config/default names them.
	managerNamespace  = "fedforge-system"
	managerDeployment = "fedforge-controller-manager"
)

var (
	// k8s reads the state of the world; specs change it with kubectl, as a user would.
	k8s client.Client
	// root is the repository, where `make deploy` runs.
	root string
	// image is the operator image under test, already imported into the node.
	image string
	// imageNext is the same image under a second tag (E2E_IMG_NEXT), also imported: the
	// "new image tag" of the rollout scenario (postgres_test.go).
	imageNext string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(time.Second)
	RunSpecs(t, "Fedforge end to end")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	root, err = filepath.Abs(filepath.Join("..", ".."))
	Expect(err).NotTo(HaveOccurred())
	image = os.Getenv("E2E_IMG")
	Expect(image).NotTo(BeEmpty(), "E2E_IMG is unset: run the suite with `make test-e2e`")
	imageNext = os.Getenv("E2E_IMG_NEXT")

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(fedv1.AddToScheme(scheme)).To(Succeed())
	cfg, err := config.GetConfig()
	Expect(err).NotTo(HaveOccurred(), "no kubeconfig: set KUBECONFIG (make test-e2e does)")
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("deploying the operator with make deploy IMG=" + image)
	run(ctx, root, "make", "--no-print-directory", "deploy", "IMG="+image, "KUBECTL="+kubectlPath())

	By("waiting for the manager Deployment to become available")
	Eventually(func(g Gomega) {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: managerDeployment}, dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(image))
		g.Expect(deploymentAvailable(dep)).To(BeTrue(), "manager Deployment not available yet")
	}).WithContext(ctx).Should(Succeed())

	By("waiting for the manager to hold the leader election lease")
	Eventually(func(g Gomega) {
		leases := &coordinationv1.LeaseList{}
		g.Expect(k8s.List(ctx, leases, client.InNamespace(managerNamespace))).To(Succeed())
		g.Expect(leases.Items).NotTo(BeEmpty())
		g.Expect(leases.Items[0].Spec.HolderIdentity).NotTo(BeNil())
		g.Expect(*leases.Items[0].Spec.HolderIdentity).To(HavePrefix(managerDeployment))
	}).WithContext(ctx).Should(Succeed())
}, NodeTimeout(5*time.Minute))

var _ = AfterSuite(func(ctx SpecContext) {
	if os.Getenv("E2E_KEEP_DEPLOY") == "1" || k8s == nil {
		return
	}
	By("removing the operator with make undeploy")
	run(ctx, root, "make", "--no-print-directory", "undeploy", "KUBECTL="+kubectlPath())
}, NodeTimeout(5*time.Minute))

// ReportAfterEach prints what a person would look at first when a spec fails: objects,
// events and logs of the operator and of the servers.
var _ = ReportAfterEach(func(ctx SpecContext, r SpecReport) {
	if !r.Failed() {
		return
	}
	dumpDiagnostics(ctx)
})
