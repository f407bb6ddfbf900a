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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fedv1 "github.com/fedforge/fedforge/api/v1alpha1"
)

// instance is one FederationServer named "forge" in its own namespace. Its host is the
// DNS name of the Service the operator makes for it, so pods resolve it through the
// cluster's CoreDNS and reach it on port 80 (scheme http: no TLS inside this cluster).
// The test process, outside the cluster, cannot resolve that name: it talks to the
// Service's cluster IP with the instance's Host header.
type instance struct {
	ns string
}

const serverName = "forge"

func (i instance) host() string               { return serverName + "-server." + i.ns + ".svc.cluster.local" }
func (i instance) base() string               { return "http://" + i.host() }
func (i instance) actorID(user string) string { return i.base() + "/actors/" + user }
func (i instance) acct(user string) string    { return "acct:" + user + "@" + i.host() }

// url is the base URL the test process uses: the Service's cluster IP.
func (i instance) url(ctx context.Context, g Gomega) string {
	return serviceURL(serverService(ctx, g, i.ns, serverName))
}

// serverManifest is the instance's FederationServer. Peers in this cluster have pod and
// Service addresses, which a server refuses unless they are listed (SSRF protection):
// cidrs, by default the pod and Service ranges.
func (i instance) serverManifest(cidrs ...string) string {
	if len(cidrs) == 0 {
		cidrs = []string{podCIDR, serviceCIDR}
	}
	return fmt.Sprintf(`
apiVersion: federation.fedforge.dev/v1alpha1
kind: FederationServer
metadata:
  name: %s
spec:
  host: %s
  scheme: http
  allowedPrivateCIDRs: [%s]
`, serverName, i.host(), strings.Join(cidrs, ", "))
}

// actorManifest is a FederatedActor of the instance; extra is more spec, indented.
func actorManifest(name, typ, extra string) string {
	return fmt.Sprintf(`
apiVersion: federation.fedforge.dev/v1alpha1
kind: FederatedActor
metadata:
  name: %[1]s
spec:
  serverRef:
    name: %[2]s
  type: %[3]s
  preferredUsername: %[1]s
%[4]s`, name, serverName, typ, extra)
}

// releasesActorManifest is an Application actor with a GitLab webhook source whose token
// is in the Secret gitlab-webhook.
func releasesActorManifest(name string) string {
	return actorManifest(name, "Application", `  name: myproject releases
  summary: Every release of myproject, as it is published.
  sources:
  - name: gitlab
    type: GitLab
    secretRef: {name: gitlab-webhook, key: token}
`)
}

// denylistManifest is a FederationPolicy of the instance's server refusing hosts.
func denylistManifest(name string, hosts ...string) string {
	return fmt.Sprintf(`
apiVersion: federation.fedforge.dev/v1alpha1
kind: FederationPolicy
metadata:
  name: %s
spec:
  targetRef: {name: %s}
  mode: Denylist
  hosts: [%s]
`, name, serverName, strings.Join(hosts, ", "))
}

func followManifest(name, actor, remote string) string {
	return fmt.Sprintf(`
apiVersion: federation.fedforge.dev/v1alpha1
kind: Subscription
metadata:
  name: %s
spec:
  direction: Outbound
  actorRef:
    name: %s
  remoteActor: %s
`, name, actor, remote)
}

