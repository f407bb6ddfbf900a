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
	"fmt"
	"net/http"
	"net/url"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// instanceManifests is one instance as a platform team would write it: a FederationServer
// (plain http: the host name only exists inside this cluster) and one actor.
func instanceManifests(host string) string {
	return fmt.Sprintf(`
apiVersion: federation.fedforge.dev/v1alpha1
kind: FederationServer
metadata:
  name: forge
spec:
  host: %[1]s
  scheme: http
  allowedPrivateCIDRs: [%[2]s, %[3]s]
---
apiVersion: federation.fedforge.dev/v1alpha1
kind: FederatedActor
metadata:
  name: releases-myproject
spec:
  serverRef:
    name: forge
  type: Application
  preferredUsername: releases-myproject
  name: myproject releases
  summary: Every release of myproject, as it is published.
  url: https://forge.example.org/group/myproject
`, host, podCIDR, serviceCIDR)
}

var _ = Describe("One FederationServer in a cluster", Ordered, func() {
	const (
		ns   = "e2e-one"
		host = "one.fedforge.test"
		user = "releases-myproject"
	)
	var base string // http://<service cluster IP>:<port>

	BeforeAll(func(ctx SpecContext) {
		createNamespace(ctx, ns)
		apply(ctx, ns, instanceManifests(host))
	})

	It("runs the server Deployment the operator made until it is available", func(ctx SpecContext) {
		Eventually(func(g Gomega) {
			deps := &appsv1.DeploymentList{}
			g.Expect(k8s.List(ctx, deps, client.InNamespace(ns), client.MatchingLabels{fedv1.LabelServer: "forge"})).To(Succeed())
			g.Expect(deps.Items).To(HaveLen(1))
			dep := &deps.Items[0]
			g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(image), "server image defaults to the operator's")
			g.Expect(deploymentAvailable(dep)).To(BeTrue(), "server Deployment not available yet")
		}).WithContext(ctx).Should(Succeed())

		By("reporting Ready on the FederationServer and the actor")
		Eventually(func(g Gomega) {
			srv := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forge"}, srv)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(srv.Status.Conditions, fedv1.ConditionReady)).To(BeTrue(), "server conditions: %v", srv.Status.Conditions)
			actor := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: user}, actor)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(actor.Status.Conditions, fedv1.ConditionReady)).To(BeTrue(), "actor conditions: %v", actor.Status.Conditions)
		}).WithContext(ctx).Should(Succeed())

		By("keeping the actor's keys in a Secret it owns")
		Eventually(func(g Gomega) {
			secrets := &corev1.SecretList{}
			g.Expect(k8s.List(ctx, secrets, client.InNamespace(ns), client.MatchingLabels{fedv1.LabelActor: user})).To(Succeed())
			g.Expect(secrets.Items).To(HaveLen(1))
			g.Expect(secrets.Items[0].OwnerReferences).To(ContainElement(HaveField("Name", user)))
		}).WithContext(ctx).Should(Succeed())

		Eventually(func(g Gomega) { base = serviceURL(serverService(ctx, g, ns, "forge")) }).WithContext(ctx).Should(Succeed())
	})

	It("runs the manager and the server on a read-only root file system, without restarts", func(ctx SpecContext) {
		// The image's binary is built with -tags nolocal: nothing in it writes to the root
		// file system (controller-runtime's envtest used to, at package init).
		for _, sel := range []struct {
			ns     string
			labels client.MatchingLabels
		}{
			{managerNamespace, client.MatchingLabels{fedv1.LabelComponent: "manager", "app.kubernetes.io/name": "fedforge"}},
			{ns, client.MatchingLabels{fedv1.LabelServer: "forge", fedv1.LabelComponent: "server"}},
		} {
			pods := &corev1.PodList{}
			Expect(k8s.List(ctx, pods, client.InNamespace(sel.ns), sel.labels)).To(Succeed())
			Expect(pods.Items).NotTo(BeEmpty(), "pods %v in %s", sel.labels, sel.ns)
			for _, pod := range pods.Items {
				for _, c := range pod.Spec.Containers {
					Expect(c.SecurityContext).NotTo(BeNil(), "%s/%s", pod.Name, c.Name)
					Expect(c.SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()), "%s/%s", pod.Name, c.Name)
				}
				Expect(pod.Status.Phase).To(Equal(corev1.PodRunning), pod.Name)
				for _, cs := range pod.Status.ContainerStatuses {
					Expect(cs.Ready).To(BeTrue(), "%s/%s", pod.Name, cs.Name)
					Expect(cs.RestartCount).To(BeZero(), "%s/%s restarted", pod.Name, cs.Name)
				}
			}
		}
	})

	It("answers WebFinger for the actor through the Service", func(ctx SpecContext) {
		resource := "acct:" + user + "@" + host
		Eventually(func(g Gomega) {
			jrd := getJSON(ctx, g, base+"/.well-known/webfinger?resource="+url.QueryEscape(resource), host, "")
			g.Expect(jrd).To(HaveKeyWithValue("subject", resource))
			g.Expect(jrd["links"]).To(ContainElement(And(
				HaveKeyWithValue("rel", "self"),
				HaveKeyWithValue("type", "application/activity+json"),
				HaveKeyWithValue("href", "http://"+host+"/actors/"+user),
			)))
		}).WithContext(ctx).Should(Succeed())
	})

	It("serves the actor document to ActivityPub clients", func(ctx SpecContext) {
		id := "http://" + host + "/actors/" + user
		Eventually(func(g Gomega) {
			actor := getJSON(ctx, g, base+"/actors/"+user, host, "application/activity+json")
			g.Expect(actor).To(HaveKeyWithValue("id", id))
			g.Expect(actor).To(HaveKeyWithValue("type", "Application"))
			g.Expect(actor).To(HaveKeyWithValue("preferredUsername", user))
			g.Expect(actor).To(HaveKeyWithValue("inbox", HavePrefix("http://"+host+"/")))
			g.Expect(actor).To(HaveKeyWithValue("publicKey", HaveKeyWithValue("publicKeyPem", ContainSubstring("BEGIN PUBLIC KEY"))))
		}).WithContext(ctx).Should(Succeed())
	})

	It("knows no actor under a host it does not serve", func(ctx SpecContext) {
		status, body, err := get(ctx, base+"/.well-known/webfinger?resource="+url.QueryEscape("acct:"+user+"@other.example"), host, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(status).To(Equal(http.StatusNotFound), "%s", body)
	})

	It("exposes the manager's metrics through its Service", func(ctx SpecContext) {
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: managerNamespace, Name: managerDeployment + "-metrics"}, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			status, body, err := get(ctx, serviceURL(svc)+"/metrics", "", "")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(status).To(Equal(http.StatusOK))
			g.Expect(string(body)).To(ContainSubstring(`controller_runtime_reconcile_total{controller="federationserver"`))
			g.Expect(strings.Contains(string(body), "leader_election_master_status")).To(BeTrue())
		}).WithContext(ctx).Should(Succeed())
	})
})