func secretManifest(name, key, value string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata:
  name: %s
stringData:
  %s: %s
`, name, key, value)
}

// waitServerReady waits until the server Deployment runs the operator's image, has rolled
// out the current spec, and the FederationServer reports Ready for its generation; check
// may add conditions on the Deployment (its arguments).
func waitServerReady(ctx context.Context, i instance, check func(g Gomega, dep *appsv1.Deployment)) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		srv := &fedv1.FederationServer{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: i.ns, Name: serverName}, srv)).To(Succeed())
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: i.ns, Name: serverName + "-server"}, dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(HaveSuffix(image))
		if check != nil {
			check(g, dep)
		}
		g.Expect(deploymentAvailable(dep)).To(BeTrue(), "server Deployment %s not available yet", i.ns)
		g.Expect(dep.Status.Replicas).To(Equal(dep.Status.UpdatedReplicas), "old pods of %s still there", i.ns)
		g.Expect(srv.Status.ObservedGeneration).To(Equal(srv.Generation))
		g.Expect(meta.IsStatusConditionTrue(srv.Status.Conditions, fedv1.ConditionReady)).To(BeTrue(), "server conditions: %v", srv.Status.Conditions)
	}).WithContext(ctx).Should(Succeed())
}

func waitActorReady(ctx context.Context, ns, name string) *fedv1.FederatedActor {
	GinkgoHelper()
	actor := &fedv1.FederatedActor{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, actor)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(actor.Status.Conditions, fedv1.ConditionReady)).To(BeTrue(), "actor %s/%s conditions: %v", ns, name, actor.Status.Conditions)
	}).WithContext(ctx).Should(Succeed())
	return actor
}

// waitPhase waits until a Subscription reaches phase and returns it.
func waitPhase(ctx context.Context, ns, name string, phase fedv1.SubscriptionPhase) *fedv1.Subscription {
	GinkgoHelper()
	sub := &fedv1.Subscription{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sub)).To(Succeed())
		g.Expect(sub.Status.Phase).To(Equal(phase), "Subscription %s/%s: conditions %v", ns, name, sub.Status.Conditions)
	}).WithContext(ctx).Should(Succeed())
	return sub
}

// inbound lists the Inbound Subscriptions of a local actor from one remote actor, which
// the server creates when a Follow arrives.
func inbound(ctx context.Context, g Gomega, ns, actor, remoteID string) []fedv1.Subscription {
	subs := &fedv1.SubscriptionList{}
	g.Expect(k8s.List(ctx, subs, client.InNamespace(ns))).To(Succeed())
	var out []fedv1.Subscription
	for _, s := range subs.Items {
		if s.Spec.Direction == fedv1.DirectionInbound && s.Spec.ActorRef.Name == actor && s.Spec.RemoteActor == remoteID {
			out = append(out, s)
		}
	}
	return out
}

// acceptedSubscriptions counts the Accepted Subscriptions of a local actor in direction
// (to remoteID only, when it is not empty).
func acceptedSubscriptions(ctx context.Context, g Gomega, ns, actor string, dir fedv1.Direction, remoteID string) int {
	subs := &fedv1.SubscriptionList{}
	g.Expect(k8s.List(ctx, subs, client.InNamespace(ns))).To(Succeed())
	n := 0
	for _, s := range subs.Items {
		if s.Spec.Direction == dir && s.Spec.ActorRef.Name == actor && s.Status.Phase == fedv1.PhaseAccepted &&
			(remoteID == "" || s.Status.RemoteActorID == remoteID || s.Spec.RemoteActor == remoteID) {
			n++
		}
	}
	return n
}

func followersOf(ctx context.Context, g Gomega, ns, actor string) int32 {
	a := &fedv1.FederatedActor{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: actor}, a)).To(Succeed())
	g.Expect(a.Status.Followers).NotTo(BeNil(), "status.followers of %s/%s", ns, actor)
	return *a.Status.Followers
}

// totalItems reads an ActivityPub collection's totalItems through the instance's Service.
func totalItems(ctx context.Context, g Gomega, i instance, path string) float64 {
	doc := getJSON(ctx, g, i.url(ctx, g)+path, i.host(), "application/activity+json")
	g.Expect(doc).To(HaveKey("totalItems"), "%s: %v", path, doc)
	n, _ := doc["totalItems"].(float64)
	return n
}

// gitlabRelease is the real GitLab release payload kept in internal/forge/testdata, for the tag
// tag (v1.1 is the payload as captured); it returns the body and the release page URL
// the published Note links to.
func gitlabRelease(tag string) ([]byte, string) {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join(root, "internal", "forge", "testdata", "gitlab", "release.json"))
	Expect(err).NotTo(HaveOccurred())
	body := strings.ReplaceAll(string(raw), "v1.1", tag)
	var p struct {
		URL string `json:"url"`
	}
	Expect(json.Unmarshal([]byte(body), &p)).To(Succeed())
	Expect(p.URL).To(HaveSuffix("/releases/" + tag))
	return []byte(body), p.URL
}

// postGitLabHook posts a GitLab webhook to an actor's source, as GitLab does.
func postGitLabHook(ctx context.Context, g Gomega, i instance, user, source, token string, body []byte) (int, string) {
	status, resp, err := request(ctx, http.MethodPost, i.url(ctx, g)+"/hooks/"+user+"/"+source, i.host(), map[string]string{
		"Content-Type": "application/json", "X-Gitlab-Event": "Release Hook", "X-Gitlab-Token": token,
	}, body)
	g.Expect(err).NotTo(HaveOccurred())
	return status, string(resp)
}

// inboxItems reads what a local actor received, as its owner does: GET its inbox with the
// bearer token of Secret <actor>-outbox-token.
func inboxItems(ctx context.Context, g Gomega, i instance, user, token string) []map[string]any {
	headers := map[string]string{"Accept": "application/activity+json"}
	if token != "" {
		headers["Authorization"] = "Bearer " + token
	}
	status, body, err := request(ctx, http.MethodGet, i.url(ctx, g)+"/actors/"+user+"/inbox", i.host(), headers, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusOK), "inbox of %s: %s", user, body)
	var page struct {
		OrderedItems []map[string]any `json:"orderedItems"`
	}
	g.Expect(json.Unmarshal(body, &page)).To(Succeed(), "%s", body)
	return page.OrderedItems
}

// receivedCreate waits until a local actor's inbox holds a Create by actorID that
// mentions link (the release page), and returns it.
func receivedCreate(ctx context.Context, i instance, user, token, actorID, link string, timeout time.Duration) map[string]any {
	GinkgoHelper()
	var found map[string]any
	Eventually(func(g Gomega) {
		items := inboxItems(ctx, g, i, user, token)
		for _, it := range items {
			raw, _ := json.Marshal(it)
			if it["type"] == "Create" && it["actor"] == actorID && strings.Contains(string(raw), link) {
				found = it
				return
			}
		}
		g.Expect(found).NotTo(BeNil(), "no Create by %s mentioning %s among %d received activities", actorID, link, len(items))
	}).WithContext(ctx).WithTimeout(timeout).Should(Succeed())
	return found
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

var deliveredRe = regexp.MustCompile(`"delivered":\s*(\d+)`)

// The federation scenarios of the e2e issue, in order, on two instances in namespaces
// e2e-alpha and e2e-beta. Later scenarios build on the follows of the first; a failure
// does not stop the others (ContinueOnFailure), so one product bug hides no other.
var _ = Describe("Federation between two instances", Ordered, ContinueOnFailure, func() {
	var (
		alpha = instance{ns: "e2e-alpha"}
		beta  = instance{ns: "e2e-beta"}
	)
	const (
		releases     = "releases-myproject" // alpha: a project's releases, fed by a GitLab webhook
		watcher      = "watcher"            // beta: someone following them
		gitlabToken  = "e2e-gitlab-token"
		watcherToken = "e2e-watcher-outbox-token"
	)

	BeforeAll(func(ctx SpecContext) {
		createNamespace(ctx, alpha.ns)
		createNamespace(ctx, beta.ns)
		apply(ctx, alpha.ns, alpha.serverManifest()+"---"+
			secretManifest("gitlab-webhook", "token", gitlabToken)+"---"+
			releasesActorManifest(releases))
		apply(ctx, beta.ns, beta.serverManifest()+"---"+
			secretManifest(watcher+"-outbox-token", "token", watcherToken)+"---"+
			actorManifest(watcher, "Person", ""))
		waitServerReady(ctx, alpha, nil)
		waitServerReady(ctx, beta, nil)
		waitActorReady(ctx, alpha.ns, releases)
		waitActorReady(ctx, beta.ns, watcher)
	}, NodeTimeout(5*time.Minute))

	It("follows both ways: Outbound Accepted on one side, Inbound on the other, followers counts agree", func(ctx SpecContext) {
		By("beta's watcher following alpha's actor by its handle, alpha's actor following back by URI")
		apply(ctx, beta.ns, followManifest("watch-releases", watcher, alpha.acct(releases)))
		apply(ctx, alpha.ns, followManifest("releases-follows-watcher", releases, beta.actorID(watcher)))

		out := waitPhase(ctx, beta.ns, "watch-releases", fedv1.PhaseAccepted)
		Expect(out.Status.RemoteActorID).To(Equal(alpha.actorID(releases)), "resolved through WebFinger inside the cluster")
		Expect(out.Status.RemoteHost).To(Equal(alpha.host()))
		Expect(out.Status.RemoteInbox).To(Equal(alpha.actorID(releases) + "/inbox"))
		Expect(out.Status.FollowActivityID).NotTo(BeEmpty())
		back := waitPhase(ctx, alpha.ns, "releases-follows-watcher", fedv1.PhaseAccepted)
		Expect(back.Status.RemoteActorID).To(Equal(beta.actorID(watcher)))

		By("the followee's server having made an Accepted Inbound Subscription for each Follow")
		Eventually(func(g Gomega) {
			in := inbound(ctx, g, alpha.ns, releases, beta.actorID(watcher))
			g.Expect(in).To(HaveLen(1))
			g.Expect(in[0].Name).To(HavePrefix(releases + "-in-"))
			g.Expect(in[0].Status.Phase).To(Equal(fedv1.PhaseAccepted))
			g.Expect(in[0].Status.FollowActivityID).To(Equal(out.Status.FollowActivityID), "the Inbound records the Follow beta sent")
			in = inbound(ctx, g, beta.ns, watcher, alpha.actorID(releases))
			g.Expect(in).To(HaveLen(1))
			g.Expect(in[0].Status.Phase).To(Equal(fedv1.PhaseAccepted))
			g.Expect(in[0].Status.FollowActivityID).To(Equal(back.Status.FollowActivityID))
		}).WithContext(ctx).Should(Succeed())

		By("the followers counts agreeing: FederatedActor status, Subscriptions of both sides, collections")
		Eventually(func(g Gomega) {
			for _, side := range []struct {
				followee, follower   instance
				actor, followerActor string
			}{{alpha, beta, releases, watcher}, {beta, alpha, watcher, releases}} {
				followers := followersOf(ctx, g, side.followee.ns, side.actor)
				g.Expect(followers).To(BeEquivalentTo(1), "status.followers of %s/%s", side.followee.ns, side.actor)
				g.Expect(acceptedSubscriptions(ctx, g, side.followee.ns, side.actor, fedv1.DirectionInbound, "")).To(BeEquivalentTo(followers))
				g.Expect(acceptedSubscriptions(ctx, g, side.follower.ns, side.followerActor, fedv1.DirectionOutbound, side.followee.actorID(side.actor))).To(BeEquivalentTo(followers))
				g.Expect(totalItems(ctx, g, side.followee, "/actors/"+side.actor+"/followers")).To(BeEquivalentTo(followers))
				g.Expect(totalItems(ctx, g, side.follower, "/actors/"+side.followerActor+"/following")).To(BeEquivalentTo(followers))
			}
		}).WithContext(ctx).Should(Succeed())

		By("the servers' logs holding no RBAC refusal (their Role covers what they do, leader election's Events included)")
		for _, i := range []instance{alpha, beta} {
			logs, err := kubectl(ctx, "", "-n", i.ns, "logs", "-l", fedv1.LabelComponent+"=server", "--tail=-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(logs).NotTo(ContainSubstring("is forbidden"), "logs of %s's server", i.ns)
		}
	})

	It("carries a GitLab release webhook to the other instance through a delivery Job that completes, into its inbox", func(ctx SpecContext) {
		By("leaving every delivery of alpha to delivery Jobs, from the first due one")
		_, err := kubectl(ctx, "", "-n", alpha.ns, "patch", "federationserver", serverName, "--type=merge",
			"-p", `{"spec":{"delivery":{"inProcess":false,"jobThreshold":1}}}`)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			By("giving alpha its in-process delivery back")
			_, err := kubectl(ctx, "", "-n", alpha.ns, "patch", "federationserver", serverName, "--type=json",
				"-p", `[{"op":"remove","path":"/spec/delivery"}]`)
			Expect(err).NotTo(HaveOccurred())
			waitServerReady(ctx, alpha, func(g Gomega, dep *appsv1.Deployment) {
				g.Expect(dep.Spec.Template.Spec.Containers[0].Args).NotTo(ContainElement("--in-process-delivery=false"))
			})
		}, NodeTimeout(4*time.Minute))
		waitServerReady(ctx, alpha, func(g Gomega, dep *appsv1.Deployment) {
			g.Expect(dep.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--in-process-delivery=false"))
		})
		jobsBefore := &batchv1.JobList{}
		Expect(k8s.List(ctx, jobsBefore, client.InNamespace(alpha.ns))).To(Succeed())

		By("posting GitLab's release webhook to alpha's actor: a wrong token is refused, the right one accepted")
		body, link := gitlabRelease("v1.1")
		Eventually(func(g Gomega) {
			status, resp := postGitLabHook(ctx, g, alpha, releases, "gitlab", "wrong-token", body)
			g.Expect(status).To(Equal(http.StatusUnauthorized), resp)
		}).WithContext(ctx).Should(Succeed())
		Eventually(func(g Gomega) {
			status, resp := postGitLabHook(ctx, g, alpha, releases, "gitlab", gitlabToken, body)
			g.Expect(status).To(Equal(http.StatusAccepted), resp)
		}).WithContext(ctx).Should(Succeed())

		By("a delivery Job, started by the operator from alpha's next status report, running to completion")
		var job *batchv1.Job
		Eventually(func(g Gomega) {
			jobs := &batchv1.JobList{}
			g.Expect(k8s.List(ctx, jobs, client.InNamespace(alpha.ns), client.MatchingLabels{
				fedv1.LabelServer: serverName, fedv1.LabelComponent: "deliver"})).To(Succeed())
			srv := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: serverName}, srv)).To(Succeed())
			g.Expect(jobs.Items).NotTo(BeEmpty(), "no delivery Job yet; alpha's delivery status: %+v", srv.Status.Delivery)
			job = nil
			for i := range jobs.Items {
				if jobComplete(&jobs.Items[i]) {
					job = &jobs.Items[i]
				}
			}
			g.Expect(job).NotTo(BeNil(), "no delivery Job has completed yet: %d Jobs", len(jobs.Items))
		}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())
		Expect(jobsBefore.Items).To(BeEmpty(), "delivery Jobs before the webhook")
		Expect(job.Name).To(HavePrefix(serverName + "-deliver-"))
		Expect(job.Status.Succeeded).To(BeEquivalentTo(1))
		Expect(job.OwnerReferences).To(ContainElement(And(HaveField("Kind", "FederationServer"), HaveField("Name", serverName))), "the Job is owned by its FederationServer")
		pod := job.Spec.Template.Spec
		Expect(pod.Containers[0].Args).To(ContainElement(fmt.Sprintf("--queue-url=http://%s-server.%s.svc:8081/internal/delivery", serverName, alpha.ns)))
		Expect(pod.Containers[0].SecurityContext.ReadOnlyRootFilesystem).To(HaveValue(BeTrue()))
		Expect(pod.Containers[0].VolumeMounts).To(ContainElement(And(HaveField("Name", "keys"), HaveField("ReadOnly", true))))
		logs, err := kubectl(ctx, "", "-n", alpha.ns, "logs", "job/"+job.Name)
		Expect(err).NotTo(HaveOccurred())
		fmt.Fprintf(GinkgoWriter, "### logs of Job %s\n%s\n", job.Name, logs)
		Expect(logs).To(ContainSubstring("delivery Job done"))
		m := deliveredRe.FindStringSubmatch(logs)
		Expect(m).NotTo(BeNil(), "no delivered count in the Job's log")
		Expect(strconv.Atoi(m[1])).To(BeNumerically(">=", 1), "the Job delivered nothing")

		By("beta's watcher finding the release in its inbox, read with its owner's token")
		Eventually(func(g Gomega) {
			status, _, err := request(ctx, http.MethodGet, beta.url(ctx, g)+"/actors/"+watcher+"/inbox", beta.host(), nil, nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(status).To(Equal(http.StatusUnauthorized), "the inbox without a token")
		}).WithContext(ctx).Should(Succeed())
		create := receivedCreate(ctx, beta, watcher, watcherToken, alpha.actorID(releases), link, time.Minute)
		Expect(create).To(HaveKeyWithValue("object", HaveKeyWithValue("type", "Note")))
		Eventually(func(g Gomega) {
			srv := &fedv1.FederationServer{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: serverName}, srv)).To(Succeed())
			g.Expect(srv.Status.Delivery).NotTo(BeNil())
			g.Expect(srv.Status.Delivery.Delivered).To(BeNumerically(">=", 1))
			g.Expect(srv.Status.Delivery.Due).To(BeZero())
		}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())
	})

	It("rejects the next Follow under a FederationPolicy denylist applied with kubectl, and accepts it once removed (then Undo)", func(ctx SpecContext) {
		apply(ctx, beta.ns, actorManifest("policy-watcher", "Person", ""))
		waitActorReady(ctx, beta.ns, "policy-watcher")

		By("alpha denying beta's host")
		apply(ctx, alpha.ns, denylistManifest("deny-beta", beta.host()))
		Eventually(func(g Gomega) {
			pol := &fedv1.FederationPolicy{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: "deny-beta"}, pol)).To(Succeed())
			g.Expect(pol.Status.Attached).To(BeTrue())
		}).WithContext(ctx).Should(Succeed())
		// The server reports when it enforces the policy, as `kubectl wait` would see it.
		_, err := kubectl(ctx, "", "-n", alpha.ns, "wait", "--for=condition=Enforced", "federationpolicy/deny-beta", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())

		apply(ctx, beta.ns, followManifest("policy-denied", "policy-watcher", alpha.actorID(releases)))
		waitPhase(ctx, beta.ns, "policy-denied", fedv1.PhaseRejected)
		Eventually(func(g Gomega) {
			g.Expect(acceptedSubscriptions(ctx, g, alpha.ns, releases, fedv1.DirectionInbound, beta.actorID("policy-watcher"))).To(BeZero())
			g.Expect(followersOf(ctx, g, alpha.ns, releases)).To(BeEquivalentTo(1))
		}).WithContext(ctx).Should(Succeed())

		By("removing the denylist with kubectl delete")
		_, err = kubectl(ctx, "", "-n", alpha.ns, "delete", "federationpolicy", "deny-beta", "--wait=true")
		Expect(err).NotTo(HaveOccurred())
		// A deleted policy has no status to wait on. The server's cache takes policy events
		// in order, so once it enforces a policy created after the deletion, it has seen it.
		apply(ctx, alpha.ns, denylistManifest("barrier", "barrier.invalid"))
		_, err = kubectl(ctx, "", "-n", alpha.ns, "wait", "--for=condition=Enforced", "federationpolicy/barrier", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())

		apply(ctx, beta.ns, followManifest("policy-allowed", "policy-watcher", alpha.actorID(releases)))
		waitPhase(ctx, beta.ns, "policy-allowed", fedv1.PhaseAccepted)
		Eventually(func(g Gomega) {
			in := inbound(ctx, g, alpha.ns, releases, beta.actorID("policy-watcher"))
			g.Expect(in).To(HaveLen(1))
			g.Expect(in[0].Status.Phase).To(Equal(fedv1.PhaseAccepted))
			g.Expect(followersOf(ctx, g, alpha.ns, releases)).To(BeEquivalentTo(2))
		}).WithContext(ctx).Should(Succeed())

		By("unfollowing with kubectl delete: beta sends Undo, alpha drops the Inbound Subscription")
		_, err = kubectl(ctx, "", "-n", beta.ns, "delete", "subscription", "policy-allowed", "--wait=true", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			g.Expect(inbound(ctx, g, alpha.ns, releases, beta.actorID("policy-watcher"))).To(BeEmpty())
			g.Expect(followersOf(ctx, g, alpha.ns, releases)).To(BeEquivalentTo(1))
			g.Expect(totalItems(ctx, g, alpha, "/actors/"+releases+"/followers")).To(BeEquivalentTo(1))
		}).WithContext(ctx).Should(Succeed())
	})

	It("keeps verifying after a key rotation: the peer accepts a Follow and a post signed with the new key", func(ctx SpecContext) {
		keysName := releases + "-keys"
		secret := &corev1.Secret{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: keysName}, secret)).To(Succeed())
		oldPub := strings.TrimSpace(string(secret.Data["rsa.pub"]))
		Expect(oldPub).To(ContainSubstring("BEGIN PUBLIC KEY"))
		actor := waitActorReady(ctx, alpha.ns, releases)
		Expect(actor.Status.Keys).NotTo(BeNil())
		oldFingerprint := actor.Status.Keys.RSAFingerprint

		By("asking for a rotation with kubectl annotate")
		_, err := kubectl(ctx, "", "-n", alpha.ns, "annotate", "--overwrite", "federatedactor", releases,
			fedv1.AnnotationRotateKeys+"="+strconv.FormatInt(time.Now().UnixNano(), 10))
		Expect(err).NotTo(HaveOccurred())

		By("new keys in the Secret, the old public key kept as previous, the actor document publishing the new one")
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: keysName}, s)).To(Succeed())
			newPub := strings.TrimSpace(string(s.Data["rsa.pub"]))
			g.Expect(newPub).NotTo(Equal(oldPub), "keys not rotated yet")
			g.Expect(strings.TrimSpace(string(s.Data["previous-rsa.pub"]))).To(Equal(oldPub))
			doc := getJSON(ctx, g, alpha.url(ctx, g)+"/actors/"+releases, alpha.host(), "application/activity+json")
			g.Expect(doc).To(HaveKeyWithValue("publicKey", HaveKeyWithValue("publicKeyPem", WithTransform(strings.TrimSpace, Equal(newPub)))))
			a := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: releases}, a)).To(Succeed())
			g.Expect(a.Status.Keys.RSAFingerprint).NotTo(Equal(oldFingerprint))
		}).WithContext(ctx).Should(Succeed())

		By("beta, which holds the old key, accepting a Follow signed with the new one")
		apply(ctx, beta.ns, actorManifest("rotation-peer", "Person", ""))
		waitActorReady(ctx, beta.ns, "rotation-peer")
		apply(ctx, alpha.ns, followManifest("releases-follows-rotation-peer", releases, beta.actorID("rotation-peer")))
		waitPhase(ctx, alpha.ns, "releases-follows-rotation-peer", fedv1.PhaseAccepted)

		By("beta's watcher, an existing follower, receiving the next release signed with the new key")
		body, link := gitlabRelease("v1.2")
		Eventually(func(g Gomega) {
			status, resp := postGitLabHook(ctx, g, alpha, releases, "gitlab", gitlabToken, body)
			g.Expect(status).To(Equal(http.StatusAccepted), resp)
			fmt.Fprintf(GinkgoWriter, "webhook answered %d: %s", status, resp)
		}).WithContext(ctx).Should(Succeed())
		receivedCreate(ctx, beta, watcher, watcherToken, alpha.actorID(releases), link, 2*time.Minute)
	})

	It("removes everything a FederationServer owns when it is deleted", func(ctx SpecContext) {
		srv := &fedv1.FederationServer{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: serverName}, srv)).To(Succeed())

		By("listing what alpha's FederationServer owns")
		owned := ownedBy(ctx, alpha.ns, srv.UID)
		kinds := map[string]bool{}
		for _, o := range owned {
			kinds[o.kind] = true
		}
		fmt.Fprintf(GinkgoWriter, "owned by FederationServer %s/%s: %v\n", alpha.ns, serverName, owned)
		// The Job of the delivery scenario is kept an hour after it finished (TTL).
		for _, k := range []string{"Deployment", "Service", "PersistentVolumeClaim", "ServiceAccount", "Role", "RoleBinding", "Secret", "Job"} {
			Expect(kinds).To(HaveKey(k), "FederationServer owns no %s", k)
		}
		pvc := &corev1.PersistentVolumeClaim{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: serverName + "-data"}, pvc)).To(Succeed())
		volume := pvc.Spec.VolumeName
		Expect(volume).NotTo(BeEmpty())
		pods := &corev1.PodList{}
		Expect(k8s.List(ctx, pods, client.InNamespace(alpha.ns), client.MatchingLabels{fedv1.LabelServer: serverName})).To(Succeed())
		Expect(pods.Items).NotTo(BeEmpty())

		By("deleting it with kubectl delete")
		_, err := kubectl(ctx, "", "-n", alpha.ns, "delete", "federationserver", serverName, "--wait=true", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())

		By("the garbage collector removing every owned object, the server's and the Jobs' pods, and releasing the volume")
		Eventually(func(g Gomega) {
			g.Expect(ownedBy(ctx, alpha.ns, srv.UID)).To(BeEmpty())
			for _, o := range owned {
				g.Expect(o.exists(ctx)).To(BeFalse(), "%s %s still there", o.kind, o.name)
			}
			pods := &corev1.PodList{}
			g.Expect(k8s.List(ctx, pods, client.InNamespace(alpha.ns), client.MatchingLabels{fedv1.LabelServer: serverName})).To(Succeed())
			g.Expect(pods.Items).To(BeEmpty(), "pods of the server or its Jobs")
			pv := &corev1.PersistentVolume{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: volume}, pv)).To(Succeed())
			g.Expect(pv.Status.Phase).NotTo(Equal(corev1.VolumeBound), "volume %s of the store", volume)
		}).WithContext(ctx).Should(Succeed())

		By("the actors staying, reporting that their server is gone, and deleting cleanly (finalizer released)")
		Eventually(func(g Gomega) {
			a := &fedv1.FederatedActor{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: alpha.ns, Name: releases}, a)).To(Succeed())
			c := meta.FindStatusCondition(a.Status.Conditions, fedv1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(fedv1.ReasonServerNotFound))
		}).WithContext(ctx).Should(Succeed())
		_, err = kubectl(ctx, "", "-n", alpha.ns, "delete", "subscriptions,federatedactors", "--all", "--wait=true", "--timeout=2m")
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			actors := &fedv1.FederatedActorList{}
			g.Expect(k8s.List(ctx, actors, client.InNamespace(alpha.ns))).To(Succeed())
			g.Expect(actors.Items).To(BeEmpty())
			subs := &fedv1.SubscriptionList{}
			g.Expect(k8s.List(ctx, subs, client.InNamespace(alpha.ns))).To(Succeed())
			g.Expect(subs.Items).To(BeEmpty())
		}).WithContext(ctx).Should(Succeed())
	})
})

// ownedObject is one object found with an owner reference to a given UID.
type ownedObject struct {
	kind, name string
	obj        client.Object
}

func (o ownedObject) String() string { return o.kind + "/" + o.name }

func (o ownedObject) exists(ctx context.Context) bool {
	GinkgoHelper()
	fresh := o.obj.DeepCopyObject().(client.Object)
	err := k8s.Get(ctx, client.ObjectKeyFromObject(o.obj), fresh)
	if apierrors.IsNotFound(err) {
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	// A recreated object of the same name is not the one owned.
	return fresh.GetUID() == o.obj.GetUID()
}

// ownedBy lists the objects in ns, of every kind a FederationServer makes, whose owner
// references name uid.
func ownedBy(ctx context.Context, ns string, uid types.UID) []ownedObject {
	GinkgoHelper()
	lists := map[string]client.ObjectList{
		"Deployment": &appsv1.DeploymentList{}, "Service": &corev1.ServiceList{},
		"PersistentVolumeClaim": &corev1.PersistentVolumeClaimList{}, "ServiceAccount": &corev1.ServiceAccountList{},
		"Role": &rbacv1.RoleList{}, "RoleBinding": &rbacv1.RoleBindingList{}, "Secret": &corev1.SecretList{},
		"ConfigMap": &corev1.ConfigMapList{}, "Job": &batchv1.JobList{}, "Pod": &corev1.PodList{},
	}
	var out []ownedObject
	for kind, list := range lists {
		Expect(k8s.List(ctx, list, client.InNamespace(ns))).To(Succeed())
		items, err := meta.ExtractList(list)
		Expect(err).NotTo(HaveOccurred())
		for _, it := range items {
			o := it.(client.Object)
			for _, ref := range o.GetOwnerReferences() {
				if ref.UID == uid {
					out = append(out, ownedObject{kind: kind, name: o.GetName(), obj: o})
				}
			}
		}
	}
	return out
}
